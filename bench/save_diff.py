"""Micro-benchmark of the incremental-save diff (kode_sdk.store.base): key
building, comparison with the cached snapshots and the snapshot update, the
CPU work a store does per ``save_messages`` / ``save_tool_call_records``
before touching its database.

    python bench/save_diff.py                          # 600 messages, 200 tool calls
    python bench/save_diff.py --messages 120 --tool-calls 40

Cases: ``append3`` (the cache holds all but the last 3 items, the W1 shape)
and ``edit3`` (same length, the last 3 items replaced). One JSON line per
list kind and case, median microseconds over ``--runs``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import data
from kode_sdk.store.base import (
    changed_positions,
    message_keys,
    message_snapshot,
    tool_call_keys,
    tool_call_snapshot,
    updated_snapshots,
)
from kode_sdk.types import Message


def median_us(
    items: Sequence[Any],
    before: Sequence[Any],
    keys: Callable[[Sequence[Any]], list[Any]],
    snapshot: Callable[[Any], Any],
    runs: int,
) -> float:
    """Median time of one diff + snapshot update of ``items`` against snapshots of ``before``."""
    times: list[float] = []
    for _ in range(runs):
        cached = [snapshot(item) for item in before]  # fresh each run: the update may not alias it
        gc.disable()
        start = time.perf_counter()
        updated_snapshots(cached, items, changed_positions(keys(items), cached), snapshot)
        times.append(time.perf_counter() - start)
        gc.enable()
    times.sort()
    return round(times[len(times) // 2] * 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/save_diff.py", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--tool-calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    base = data.now_ms()
    messages = [Message.model_validate(w) for t in range(args.messages // 3) for w in data.turn_message_wires(0, t)]
    records = [data.tool_record(0, t, base + t) for t in range(args.tool_calls)]
    fresh_messages = [Message.model_validate({"role": "user", "content": f"edit {i}"}) for i in range(3)]
    fresh_records = [r.model_copy(update={"state": "failed"}, deep=True) for r in records[-3:]]
    kinds: list[tuple[str, list[Any], list[Any], Any, Any]] = [
        ("messages", messages, fresh_messages, message_keys, message_snapshot),
        ("tool_calls", records, fresh_records, tool_call_keys, tool_call_snapshot),
    ]
    for kind, items, fresh, keys, snapshot in kinds:
        cases = {"append3": (items, items[:-3]), "edit3": (items[:-3] + fresh, items)}
        for case, (new, before) in cases.items():
            us = median_us(new, before, keys, snapshot, args.runs)
            print(json.dumps({"bench": "save_diff", "kind": kind, "items": len(new), "case": case, "median_us": us}))


if __name__ == "__main__":
    main()
