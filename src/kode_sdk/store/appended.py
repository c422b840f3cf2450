"""The append-only kinds' public methods, declared once: :class:`AppendedRecords`.

History windows, compression records and recovered files
(:data:`~kode_sdk.store.records.APPEND_KINDS`) share one contract: each save
adds a record after every one saved before, each load returns them all in
save order. Their six public methods are written here, once, with their
signatures, docstrings and ``@operation`` decorators; each validates its
argument as the kind's model (errors name the argument) and hands the record
to one of two backend primitives:

==============================  ==================================================
primitive                       does
==============================  ==================================================
``_save_appended(kind, a, r)``  store the validated record ``r`` after agent ``a``'s last one of ``kind``
``_load_appended(kind, a)``     every record of ``kind`` of agent ``a``, in save order
==============================  ==================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import CompressionRecord, HistoryWindow, Record, RecoveredFile
from .lifecycle import operation
from .records import RecordKind, kind_named

__all__ = ["AppendedRecords"]

_HISTORY_WINDOW = kind_named("history_window")
_COMPRESSION_RECORD = kind_named("compression_record")
_RECOVERED_FILE = kind_named("recovered_file")


class AppendedRecords:
    """Mixin of a store: the append-only kinds' public methods over the
    backend's ``_save_appended`` and ``_load_appended``."""

    async def _save_appended(self, kind: RecordKind, agent_id: str, record: Record) -> None:
        """Store ``record`` (a validated ``kind.model``) after the agent's last record of ``kind``."""
        raise NotImplementedError

    async def _load_appended(self, kind: RecordKind, agent_id: str) -> list[Any]:
        """Every record of ``kind`` the agent has, in save order."""
        raise NotImplementedError

    async def _append(self, kind: RecordKind, agent_id: str, record: object) -> None:
        await self._save_appended(kind, agent_id, kind.model.coerce(record, kind.argument))

    @operation("saves")
    async def save_history_window(self, agent_id: str, window: HistoryWindow | Mapping[str, Any]) -> None:
        """Add a history window (windows load in the order they were saved)."""
        await self._append(_HISTORY_WINDOW, agent_id, window)

    @operation("loads")
    async def load_history_windows(self, agent_id: str) -> list[HistoryWindow]:
        """Every history window of the agent, in save order."""
        return await self._load_appended(_HISTORY_WINDOW, agent_id)

    @operation("saves")
    async def save_compression_record(self, agent_id: str, record: CompressionRecord | Mapping[str, Any]) -> None:
        """Add a compression record (records load in save order)."""
        await self._append(_COMPRESSION_RECORD, agent_id, record)

    @operation("loads")
    async def load_compression_records(self, agent_id: str) -> list[CompressionRecord]:
        """Every compression record of the agent, in save order."""
        return await self._load_appended(_COMPRESSION_RECORD, agent_id)

    @operation("saves")
    async def save_recovered_file(self, agent_id: str, file: RecoveredFile | Mapping[str, Any]) -> None:
        """Add a recovered file (files load in save order)."""
        await self._append(_RECOVERED_FILE, agent_id, file)

    @operation("loads")
    async def load_recovered_files(self, agent_id: str) -> list[RecoveredFile]:
        """Every recovered file of the agent, in save order."""
        return await self._load_appended(_RECOVERED_FILE, agent_id)
