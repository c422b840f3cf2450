"""Child process for the shared-file test: opens a SqliteStore on DB_PATH,
appends one message ``TEXT`` to agent ``theirs``, prints the texts of agent
``mine`` as one JSON line, and closes the store (its connection closes too).

Usage: python sqlite_peer.py DB_PATH TEXT
"""

from __future__ import annotations

import asyncio
import json
import sys


async def main(db_path: str, text: str) -> None:
    from kode_sdk.store.sqlite import SqliteStore

    async with SqliteStore(db_path) as store:
        await store.append_messages("theirs", [{"role": "user", "content": [{"type": "text", "text": text}]}])
        mine = [m.content[0]["text"] for m in await store.load_messages("mine")]
    print(json.dumps(mine), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
