"""Full-text search over messages: the rules every backend shares.

``search_messages`` is written once, here (:class:`MessageSearch`): it
validates the query and the filters, turns the query into terms, and builds
each hit's snippet and highlights. A backend implements one primitive,
``_search_rows(request)``, which only looks the terms up in its index (or
scans) and returns the matching rows, ranked and paged.

What is searchable is one text per message (:func:`search_text`): its text
blocks, each tool use's name and JSON input, and each tool result's content,
joined by newlines. Words are found and compared the same way everywhere
(:func:`tokens`, :func:`fold`):

* a word is a run of letters and digits (with their combining marks); each
  character of a script written without spaces (Chinese, Japanese kana,
  Thai, Lao, Khmer, Myanmar) is a word of its own, so a run of such
  characters is found as a phrase of characters, from any position in it;
* words are compared after NFKD, dropping combining diacritics, case folding
  and NFC: ``Café``, ``CAFE`` and ``café`` are one word, ``Straße`` is
  ``strasse``, full-width ``ＡＢＣ`` is ``abc``;
* a run of more than :data:`MAX_WORD_CHARS` letters is several words (cut the
  same way in the index and in queries, so it is still found, as a phrase);
* only the first :data:`MAX_INDEXED_WORDS` words of a message are indexed.

A backend indexes :func:`index_text` — the folded words joined by single
spaces — so its own tokenizer has nothing left to decide (SQLite FTS5 with
``unicode61``, PostgreSQL ``to_tsvector('simple', ...)``).

Query meaning (:func:`parse_query`): every whitespace-separated chunk is a
term and every term must match (AND); a chunk of several words (``foo-bar``,
``数据库``) and a ``"quoted phrase"`` match as a phrase (consecutive words).
Nothing in a query is an operator: ``OR``, ``NOT``, ``*``, ``:``, ``(`` are
words or separators. An empty query, one with no word in it, one longer than
:data:`MAX_QUERY_CHARS` characters or with more than :data:`MAX_QUERY_WORDS`
words raises ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from .. import jsoncodec
from ..types import MessageHit, Role, ms_to_datetime
from .agent_ids import validate_agent_id
from .lifecycle import operation
from .policy import check_page, time_bound

__all__ = [
    "MAX_INDEXED_WORDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_WORDS",
    "MAX_WORD_CHARS",
    "SNIPPET_CHARS",
    "MessageSearch",
    "SearchCandidate",
    "SearchQuery",
    "SearchRequest",
    "SearchRow",
    "SearchScan",
    "fold",
    "index_text",
    "make_hit",
    "parse_query",
    "scan_search",
    "search_request",
    "search_text",
    "snippet",
    "tokens",
]

#: A query longer than this many characters is refused (``ValueError``).
MAX_QUERY_CHARS = 1_000
#: A query with more words than this is refused (``ValueError``).
MAX_QUERY_WORDS = 64
#: Only the first this many words of a message are indexed and searched
#: (PostgreSQL keeps word positions only up to 16,383).
MAX_INDEXED_WORDS = 16_000
#: The longest word, in characters; a longer run of letters is several words.
MAX_WORD_CHARS = 200
#: The length a snippet aims at, in characters (ellipses not counted).
SNIPPET_CHARS = 200
# Characters of context kept before the first match in a snippet.
_SNIPPET_LEAD = 60

# --------------------------------------------------------------------------- words

# Scripts written without spaces between words: every character is a word.
_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals, Kangxi radicals
    "\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"  # ideographic iteration marks, numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003134f"  # CJK ideographs, supplementary planes
)
# Combining marks that belong to the word they follow (Python's \w leaves them
# out), and the Indic blocks whole (their vowel signs are marks).
_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
    "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u0900-\u0dff\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
)
# A run longer than MAX_WORD_CHARS is cut into words of that length (in the
# index and in queries alike, so a long run is still found, as a phrase):
# PostgreSQL does not index a lexeme of more than 2,047 bytes.
_WORD = re.compile(f"[{_UNSPACED}][{_MARKS}]*|(?:(?![{_UNSPACED}])[^\\W_]|[{_MARKS}]){{1,200}}")
_ASCII_WORD = re.compile(r"[A-Za-z0-9]{1,200}")
# Diacritics dropped when folding: the combining blocks used by Latin (and
# Greek and Cyrillic) text, not the vowel signs of other scripts.
_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


@functools.lru_cache(maxsize=65_536)
def _fold_unicode(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return unicodedata.normalize("NFC", _DIACRITICS.sub("", decomposed).casefold())


def fold(word: str) -> str:
    """The form words are compared in: no diacritics, case folded, NFKC-like.

    >>> fold("Café"), fold("STRASSE"), fold("Straße"), fold("ＡＢＣ")
    ('cafe', 'strasse', 'strasse', 'abc')
    """
    if word.isascii():
        return word.lower()
    return _fold_unicode(word)


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, folded word)`` of every word of ``text``, in order (at
    most :data:`MAX_INDEXED_WORDS`; words that fold to nothing are left out)."""
    found: list[tuple[int, int, str]] = []
    pattern = _ASCII_WORD if text.isascii() else _WORD
    for match in pattern.finditer(text):
        word = fold(match.group())
        if word:
            found.append((match.start(), match.end(), word))
            if len(found) >= MAX_INDEXED_WORDS:
                break
    return found


def tokens(text: str) -> list[str]:
    """The folded words of ``text``, in order (at most :data:`MAX_INDEXED_WORDS`).

    >>> tokens("Ünïcode-safe: 数据库 OK")
    ['unicode', 'safe', '数', '据', '库', 'ok']
    """
    if text.isascii():
        words = _ASCII_WORD.findall(text.lower())
        return words[:MAX_INDEXED_WORDS] if len(words) > MAX_INDEXED_WORDS else words
    return [word for _, _, word in word_spans(text)]


# --------------------------------------------------------------------------- message text


def _json_text(value: Any) -> str:
    try:
        return jsoncodec.encode(value, "input").decode("utf-8")
    except (TypeError, ValueError):
        return str(value)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, Mapping) and item.get("type") == "text" and isinstance(item.get("text"), str):
                parts.append(item["text"])
            elif isinstance(item, str):
                parts.append(item)
            elif item is not None:
                parts.append(_json_text(item))
        return "\n".join(parts)
    return "" if content is None else _json_text(content)


def search_text(message: Mapping[str, Any]) -> str:
    """The searchable text of a message (its wire form): text blocks, each
    tool use as ``name {json input}``, each tool result's content (its text
    blocks, or JSON), joined by newlines. Other block types are not searched.
    """
    parts: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    for block in content:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str):
                parts.append(text)
        elif kind == "tool_use":
            parts.append(f"{block.get('name', '')} {_json_text(block.get('input'))}")
        elif kind == "tool_result":
            parts.append(_result_text(block.get("content")))
    return "\n".join(parts)


def index_text(message: Mapping[str, Any]) -> str:
    """What a backend's full-text index holds for a message: its folded words
    joined by single spaces (see the module docs).

    >>> index_text({"role": "user", "content": [{"type": "text", "text": "Héllo, 世界!"}]})
    'hello 世 界'
    """
    return " ".join(tokens(search_text(message)))


# --------------------------------------------------------------------------- queries

_QUOTES = '"\u201c\u201d\u201e'
_CHUNK = re.compile(f"[{_QUOTES}]([^{_QUOTES}]*)[{_QUOTES}]?|[^\\s{_QUOTES}]+")


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A parsed query: every term must match; a term of several words is a phrase."""

    text: str
    terms: tuple[tuple[str, ...], ...]

    def fts5(self) -> str:
        """The query in SQLite FTS5 syntax: each term a quoted phrase, ANDed.
        Words hold no quote (they are letters and digits), so quoting is safe."""
        return " AND ".join('"' + " ".join(term).replace('"', '""') + '"' for term in self.terms)

    def phrases(self) -> list[str]:
        """Each term as space-separated words (for ``phraseto_tsquery``)."""
        return [" ".join(term) for term in self.terms]


def parse_query(query: object) -> SearchQuery:
    """Validate and parse a search query (see the module docs for its meaning).

    >>> parse_query('Deploy "blue green" NOT-ready').terms
    (('deploy',), ('blue', 'green'), ('not', 'ready'))
    """
    if not isinstance(query, str):
        raise ValueError(f"query must be a str; got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise ValueError(f"query is too long: {len(query)} characters, at most {MAX_QUERY_CHARS}")
    if not query.strip():
        raise ValueError("query is empty")
    terms: list[tuple[str, ...]] = []
    count = 0
    for match in _CHUNK.finditer(query):
        chunk = match.group(1) if match.group(1) is not None else match.group()
        words = tuple(tokens(chunk))
        if not words:
            continue
        count += len(words)
        if count > MAX_QUERY_WORDS:
            raise ValueError(f"query has too many words: at most {MAX_QUERY_WORDS}")
        if words not in terms:
            terms.append(words)
    if not terms:
        raise ValueError(f"query has no words to search for: {query[:80]!r}")
    return SearchQuery(query, tuple(terms))


# --------------------------------------------------------------------------- requests


def _check_filter(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a str; got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL")
    return value


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated ``search_messages`` call: what a backend's ``_search_rows`` gets.

    Times are epoch ms (inclusive bounds); every filter may be ``None``.
    """

    query: SearchQuery
    agent_id: str | None
    template_id: str | None
    user_id: str | None
    role: str | None
    created_after: int | None
    created_before: int | None
    limit: int
    offset: int


#: The filters of ``search_messages`` and their defaults.
_SEARCH_DEFAULTS: dict[str, Any] = {
    "agent_id": None,
    "template_id": None,
    "user_id": None,
    "role": None,
    "created_after": None,
    "created_before": None,
    "limit": 20,
    "offset": 0,
}


def search_request(query: object, **filters: Any) -> SearchRequest:
    """Validate the arguments of ``search_messages`` (``filters`` its keyword
    arguments, each left out at its default): ``ValueError`` (or
    ``InvalidAgentIdError`` for ``agent_id``) naming what was wrong."""
    unknown = sorted(filters.keys() - _SEARCH_DEFAULTS.keys())
    if unknown:
        raise TypeError(f"search_request() got unexpected keyword arguments: {', '.join(unknown)}")
    given = {**_SEARCH_DEFAULTS, **filters}
    parsed = parse_query(query)
    limit, offset = check_page(given["limit"], given["offset"])
    agent_id = given["agent_id"]
    return SearchRequest(
        query=parsed,
        agent_id=None if agent_id is None else validate_agent_id(agent_id),
        template_id=_check_filter(given["template_id"], "template_id"),
        user_id=_check_filter(given["user_id"], "user_id"),
        role=_check_filter(given["role"], "role"),
        created_after=_clamp(time_bound(given["created_after"], "created_after")),
        created_before=_clamp(time_bound(given["created_before"], "created_before")),
        limit=limit,
        offset=offset,
    )


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _clamp(value: int | None) -> int | None:
    # Every stored timestamp is a BIGINT: clamping keeps the result and the
    # parameter bindable.
    return None if value is None else max(min(value, _INT64_MAX), _INT64_MIN)


@dataclass(frozen=True, slots=True)
class SearchRow:
    """One match as a backend returns it: ``message`` is the wire form, ``score`` higher is better."""

    agent_id: str
    seq: int
    role: str
    created_at: int
    message: Mapping[str, Any]
    score: float


# --------------------------------------------------------------------------- matching


def _term_starts(words: Sequence[str], positions: Mapping[str, list[int]], term: tuple[str, ...]) -> list[int]:
    """Word positions where ``term`` starts in ``words``."""
    first = positions.get(term[0])
    if not first:
        return []
    if len(term) == 1:
        return first
    n = len(term)
    return [p for p in first if tuple(words[p : p + n]) == term]


def _positions(words: Sequence[str]) -> dict[str, list[int]]:
    positions: dict[str, list[int]] = {}
    for index, word in enumerate(words):
        positions.setdefault(word, []).append(index)
    return positions


@dataclass(frozen=True, slots=True)
class SearchCandidate:
    """A message a scanning backend offers to :func:`scan_search` (filters already applied)."""

    agent_id: str
    seq: int
    role: str
    created_at: int
    message: Mapping[str, Any]


class SearchScan:
    """Search by reading every message: for backends without an index.

    Offer each candidate (filters already applied) to :meth:`offer`; only the
    matches are kept. :meth:`rows` ranks them by BM25 (k1 1.2, b 0.75, with
    statistics over all candidates), then newest first (``created_at``, seq,
    agent id descending), and returns the request's page.
    """

    def __init__(self, request: SearchRequest) -> None:
        self.request = request
        self._terms = request.query.terms
        self._matched: list[tuple[SearchCandidate, int, list[int]]] = []
        self._total_words = 0
        self._count = 0
        self._document_frequency = [0] * len(self._terms)

    def offer(self, candidate: SearchCandidate) -> None:
        """Consider one message."""
        words = tokens(search_text(candidate.message))
        self._count += 1
        self._total_words += len(words)
        positions = _positions(words)
        frequencies = [len(_term_starts(words, positions, term)) for term in self._terms]
        for index, frequency in enumerate(frequencies):
            if frequency:
                self._document_frequency[index] += 1
        if all(frequencies):
            self._matched.append((candidate, len(words), frequencies))

    def rows(self) -> list[SearchRow]:
        """The requested page of matches, best first."""
        if not self._matched:
            return []
        count = self._count
        average = self._total_words / count or 1.0
        idf = [math.log(1 + (count - df + 0.5) / (df + 0.5)) for df in self._document_frequency]
        rows = []
        for candidate, length, frequencies in self._matched:
            norm = 1.2 * (0.25 + 0.75 * length / average)
            score = sum(idf[i] * f * 2.2 / (f + norm) for i, f in enumerate(frequencies))
            rows.append(
                SearchRow(
                    candidate.agent_id, candidate.seq, candidate.role, candidate.created_at, candidate.message, score
                )
            )
        rows.sort(key=lambda r: (r.score, r.created_at, r.seq, r.agent_id), reverse=True)
        return rows[self.request.offset : self.request.offset + self.request.limit]


def scan_search(request: SearchRequest, candidates: Iterable[SearchCandidate]) -> list[SearchRow]:
    """:class:`SearchScan` over an iterable of candidates."""
    scan = SearchScan(request)
    for candidate in candidates:
        scan.offer(candidate)
    return scan.rows()


# --------------------------------------------------------------------------- hits


_PARTIAL_HEAD = re.compile(r"[^\W_]*")
_PARTIAL_TAIL = re.compile(r"[^\W_]+\Z")


@functools.lru_cache(maxsize=256)
def _ascii_pattern(terms: tuple[tuple[str, ...], ...]) -> re.Pattern[str] | None:
    """One regex finding every term in ASCII text (words whole, case ignored)."""
    parts = [
        "(?<![A-Za-z0-9])" + "[^A-Za-z0-9]+".join(map(re.escape, term)) + "(?![A-Za-z0-9])"
        for term in terms
        if all(word.isascii() for word in term)
    ]
    return re.compile("|".join(parts), re.ASCII | re.IGNORECASE) if parts else None


def _match_spans(text: str, query: SearchQuery) -> list[tuple[int, int]]:
    """``(start, end)`` in ``text`` of every occurrence of every query term, sorted."""
    if text.isascii():
        # A regex of the terms instead of every word of the text: a snippet is
        # built for each hit, and this is most of its cost.
        pattern = _ascii_pattern(query.terms)
        return [] if pattern is None else [m.span() for m in pattern.finditer(text)]
    spans = word_spans(text)
    words = [w for _, _, w in spans]
    bounds = [(a, b) for a, b, _ in spans]
    matches: list[tuple[int, int]] = []
    for term in query.terms:
        n = len(term)
        first = term[0]
        for p, word in enumerate(words):
            if word == first and (n == 1 or tuple(words[p : p + n]) == term):
                matches.append((bounds[p][0], bounds[p + n - 1][1]))
    matches.sort()
    return matches


def snippet(text: str, query: SearchQuery, size: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """A window of ``text`` around its first match and the matches inside it.

    Returns ``(snippet, highlights)``: whitespace is shown as single spaces,
    an ellipsis marks a cut end, and each highlight is a ``(start, end)``
    index pair into the snippet (end exclusive) covering one term occurrence
    (a whole phrase for a phrase term).

    >>> snippet("Alpha beta gamma", parse_query("BETA"))
    ('Alpha beta gamma', [(6, 10)])
    """
    matches = _match_spans(text, query)
    anchor, anchor_end = matches[0] if matches else (0, 0)
    start = 0
    if anchor > _SNIPPET_LEAD:
        # Begin at a word, not inside one.
        head = _PARTIAL_HEAD.match(text, anchor - _SNIPPET_LEAD)
        start = min(head.end() if head else anchor, anchor)
        while start < anchor and text[start].isspace():
            start += 1
    end = min(len(text), start + size)
    if end < len(text) and text[end].isalnum():
        # End after a word, not inside one (unless that would cut the first match).
        partial = _PARTIAL_TAIL.search(text, start, end)
        if partial is not None and partial.start() > start and partial.start() >= anchor_end:
            end = partial.start()
        while end > max(start, anchor_end) and text[end - 1].isspace():
            end -= 1
    prefix = "…" if start > 0 else ""
    body = re.sub(r"\s", " ", text[start:end])
    shown = prefix + body + ("…" if end < len(text) else "")
    shift = len(prefix) - start
    highlights: list[tuple[int, int]] = []
    for s, e in matches:
        if s < start or e > end:
            continue
        s, e = s + shift, e + shift
        if highlights and s <= highlights[-1][1]:
            highlights[-1] = (highlights[-1][0], max(highlights[-1][1], e))
        else:
            highlights.append((s, e))
    return shown, highlights


def make_hit(query: SearchQuery, row: SearchRow) -> MessageHit:
    """The :class:`MessageHit` of one backend row: snippet and highlights built here."""
    shown, highlights = snippet(search_text(row.message), query)
    return MessageHit.model_construct(
        agent_id=row.agent_id,
        seq=row.seq,
        role=cast(Role, row.role),
        created_at=ms_to_datetime(row.created_at),
        snippet=shown,
        highlights=highlights,
        score=float(row.score),
    )


# --------------------------------------------------------------------------- the method


class MessageSearch:
    """Gives a store ``search_messages``; the store implements ``_search_rows``.

    ``_search_rows(request)`` returns the page of matching messages described
    by the :class:`SearchRequest` (filters applied, best first, ties newest
    first), as :class:`SearchRow`; everything else — validation, query
    parsing, snippets, metrics — happens here, the same for every backend.
    """

    @operation("queries", agent=False)
    async def search_messages(
        self,
        query: str,
        *,
        agent_id: str | None = None,
        template_id: str | None = None,
        user_id: str | None = None,
        role: str | None = None,
        created_after: datetime | int | None = None,
        created_before: datetime | int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[MessageHit]:
        """Messages matching ``query`` across agents, best first (see
        :mod:`kode_sdk.store.search` for the query's meaning).

        >>> hits = await store.search_messages('deploy "blue green"', role="assistant")   # doctest: +SKIP
        >>> hits[0].snippet[slice(*hits[0].highlights[0])]                                  # doctest: +SKIP
        'deploy'
        """
        request = search_request(
            query,
            agent_id=agent_id,
            template_id=template_id,
            user_id=user_id,
            role=role,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
        rows = await self._search_rows(request)
        return [make_hit(request.query, row) for row in rows]

    async def _search_rows(self, request: SearchRequest) -> list[SearchRow]:
        raise NotImplementedError
