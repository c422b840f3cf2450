"""Protocols for the generator test in tests/test_sync.py, written the other
way from kode_sdk's own (no ``from __future__ import annotations``): real
annotation objects, string forward references, a class defined after its use,
a ``Literal``. They extend the real protocols the way another change would.
"""

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from kode_sdk import ExtendedStore, Timeline


@runtime_checkable
class ToyExtendedStore(ExtendedStore, Protocol):
    async def import_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append many events in one transaction."""

    async def search_messages(
        self, query: str, /, *, agent_id: "str | None" = None, mode: Literal["any", "all"] = "any", limit: int = 20
    ) -> "list[MessageHit]": ...

    def tail_events(self, agent_id: str, *, poll_interval_s: float = 0.5) -> AsyncIterator["Timeline"]: ...

    def transaction(self, agent_id: str) -> contextlib.AbstractAsyncContextManager["MessageHit"]: ...


class MessageHit(BaseModel):
    agent_id: str
    seq: int


@runtime_checkable
class WeirdStore(ExtendedStore, Protocol):
    def plain(self, agent_id: str) -> int: ...
