"""Every public method a bundled backend decorates with ``operation`` has its
metrics kind in store/policy.py: a new method cannot silently pick its own."""

from __future__ import annotations

import inspect

import pytest

from kode_sdk.store.json_store import JSONStore
from kode_sdk.store.policy import OPERATION_KINDS
from kode_sdk.store.postgres import PostgresStore
from kode_sdk.store.sqlite import SqliteStore


def _operations(cls: type) -> set[str]:
    return {name for name, member in inspect.getmembers(cls) if hasattr(member, "__kode_operation__")}


@pytest.mark.parametrize("cls", [SqliteStore, JSONStore, PostgresStore])
def test_every_public_operation_has_a_policy_kind(cls: type) -> None:
    found = _operations(cls)
    assert {"save_messages", "list", "query_sessions", "read_events"} <= found
    assert sorted(found - set(OPERATION_KINDS)) == []
