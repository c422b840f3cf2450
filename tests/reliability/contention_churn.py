"""The churn process of the contention test: opens a store, reads, closes it,
again and again (as short-lived processes such as ``kode`` CLI commands do
beside a running service), while the workers write.

Usage: python contention_churn.py SPEC SECONDS

Every error is caught and reported, never raised: the last stdout line is one
JSON object with the number of open/close cycles and the errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from _common import open_store


async def main(spec: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    out: dict[str, Any] = {"cycles": 0, "errors": []}
    while time.monotonic() < deadline:
        try:
            store = open_store(spec)
            async with store:
                await store.load_messages("shared-log")  # type: ignore[attr-defined]
                await store.load_info("shared-0")  # type: ignore[attr-defined]
            out["cycles"] += 1
        except Exception as exc:  # every error is a finding: report it, keep going
            out["errors"].append(f"churn: {type(exc).__name__}: {exc}")
        await asyncio.sleep(0.02)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
