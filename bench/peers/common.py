"""What every W4 system shares: the conversation, the system interface, and
how bytes on disk are measured.

The conversation is generated once per run from a seed: ``sessions`` ×
``turns`` turns, each turn three messages (user text; assistant text plus one
tool call; the tool's result). The text is random letters, digits and spaces,
so no system's storage can look small because the text compresses well, and it
is ASCII, so no system pays for escaping that another does not.

A system (one adapter per peer in this package) persists each turn as it
happens, the way that system is used natively, and reads each session's whole
history back. Each adapter turns its native history back into :class:`Turn`
tuples; the runner compares them with what was written.
"""

from __future__ import annotations

import os
import random
import sqlite3
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

# Characters of random text per turn: user 200, assistant 300, tool input 80,
# tool result 350 = 930 (WORKLOAD.md W4: "about 930 bytes of random text").
USER_CHARS = 200
ASSISTANT_CHARS = 300
CMD_CHARS = 80
RESULT_CHARS = 350
TEXT_BYTES_PER_TURN = USER_CHARS + ASSISTANT_CHARS + CMD_CHARS + RESULT_CHARS
TOOL_NAMES = ("bash_run", "fs_read", "fs_write", "fs_grep")
_ALPHABET = string.ascii_letters + string.digits + "      "  # spaces: word-like lengths

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


class Turn(NamedTuple):
    """One turn in a form every system can express and give back.

    ``is_error`` is ``None`` when compared for a system whose native format has
    no place for it (the OpenAI Responses ``function_call_output`` item).
    """

    user: str
    assistant: str
    tool_id: str
    tool_name: str
    cmd: str
    result: str
    is_error: bool | None

    def kode_messages(self) -> list[dict[str, Any]]:
        """The turn as this project's three wire-format messages."""
        return [
            {"role": "user", "content": [{"type": "text", "text": self.user}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": self.assistant},
                    {"type": "tool_use", "id": self.tool_id, "name": self.tool_name, "input": {"cmd": self.cmd}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": self.tool_id,
                        "content": self.result,
                        "is_error": self.is_error,
                    }
                ],
            },
        ]


@dataclass(frozen=True)
class Conversation:
    """The whole workload: ``turns[s][t]`` is turn ``t`` of session ``session_ids[s]``."""

    session_ids: list[str]
    turns: list[list[Turn]]
    seed: int

    @property
    def turn_count(self) -> int:
        return len(self.turns[0]) if self.turns else 0

    @property
    def raw_text_bytes(self) -> int:
        """Bytes of the random text alone (the payload every system must keep)."""
        return sum(len(t.user) + len(t.assistant) + len(t.cmd) + len(t.result) for turns in self.turns for t in turns)


def make_conversation(sessions: int, turns: int, seed: int = 4) -> Conversation:
    """Build the W4 conversation: deterministic for a seed, random in content."""
    rng = random.Random(seed)

    def text(n: int) -> str:
        return "".join(rng.choices(_ALPHABET, k=n))

    session_ids = [f"w4-s{s:03d}" for s in range(sessions)]
    all_turns = [
        [
            Turn(
                user=text(USER_CHARS),
                assistant=text(ASSISTANT_CHARS),
                tool_id=f"toolu_{s}_{t}",
                tool_name=TOOL_NAMES[t % 4],
                cmd=text(CMD_CHARS),
                result=text(RESULT_CHARS),
                is_error=t % 7 == 0,
            )
            for t in range(turns)
        ]
        for s in range(sessions)
    ]
    return Conversation(session_ids, all_turns, seed)


class Skip(Exception):
    """This system cannot run here; the message says why (reported, never hidden)."""


@dataclass
class Workspace:
    """Where one repetition of one system keeps its data.

    ``directory`` is a fresh temporary directory (SQLite systems put their files
    there); ``dsn`` and ``schema`` name a fresh PostgreSQL schema (PostgreSQL
    systems create every table in it, and it is dropped afterwards).
    """

    directory: Path
    dsn: str
    schema: str
    files: list[Path] = field(default_factory=list)


class System:
    """One way of persisting the conversation. Subclasses are the adapters.

    The runner calls, in order: :meth:`setup` (untimed: connect, create
    tables), :meth:`write_turn` for every turn round-robin over sessions
    (timed), :meth:`read` for every session (timed), :meth:`decode` on each
    result (untimed), :meth:`close` (untimed), then measures bytes.
    """

    #: Row name in results, e.g. ``"openai-sqlitesession"``.
    name = "system"
    #: ``"sqlite"``, ``"postgres"`` or ``"memory"`` (no bytes on disk).
    backend = "sqlite"
    #: One sentence: what this system writes per turn, for the docs.
    writes_per_turn = ""
    #: Fields of :class:`Turn` this system cannot represent natively (compared as ``None``).
    masked: tuple[str, ...] = ()
    #: Whether ``write_turn``/``read`` block (sync API) rather than await I/O.
    sync = False

    def __init__(self, conversation: Conversation, workspace: Workspace) -> None:
        self.conversation = conversation
        self.workspace = workspace

    async def setup(self) -> None:
        """Connect and create tables. Not timed."""

    async def write_turn(self, session: int, turn: int) -> None:
        """Persist turn ``turn`` of session ``session`` natively. Timed."""
        raise NotImplementedError

    async def read(self, session: int) -> Any:
        """Read the session's whole history back in the system's native form. Timed."""
        raise NotImplementedError

    def decode(self, native: Any) -> list[Turn]:
        """Turn what :meth:`read` returned into :class:`Turn` tuples. Not timed."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (and, for SQLite, let the WAL be checkpointed)."""

    async def durability(self) -> str | None:
        """How durable a commit is, read from a live connection of this system
        (SQLite: journal mode and ``synchronous``; PostgreSQL: ``synchronous_commit``)."""
        return None

    def expected(self, session: int) -> list[Turn]:
        """The turns that were written, with :attr:`masked` fields set to ``None``."""
        turns = self.conversation.turns[session]
        if not self.masked:
            return turns
        blank = dict.fromkeys(self.masked)
        return [t._replace(**blank) for t in turns]


# --------------------------------------------------------------------------- bytes


def sqlite_bytes(paths: list[Path]) -> int:
    """Bytes of SQLite database files, after checkpointing their WAL into the file.

    The ``-wal`` file is counted (it is empty after a successful TRUNCATE
    checkpoint, but a checkpoint blocked by a reader would leave pages there);
    the ``-shm`` index is not data and is not counted.
    """
    total = 0
    for path in paths:
        if not path.exists():
            continue
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        total += path.stat().st_size
        wal = Path(str(path) + "-wal")
        if wal.exists():
            total += wal.stat().st_size
    return total


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sqlite_durability(conn: Any) -> str:
    """``journal_mode=…, synchronous=…`` of a DB-API sqlite3 connection."""
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    level = conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"journal_mode={mode}, synchronous={_SYNCHRONOUS.get(level, level)}"


def pg_durability(conn: Any) -> str:
    """``synchronous_commit=…`` of a DB-API PostgreSQL connection."""
    cursor = conn.cursor()
    try:
        cursor.execute("SHOW synchronous_commit")
        row = cursor.fetchone()
        value = next(iter(row.values())) if isinstance(row, dict) else row[0]
        return f"synchronous_commit={value}"
    finally:
        cursor.close()


async def engine_durability(engine: Any) -> str:
    """The same, through a SQLAlchemy async engine's own pool."""
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            level = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            return f"journal_mode={mode}, synchronous={_SYNCHRONOUS.get(level, level)}"
        value = (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
        return f"synchronous_commit={value}"


def sqlite_journal_mode(path: Path) -> str:
    """The journal mode a database file is in (``wal``, ``delete``, …)."""
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def pg_dsn(explicit: str | None) -> str:
    """``--dsn`` if given, else ``KODE_TEST_POSTGRES_URL``, else the local test server."""
    return explicit or os.environ.get("KODE_TEST_POSTGRES_URL") or DEFAULT_DSN


def pg_reachable(dsn: str) -> str | None:
    """``None`` when PostgreSQL answers at ``dsn``, else why not."""
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: skip PostgreSQL systems, say why
        return f"PostgreSQL unreachable: {type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return None


def pg_create_schema(dsn: str, schema: str) -> None:
    """Create an empty schema (dropping a leftover of the same name first)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def pg_drop_schema(dsn: str, schema: str) -> None:
    """Drop a schema and everything in it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def pg_schema_bytes(dsn: str, schema: str) -> int:
    """Heap + indexes + TOAST of every table in ``schema`` (``pg_total_relation_size``)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'm')
            """,
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def sqlalchemy_pg_url(dsn: str, driver: str) -> str:
    """``postgresql://…`` → ``postgresql+<driver>://…`` (SQLAlchemy needs a URL, not ``key=value`` form)."""
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return f"postgresql+{driver}://" + dsn[len(prefix) :]
    raise Skip("SQLAlchemy-based systems need the DSN as a postgresql:// URL, not in key=value form")


def search_path_options(schema: str) -> str:
    """libpq ``options`` that make ``schema`` the only schema new tables go to."""
    return f"-c search_path={schema}"
