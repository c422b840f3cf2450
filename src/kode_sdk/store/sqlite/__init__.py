"""The SQLite backend: :class:`SqliteStore`, the embedded default store — one
SQLite file in WAL mode.

Everything an agent produces lives in one database file: messages, tool calls,
events, todos, history windows, compression records, recovered files, media
cache, snapshots and agent info. One file is one backup and one transaction
boundary.

The package, one job a module: ``store`` (the Store contract), ``sql`` (SQL
text and row values), ``blob`` (the ``data`` column's encoding), ``connection``
(opening connections), ``thread`` (the connection thread), ``checkpointer``
(WAL checkpoints), ``transactions`` (one call's transaction), ``unit``
(``store.transaction()``), ``schema`` (migrations), ``fts`` (full-text
search), ``consistency`` (``check_consistency``).

>>> from kode_sdk.store.sqlite import SqliteStore
>>> async def main() -> None:                                     # doctest: +SKIP
...     async with SqliteStore("./data/agents.db") as store:
...         await store.save_messages("agt-1", [{"role": "user", "content": "Hello!"}])
...         print(await store.load_messages("agt-1"))
"""

from __future__ import annotations

from .fts import register_functions
from .schema import migrations, split_sql
from .store import SqliteStore

__all__ = ["SqliteStore", "migrations", "register_functions", "split_sql"]
