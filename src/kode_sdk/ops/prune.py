"""Retention: delete agents created before a cutoff.

:func:`prune` calls the store's own ``prune`` (SqliteStore, PostgresStore and
JSONStore implement it with a few set-based statements or one directory scan)
and falls back to ``list`` + ``load_info`` + ``delete`` for any other Store.

>>> ids = await prune(store, created_before=parse_when("90d"), dry_run=True)   # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store.base import Store, time_bound
from ..types import to_epoch_ms

__all__ = ["prune"]


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
    own: Any = getattr(store, "prune", None)
    if own is not None:
        result = await own(created_before=cutoff, template_id=template_id, dry_run=dry_run)
        return sorted(result)
    doomed: list[str] = []
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
    return sorted(doomed)
