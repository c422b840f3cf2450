"""PostgresStore: the multi-worker backend, on psycopg 3 (async) and psycopg_pool.

Everything lives in PostgreSQL — messages, tool calls, events, todos, history,
snapshots — so every worker on every machine sees the same agent::

    store = PostgresStore("postgresql://kode@db/kode", schema="kode")
    async with store:
        await store.save_messages("agt-1", [{"role": "user", "content": "Hello!"}])
        async with store.agent_lock("agt-1", timeout_ms=5000):
            info = await store.load_info("agt-1")
        async for timeline in store.tail_events("agt-1"):   # live, across workers
            ...

How it is built, and why:

* **One pool, autocommit connections**, explicit transactions: ``BEGIN`` …
  ``COMMIT`` queued in pipeline mode, so a write is one round trip. Pooled
  connections are checked before use without a round trip (a dead session's
  socket turns readable; only then is it pinged and replaced), so after a
  server restart the first call already gets a fresh connection; calls during
  the outage raise ``StoreConnectionError`` (driver text scrubbed of secrets).
* **Exact JSON in JSONB.** Documents go to a ``data jsonb`` column (queryable,
  compact). JSONB cannot hold U+0000 and normalises numbers (``1e20`` comes
  back as the integer ``100000000000000000000``), so a document whose JSON
  text holds a real ``\\u0000`` escape or a number written with an exponent
  also keeps its exact text in ``raw text`` (TEXT holds the six characters
  ``\\u0000`` fine), while ``data`` gets a copy with U+FFFD in place of NUL.
  Loads read ``COALESCE(raw, data::text)`` and decode with
  :func:`kode_sdk.jsoncodec.decode`, so big integers come back exact.
  Only such rare documents pay for the second copy.
* **Incremental saves.** ``save_messages`` / ``save_tool_call_records`` diff
  the new list against independent snapshots of the list saved last (one
  comparison per position, done in C), and send only changed positions; a
  rewritten position keeps its first ``created_at``. With a cached snapshot
  the save is optimistic — one round trip: an ``UPDATE`` of the agent row
  bumps the version only if it still is the cached one (taking the row lock,
  which serialises workers saving one agent) and stamps a random token that
  guards every row write, so a stale cache writes nothing and the save
  retries on the locking path (``SELECT … FOR UPDATE``, rebuild from rows).
* **Events**: each ``append_event`` / ``append_events`` returns once its
  events are committed; appends arriving while a commit is in flight share
  the next one (:class:`~kode_sdk.store.events.EventCommitter`). A commit is
  one pipelined round trip: one ``unnest`` INSERT and, in the same
  transaction, ``pg_notify('kode_events', '<schema>:<agent_id>')``;
  :meth:`PostgresStore.tail_events` LISTENs on its own connection and reads the
  table (``seq > last``) after every wake-up and once a second anyway, so a
  lost notification or a reconnect never loses or repeats an event.
  A seq another worker stored first fails only the call that repeated it.
* **Agent locks** are session advisory locks keyed by a signed 64-bit BLAKE2b
  hash of ``schema`` + agent id, each on its own connection from a small
  separate pool (advisory locks are re-entrant per session, so two acquires
  must not share one). The wait happens in the server:
  ``SET lock_timeout`` + ``pg_advisory_lock`` — no polling, and the next waiter
  gets the lock the moment it is released. A lock dies with its connection.
* **Behind PgBouncer** (``"pooler": "transaction"`` or
  ``KODE_POSTGRES_POOLER``) no session state is assumed: settings per
  transaction, no prepared statements, lease locks, a polling tail — see
  :mod:`~kode_sdk.store.postgres.pooler`. **Read replicas** (``"replicas"`` or
  ``KODE_POSTGRES_REPLICAS``): see :mod:`~kode_sdk.store.postgres.replicas`.
* **Schema**: migrations in ``kode_sdk/store/schema/postgres/NNNN_*.sql``,
  applied on open under ``pg_advisory_xact_lock`` (several workers may open at
  once); a database newer than this code raises ``SchemaVersionError``.

The package, one job a module:

* ``store.py`` — :class:`PostgresStore`, the Store contract: each method
  composes the parts below.
* ``connections.py`` — the pools, taking/returning/renewing connections,
  pipelined transactions, routed (replica) reads: the store's base class.
* ``sql.py`` — the record tables' SQL text and row builders, exact JSON in
  JSONB; per-kind statements generated from ``RECORD_KINDS``.
* ``queries.py`` — the read queries (query API, stats, ``list``, search).
* ``lists.py`` — the incremental saves of messages and tool calls.
* ``events.py`` — committing events (one round trip + NOTIFY), paged reads.
* ``tail.py`` — the live tail: LISTEN, or polling behind a pooler.
* ``transaction.py`` — ``store.transaction()``: one pipelined transaction.
* ``locks.py`` — agent locks: advisory locks (leases behind a pooler).
* ``consistency.py`` — ``check_consistency``: the invariants of an agent's rows.
* ``fork.py`` — ``batch_fork`` in SQL.
* ``schema.py`` — running the migrations on open.
* ``config.py`` — connection settings: parsing, validation, secrets kept out.
* ``pooler.py`` — behind PgBouncer: per-transaction settings, lease locks.
* ``replicas.py`` — read replicas: routing, read-your-writes.
* ``checkout.py`` — checking a pooled connection before use; warm-first pool.
"""

from ...extras import missing_extra

try:  # a SQLite-only install: say which extra to add
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:
    raise missing_extra("postgres", exc) from None

from .locks import advisory_lock_key
from .queries import STATS_QUERY, list_query, messages_query, search_query, sessions_query, tool_calls_query
from .schema import migrations
from .store import PostgresStore

__all__ = [
    "STATS_QUERY",
    "PostgresStore",
    "advisory_lock_key",
    "list_query",
    "messages_query",
    "migrations",
    "search_query",
    "sessions_query",
    "tool_calls_query",
]
