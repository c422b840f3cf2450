"""What whole-store operations (export, migrate, prune, metrics) need beyond
the :class:`~kode_sdk.store.protocols.Store` protocol: every agent that has any
stored record, info or not, and the two times a store keeps outside records
(each message's ``created_at`` and the session's ``updated_at``).

A backend offers these as three narrow primitives (:class:`StoreCatalog`);
the rules (which agents an operation covers, which times are valid) live
here, once. A store without the primitives still works: it is covered
through ``list()`` and its times are not carried.

>>> ids = await stored_agent_ids(store)                 # doctest: +SKIP
>>> times = await load_record_times(store, "agt-1")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import RecordValidationError
from .protocols import Store

__all__ = ["RecordTimes", "StoreCatalog", "check_message_times", "load_record_times", "restore_record_times",
           "stored_agent_ids"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordTimes:
    """The times a store keeps beside an agent's records, in epoch ms.

    ``message_created_at[i]`` is when message ``i`` was first saved;
    ``updated_at`` is the session's last write (``SessionInfo.updated_at``),
    ``None`` when the agent has no info (it has no session).
    """

    message_created_at: list[int] = field(default_factory=list)
    updated_at: int | None = None


@runtime_checkable
class StoreCatalog(Protocol):
    """The primitives behind whole-store operations. Backends only move rows:
    validation is done by the functions of this module before they are called."""

    async def list_stored_agents(self) -> list[str]:
        """Every agent id with any stored record (info or not), sorted."""
        ...

    async def load_record_times(self, agent_id: str) -> RecordTimes:
        """The agent's message ``created_at`` times (by position) and session ``updated_at``."""
        ...

    async def restore_record_times(self, agent_id: str, times: RecordTimes) -> None:
        """Set message ``i``'s ``created_at`` to ``times.message_created_at[i]``
        and (when not ``None``) the session's ``updated_at``, in one transaction."""
        ...


async def stored_agent_ids(store: Store) -> list[str]:
    """Every agent ``store`` holds any record for, sorted: the agents export,
    migrate, prune and metrics cover. ``list()`` counts only agents with info."""
    if isinstance(store, StoreCatalog):
        return sorted(set(await store.list_stored_agents()))
    return sorted(await store.list())


async def load_record_times(store: Store, agent_id: str) -> RecordTimes | None:
    """The agent's record times, or ``None`` when ``store`` does not keep them."""
    if isinstance(store, StoreCatalog):
        return await store.load_record_times(agent_id)
    return None


def check_message_times(times: Sequence[Any], where: str) -> list[int]:
    """``times`` as message ``created_at`` values: epoch-ms ints that never
    decrease along the list (every backend keeps a conversation in time order,
    so "newest first" is position order). Raises :class:`RecordValidationError`."""
    checked: list[int] = []
    for index, value in enumerate(times):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise RecordValidationError(f"{where}[{index}]: createdAt must be epoch milliseconds", field=where)
        if checked and value < checked[-1]:
            raise RecordValidationError(
                f"{where}[{index}]: createdAt {value} is earlier than the message before it ({checked[-1]})",
                field=where,
            )
        checked.append(value)
    return checked


async def restore_record_times(store: Store, agent_id: str, times: RecordTimes, message_count: int) -> bool:
    """Give the agent's stored messages and session the times of ``times``.

    ``message_count`` is how many messages the agent holds now; the times must
    cover exactly those. Returns ``False`` (and writes nothing) when ``store``
    does not keep times.
    """
    if not isinstance(store, StoreCatalog):
        return False
    created = check_message_times(times.message_created_at, "messages")
    if len(created) != message_count:
        raise RecordValidationError(
            f"messages: {len(created)} createdAt times for {message_count} stored messages", field="messages"
        )
    if times.updated_at is not None:
        check_message_times([times.updated_at], "updatedAt")
    await store.restore_record_times(agent_id, RecordTimes(created, times.updated_at))
    return True
