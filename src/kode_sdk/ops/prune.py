"""Retention: delete agents created before a cutoff.

:func:`prune` calls the store's own ``prune`` (SqliteStore, PostgresStore and
JSONStore implement it with a few set-based statements or one directory scan)
and falls back to ``list`` + ``load_info`` + ``delete`` for any other Store.

Agents whose info was never saved have no creation time. They are covered
too (every agent with a stored record is), by the newest time found in their
records: such an agent is pruned when nothing it holds is as new as the
cutoff, so an agent still being written to is never pruned. They have no
template, so ``template_id`` never selects them.

>>> ids = await prune(store, created_before=parse_when("90d"), dry_run=True)   # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime

from ..store.capabilities import Prunable
from ..store.catalog import stored_agent_ids
from ..store.policy import time_bound
from ..store.protocols import Store
from ..types import to_epoch_ms
from .dump import AgentDump, read_agent

__all__ = ["last_activity_ms", "prune"]

# The time fields of each record kind, in the wire shape (epoch ms).
_TIME_KEYS = ("createdAt", "updatedAt", "timestamp", "mtime", "completedAt", "startedAt")


def last_activity_ms(dump: AgentDump) -> int | None:
    """The newest time an agent's records hold (message ``createdAt``, tool-call
    ``updatedAt``, event bookmark time, …), or ``None`` when none has a time."""
    times: list[int] = list(dump.message_times or [])
    if dump.updated_at is not None:
        times.append(dump.updated_at)
    for _, record in dump.records():
        for key in _TIME_KEYS:
            value = record.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                times.append(value)
        bookmark = record.get("bookmark")
        if isinstance(bookmark, dict) and isinstance(bookmark.get("timestamp"), int):
            times.append(bookmark["timestamp"])
    return max(times, default=None)


async def prune(
    store: Store,
    *,
    created_before: datetime | int,
    template_id: str | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete (or with ``dry_run`` only list) agents created strictly before
    ``created_before``, optionally only those of ``template_id``. Returns their ids, sorted."""
    cutoff = time_bound(created_before, "created_before")
    assert cutoff is not None
    doomed: list[str] = []
    if isinstance(store, Prunable):
        doomed.extend(await store.prune(created_before=cutoff, template_id=template_id, dry_run=dry_run))
    else:
        for agent_id in await store.list():
            info = await store.load_info(agent_id)
            if info is None or to_epoch_ms(info.created_at) >= cutoff:
                continue
            if template_id is not None and info.template_id != template_id:
                continue
            doomed.append(agent_id)
        if not dry_run:
            for agent_id in doomed:
                await store.delete(agent_id)
    if template_id is None:
        doomed.extend(await _prune_infoless(store, cutoff, set(doomed), dry_run=dry_run))
    return sorted(doomed)


async def _prune_infoless(store: Store, cutoff: int, done: set[str], *, dry_run: bool) -> list[str]:
    """The agents without info whose newest record is older than ``cutoff``."""
    listed = set(await store.list())
    doomed: list[str] = []
    for agent_id in await stored_agent_ids(store):
        if agent_id in listed or agent_id in done:
            continue
        dump = await read_agent(store, agent_id)
        if dump.info is not None:
            continue  # saved meanwhile: an agent with info is judged by its creation time
        newest = last_activity_ms(dump)
        if newest is None or newest >= cutoff:
            continue
        doomed.append(agent_id)
        if not dry_run:
            await store.delete(agent_id)
    return doomed
