"""Full-text search on SQLite: ``kode_index_text`` (what the FTS5 table
``messages_search`` indexes for a message, called by the schema's triggers),
catching the index up with the messages queued since the last search, and the
queries that find one page of matches.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from ... import jsoncodec
from ..search import MAX_INDEXED_WORDS, MAX_WORD_CHARS, SearchRequest, search_text, tokens
from ..sql_where import Where
from .blob import unpack
from .transactions import transaction

__all__ = ["index_text_of", "register_functions", "search_job"]


# ASCII text with no run of letters and digits longer than a word may be.
_PLAIN_ASCII = re.compile(f"[A-Za-z0-9]{{{MAX_WORD_CHARS + 1}}}")


def index_text_of(data: str | bytes) -> str:
    """kode_index_text(data): what messages_search indexes for a message row.

    A pure function of ``data`` (the search-index triggers depend on it) that
    never raises: an exception inside a trigger would fail the write.

    ASCII text goes to FTS5 as it is: unicode61 splits it into the same words
    as search.tokens (runs of ASCII letters and digits) and folds their case
    the same way, so the result is identical and the Python tokenizing, most
    of this function's cost on the write path, is skipped."""
    try:
        text = search_text(jsoncodec.decode(unpack(data)))
        # (At most 32,000 characters: fewer words than MAX_INDEXED_WORDS.)
        if len(text) <= 2 * MAX_INDEXED_WORDS and text.isascii() and _PLAIN_ASCII.search(text) is None:
            return text
        return " ".join(tokens(text))
    except Exception:  # an unreadable row is reported by loads, not by writes
        return ""


# Messages indexed per transaction when the index catches up (a search waits
# for the whole backlog; batches keep each write lock short for other writers).
_INDEX_BATCH = 2_000


def _index_pending(conn: sqlite3.Connection) -> None:
    """Index the messages queued in messages_search_pending (schema 0004)."""
    if conn.execute("SELECT 1 FROM messages_search_pending LIMIT 1").fetchone() is None:
        return
    while True:
        with transaction(conn, write=True):
            rows = conn.execute(
                "SELECT p.id, m.data FROM messages_search_pending p LEFT JOIN messages m ON m.rowid = p.id"
                " ORDER BY p.id LIMIT ?",
                (_INDEX_BATCH,),
            ).fetchall()
            if not rows:
                return
            conn.executemany(
                "INSERT INTO messages_search (rowid, body) VALUES (?, ?)",
                [(rowid, index_text_of(data)) for rowid, data in rows if data is not None],
            )
            # Every pending id up to the last one read was read (in id order).
            conn.execute("DELETE FROM messages_search_pending WHERE id <= ?", (rows[-1][0],))
        if len(rows) < _INDEX_BATCH:
            return


def register_functions(conn: sqlite3.Connection) -> None:
    """Register the SQL functions the schema's triggers call (``kode_index_text``)
    on ``conn``. Any connection that deletes or rewrites messages needs them."""
    conn.create_function("kode_index_text", 1, index_text_of, deterministic=True)


# search_messages (see search_job): the best matches by rank
# alone, and the general query with filters, ties in created_at, seq, agent id.
_SEARCH_TOP = "SELECT rowid, rank FROM messages_search WHERE messages_search MATCH ? ORDER BY rank LIMIT ?"
# Beyond this many rows tied at the cut, the general query sorts them instead.
_SEARCH_TOP_MAX = 20_000


def _search_sql(request: SearchRequest, match: str) -> tuple[str, list[Any]]:
    """The general search query: (rowid, agent_id, seq, role, created_at, rank) of one page."""
    joins = ""
    where = Where("?")
    where.add("messages_search MATCH ?", match)
    if request.template_id is not None or request.user_id is not None:
        joins = " JOIN agents a ON a.agent_id = m.agent_id"
        where.equal("a.template_id", request.template_id)
        if request.user_id is not None:
            where.add("a.user_id = ? AND a.template_id IS NOT NULL", request.user_id)
    where.equal("m.agent_id", request.agent_id)
    where.equal("m.role", request.role)
    where.compare("m.created_at", ">=", request.created_after)
    where.compare("m.created_at", "<=", request.created_before)
    sql = (
        "SELECT m.rowid, m.agent_id, m.seq, m.role, m.created_at, s.rank"
        f" FROM messages_search s JOIN messages m ON m.rowid = s.rowid{joins}"
        f" {where.sql()}ORDER BY s.rank, m.created_at DESC, m.seq DESC, m.agent_id DESC LIMIT ? OFFSET ?"
    )
    return sql, [*where.params, request.limit, request.offset]


class _descending:
    """Sorts a string in reverse (a sort key for ``agent_id DESC`` among ascending keys)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _descending) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _descending) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def search_job(request: SearchRequest) -> Callable[[sqlite3.Connection], list[Any]]:
    """The connection-thread job of ``search_messages``: (agent_id, seq, role,
    created_at, rank, data) of one page, after the index has caught up with
    the messages queued since the last search.

    Without filters, FTS5 alone picks the best ``offset + limit`` (its
    bounded sort by rank), and only those rows are read from messages;
    when a rank ties across the cut, or with filters, the matches are
    joined to messages and sorted there. Either way a message's data is
    read only for the page."""
    match = request.query.fts5()
    want = request.offset + request.limit
    unfiltered = all(
        value is None
        for value in (
            request.agent_id,
            request.template_id,
            request.user_id,
            request.role,
            request.created_after,
            request.created_before,
        )
    )
    full_sql, full_params = _search_sql(request, match)

    def job(conn: sqlite3.Connection) -> list[Any]:
        _index_pending(conn)
        page: list[Any] | None = None
        fetch = want * 4 + 16  # a bounded sort: fetching more costs little, a retry a whole query
        while unfiltered and page is None and fetch <= _SEARCH_TOP_MAX:
            top = conn.execute(_SEARCH_TOP, (match, fetch)).fetchall()
            if len(top) == fetch and top[-1][1] == top[want - 1][1]:
                fetch *= 4  # the rank at the cut is shared beyond it: look further
                continue
            # Every row ranked like the last one of the page is in `top`.
            cut = top[want - 1][1] if len(top) >= want else None
            ranks = {rowid: rank for rowid, rank in top if cut is None or rank <= cut}
            page = []
            if ranks:
                marks = ", ".join("?" * len(ranks))
                found = conn.execute(
                    f"SELECT rowid, agent_id, seq, role, created_at FROM messages WHERE rowid IN ({marks})",
                    list(ranks),
                ).fetchall()
                found.sort(key=lambda r: (ranks[r[0]], -r[4], -r[2], _descending(r[1])))
                page = [(*r, ranks[r[0]]) for r in found[request.offset : want]]
        if page is None:
            page = conn.execute(full_sql, full_params).fetchall()
        if not page:
            return []
        marks = ", ".join("?" * len(page))
        data = dict(conn.execute(f"SELECT rowid, data FROM messages WHERE rowid IN ({marks})", [r[0] for r in page]))
        return [(*r[1:], data[r[0]]) for r in page]

    return job
