"""The PostgreSQL backend (see store.py)."""

from .store import (
    STATS_QUERY,
    PostgresStore,
    advisory_lock_key,
    list_query,
    messages_query,
    migrations,
    search_query,
    sessions_query,
    tool_calls_query,
)

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
