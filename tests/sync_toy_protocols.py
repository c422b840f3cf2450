"""Protocols for the generator test in tests/test_sync.py, written the other
way from kode_sdk's own (no ``from __future__ import annotations``): real
annotation objects, string forward references, a class defined after its use,
a ``Literal``. They extend the real protocols the way another change would.
"""

import contextlib
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from kode_sdk import ExtendedStore, Timeline


@runtime_checkable
class ToyExtendedStore(ExtendedStore, Protocol):
    async def toy_append_events(self, agent_id: str, timelines: Sequence[Timeline | Mapping[str, Any]]) -> None:
        """Append many events in one transaction."""

    async def toy_search(
        self, query: str, /, *, agent_id: "str | None" = None, mode: Literal["any", "all"] = "any", limit: int = 20
    ) -> "list[ToyHit]": ...

    def toy_tail(self, agent_id: str, *, poll_interval_s: float = 0.5) -> AsyncIterator["Timeline"]: ...

    def toy_transaction(self, agent_id: str) -> contextlib.AbstractAsyncContextManager["ToyTransaction"]: ...

    async def toy_begin(self, agent_id: str) -> "ToyTransaction": ...


@runtime_checkable
class ToyTransaction(Protocol):
    async def save_messages(self, agent_id: str, messages: Sequence[Mapping[str, Any]]) -> None: ...

    def events(self) -> AsyncIterator[int]: ...


class ToyHit(BaseModel):
    agent_id: str
    seq: int


class ToyTransactionImpl:
    """A transaction object that records which thread ran each call."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, list[Mapping[str, Any]]]] = []
        self.threads: list[str] = []

    async def save_messages(self, agent_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        self.threads.append(threading.current_thread().name)
        self.saved.append((agent_id, list(messages)))

    async def events(self) -> AsyncIterator[int]:
        for value in range(3):
            yield value


class ToyStoreImpl:
    """Just enough of a store for the generated toy facade."""

    def __init__(self) -> None:
        self.tx = ToyTransactionImpl()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    @contextlib.asynccontextmanager
    async def toy_transaction(self, agent_id: str) -> AsyncIterator[ToyTransactionImpl]:
        yield self.tx

    async def toy_begin(self, agent_id: str) -> ToyTransactionImpl:
        return self.tx


@runtime_checkable
class WeirdStore(ExtendedStore, Protocol):
    def plain(self, agent_id: str) -> int: ...
