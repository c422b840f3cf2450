"""Sequential calls stay on the pooled connection used last (a warm server
process), even after a burst of concurrent calls opened several."""

from __future__ import annotations

import asyncio

import pytest

from kode_sdk.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


async def test_sequential_calls_reuse_the_warmest_connection(pg_url: str, pg_schema: str) -> None:
    store = PostgresStore({"dsn": pg_url, "min": 1, "max": 4}, schema=pg_schema)
    async with store:
        # Four calls at once: the pool opens four connections.
        burst = await asyncio.gather(
            *(store._read_rows("SELECT pg_backend_pid() FROM pg_sleep(0.1)", []) for _ in range(4))
        )
        assert len({rows[0][0] for rows in burst}) == 4
        # psycopg_pool alone would now rotate through all four server processes.
        pids = [(await store._read_rows("SELECT pg_backend_pid()", []))[0][0] for _ in range(8)]
        assert len(set(pids)) == 1
