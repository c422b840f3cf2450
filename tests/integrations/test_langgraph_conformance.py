"""LangGraph's own checkpointer conformance suite (langgraph-checkpoint-conformance) against KodeSaver.

Every capability the suite knows is implemented and must pass in full,
including the extended ones LangGraph's own savers leave out (prune,
copy_thread, delete_for_runs), on SQLite, PostgreSQL and JSON files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from kode_sdk import create_store
from kode_sdk.integrations.langgraph import KodeSaver


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "json"])
async def test_conformance_suite_passes_in_full(store_config: dict[str, Any], backend: str) -> None:
    @checkpointer_test(name=f"KodeSaver[{backend}]")
    async def kode_saver() -> AsyncIterator[KodeSaver]:
        store = create_store(store_config)
        saver = KodeSaver(store)
        try:
            yield saver
        finally:
            await store.close()

    report = await validate(kode_saver)
    summary = report.to_dict()
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert not failures, failures
    assert {cap for cap, r in report.results.items() if r.detected} == {c.value for c in ALL_CAPABILITIES}, summary
    assert report.passed_all(), summary
    # The summary the issue note quotes.
    print(
        f"\n{backend}: {report.conformance_level()} — "
        + ", ".join(f"{cap} {r.tests_passed}/{r.tests_passed + r.tests_failed}" for cap, r in report.results.items())
    )
