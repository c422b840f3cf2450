"""W4 adapters: one small module per system that can persist the W4 conversation.

Every peer is imported lazily, inside its adapter's ``setup``, so a peer that
is not installed is a clean skip (reported in the results), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .adk import ADKDatabaseSessions, KodeADKSessions
from .common import Conversation, Skip, System, Turn, Workspace, make_conversation
from .kode import KodeStore
from .langgraph_savers import LangGraphSaver
from .openai_agents import KodeAgentsSession, OpenAISQLAlchemy, OpenAISQLiteSession

__all__ = [
    "REGISTRY",
    "Conversation",
    "Skip",
    "System",
    "SystemSpec",
    "Turn",
    "Workspace",
    "make_conversation",
]

Factory = Callable[[Conversation, Workspace], System]


class SystemSpec:
    """A named system: its backend, the distribution it comes from, and how to build it."""

    def __init__(self, name: str, backend: str, package: str | None, factory: Factory, ours: bool = False) -> None:
        self.name = name
        self.backend = backend
        self.package = package
        self.factory = factory
        self.ours = ours

    def __repr__(self) -> str:
        return f"SystemSpec({self.name!r})"


def _spec(name: str, where: str, package: str | None, factory: Callable[..., System], **kw: Any) -> SystemSpec:
    ours = kw.pop("ours", False)
    return SystemSpec(name, where, package, lambda c, w: factory(c, w, **kw), ours=ours)


#: Every W4 system, ours first on each backend (the reference for the ratios).
REGISTRY: list[SystemSpec] = [
    _spec("kode-sqlite-append", "sqlite", "kode-sdk", KodeStore, backend="sqlite", mode="append", ours=True),
    _spec("kode-sqlite-save", "sqlite", "kode-sdk", KodeStore, backend="sqlite", mode="save", ours=True),
    _spec("openai-sqlitesession", "sqlite", "openai-agents", lambda c, w: OpenAISQLiteSession(c, w)),
    _spec("openai-sqlitesession-sync-normal", "sqlite", "openai-agents", OpenAISQLiteSession, synchronous="NORMAL"),
    _spec("openai-sqlalchemy-aiosqlite", "sqlite", "openai-agents", OpenAISQLAlchemy, driver="aiosqlite"),
    _spec("kode-openai-session-sqlite", "sqlite", "kode-sdk", KodeAgentsSession, backend="sqlite"),
    _spec("langgraph-sqlitesaver", "sqlite", "langgraph-checkpoint-sqlite", LangGraphSaver, saver="sqlite"),
    _spec("kode-langgraph-sqlite", "sqlite", "kode-sdk", LangGraphSaver, saver="kode-sqlite"),
    _spec("adk-databasesessionservice-sqlite", "sqlite", "google-adk", ADKDatabaseSessions, backend="sqlite"),
    _spec("kode-adk-sqlite", "sqlite", "kode-sdk", KodeADKSessions, backend="sqlite"),
    _spec("langgraph-inmemorysaver", "memory", "langgraph", LangGraphSaver, saver="memory"),
    _spec("kode-postgres-append", "postgres", "kode-sdk", KodeStore, backend="postgres", mode="append", ours=True),
    _spec("kode-postgres-save", "postgres", "kode-sdk", KodeStore, backend="postgres", mode="save", ours=True),
    _spec("openai-sqlalchemy-psycopg", "postgres", "openai-agents", OpenAISQLAlchemy, driver="psycopg"),
    _spec("openai-sqlalchemy-asyncpg", "postgres", "openai-agents", OpenAISQLAlchemy, driver="asyncpg"),
    _spec("kode-openai-session-postgres", "postgres", "kode-sdk", KodeAgentsSession, backend="postgres"),
    _spec("langgraph-postgressaver", "postgres", "langgraph-checkpoint-postgres", LangGraphSaver, saver="postgres"),
    _spec("kode-langgraph-postgres", "postgres", "kode-sdk", LangGraphSaver, saver="kode-postgres"),
    _spec("adk-databasesessionservice-postgres", "postgres", "google-adk", ADKDatabaseSessions, backend="postgres"),
    _spec("kode-adk-postgres", "postgres", "kode-sdk", KodeADKSessions, backend="postgres"),
]
