"""What :class:`~kode_sdk.agent.tools.ToolRegistry` and
:class:`~kode_sdk.agent.templates.TemplateRegistry` share: items by name, in
registration order, looked up with an error naming the known ones."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Items by name; ``in``, ``len`` and iteration (over the items, in
    registration order) as for a collection."""

    #: How a missing item is named in the ``KeyError`` (``no <noun> 'x' …``).
    _noun: ClassVar[str] = "item"

    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def _lookup(self, name: str) -> T:
        """The item ``name``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"no {self._noun} {name!r} (registered: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def __len__(self) -> int:
        return len(self._items)
