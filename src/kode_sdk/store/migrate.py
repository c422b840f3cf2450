"""Compatibility alias: the store copier moved to :mod:`kode_sdk.ops.copy`.

``kode_sdk.store.migrate.migrate`` was documented (docs/copying.md), so this
name keeps working; nothing inside ``kode_sdk.store`` imports this module, so
the store package itself never depends on ``ops``.
"""

from __future__ import annotations

from ..ops.copy import AgentOutcome, MigrationReport, apply_agent, find_conflicts, migrate, verify

__all__ = ["AgentOutcome", "MigrationReport", "apply_agent", "find_conflicts", "migrate", "verify"]
