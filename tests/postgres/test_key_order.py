"""What docs/architecture.md says about JSON on PostgreSQL is what happens:
the same value comes back, object keys in jsonb's order (issue 11, item 13)."""

from __future__ import annotations

from pathlib import Path

from kode_sdk.store.postgres import PostgresStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


async def test_postgres_returns_the_same_value_with_keys_in_jsonb_order(store: PostgresStore) -> None:
    metadata = {"zebra": 1, "a": {"yy": 2, "x": 3}, "mm": [{"long-key": 1, "k": 2}]}
    await store.save_messages("agt-1", [{"role": "user", "content": "hi", "metadata": metadata}])
    loaded = (await store.load_messages("agt-1"))[0].metadata
    assert loaded == metadata  # the same value ...
    assert loaded is not None
    assert list(loaded) == ["a", "mm", "zebra"]  # ... keys as jsonb orders them: shorter first, then bytewise
    assert list(loaded["a"]) == ["x", "yy"] and list(loaded["mm"][0]) == ["k", "long-key"]
    deep: dict[str, object] = {"leaf": True}
    for _ in range(254):
        deep = {"a": deep}  # 255 levels under the message: the documented limit
    await store.save_messages("agt-2", [{"role": "user", "content": "x", "metadata": deep}])
    assert (await store.load_messages("agt-2"))[0].metadata == deep
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    assert "Not byte for byte everywhere: PostgreSQL's `jsonb` keeps object keys in its own order" in text
