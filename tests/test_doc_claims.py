"""The docs' claims about stored JSON hold (issue 11, item 13): key order is
kept by SQLite, the nesting limit is the documented one and its error is short."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kode_sdk.errors import RecordValidationError
from kode_sdk.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_nesting_up_to_the_documented_limit_round_trips_and_deeper_is_refused_briefly(tmp_path: Path) -> None:
    text = " ".join((ROOT / "docs" / "reliability.md").read_text(encoding="utf-8").split())
    assert "nesting at most 256 levels deep (the record itself is the first level) round-trips" in text
    async with SqliteStore(tmp_path / "a.db") as store:
        deep = nested(255)  # the message is level 1, its metadata dict level 2, …
        await store.save_messages("agt-1", [{"role": "user", "content": "x", "metadata": deep}])
        assert (await store.load_messages("agt-1"))[0].metadata == deep
        for depth in (256, 499, 5000):
            with pytest.raises(RecordValidationError) as refused:
                await store.save_messages("agt-1", [{"role": "user", "content": "x", "metadata": nested(depth)}])
            message = str(refused.value)
            assert "256 levels" in message and len(message) < 200
        assert (await store.load_messages("agt-1"))[0].metadata == deep  # the refused call changed nothing


async def test_sqlite_keeps_object_key_order(tmp_path: Path) -> None:
    metadata = {"zebra": 1, "a": {"yy": 2, "x": 3}}
    async with SqliteStore(tmp_path / "a.db") as store:
        await store.save_messages("agt-1", [{"role": "user", "content": "hi", "metadata": metadata}])
        loaded = (await store.load_messages("agt-1"))[0].metadata
    assert loaded is not None and list(loaded) == ["zebra", "a"] and list(loaded["a"]) == ["yy", "x"]
