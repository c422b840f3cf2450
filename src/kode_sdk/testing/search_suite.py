"""The conformance tests of ``search_messages`` (part of the QueryableStore contract).

Every test writes words made unique by its agent-id prefix (``ns``), so a
shared database holding other tests' messages does not disturb it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from ..errors import InvalidAgentIdError
from ..types import MessageHit, to_epoch_ms
from . import data
from .data import assert_utc

__all__ = ["SearchConformance"]

#: Queries that break a store pasting them into FTS5, tsquery or SQL.
HOSTILE_QUERIES = [
    '"',
    '""',
    '"unterminated phrase',
    "(",
    ")",
    "(a OR b) AND NOT c",
    "a AND",
    "NOT",
    "OR",
    "NEAR(a b, 3)",
    "*",
    "a*",
    "^a",
    "col:value",
    "a - b",
    "a + b",
    "x' OR '1'='1",
    "x; DROP TABLE messages; --",
    "back\\slash",
    "a & b | !c <-> d",
    "'quoted'",
    "{}[]",
    "\x00",
    "a\x00b",
    "\u200b",
    "\ud7ff\ue000",
    "a" * 999,
    "word " * 64,
    "%_%",
]


def _word(ns: str, stem: str) -> str:
    """A word no other test writes: ``stem`` + the letters and digits of ``ns``."""
    return stem + "".join(ch for ch in ns if ch.isalnum())


def _text(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}]}


async def _save_texts(
    store: Any, ns: str, texts: list[tuple[str, str]]
) -> tuple[str, Callable[[str], Awaitable[list[int]]]]:
    """Save ``texts`` (role, text) as agent ``ns + "a"``'s messages, each ending
    in a word no other test writes; returns that word and a search for it plus
    a query, giving the sorted seqs found."""
    u = _word(ns, "")
    await store.save_messages(ns + "a", [_text(role, f"{text} {u}") for role, text in texts])

    async def seqs(query: str) -> list[int]:
        return sorted(h.seq for h in await store.search_messages(f"{query} {u}"))

    return u, seqs


def _check_highlights(hit: MessageHit, expected: str) -> None:
    """Every highlight is a valid slice of the snippet showing ``expected`` (any case/accents)."""
    assert hit.highlights, f"no highlight in {hit.snippet!r}"
    for start, end in hit.highlights:
        assert 0 <= start < end <= len(hit.snippet), (start, end, hit.snippet)
        assert hit.snippet[start:end].casefold() == expected.casefold(), (hit.snippet[start:end], expected)
    assert hit.highlights == sorted(hit.highlights)


class SearchConformance:
    """``search_messages``: what is searched, query meaning, ranking, filters,
    snippets and highlights, unicode, hostile input. Mixed into
    :class:`~kode_sdk.testing.QueryableStoreConformance`."""

    @pytest.mark.asyncio
    async def test_search_finds_text_tool_input_and_tool_results(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        in_text, in_input, in_result, in_name = (_word(ns, s) for s in ("text", "input", "result", "tool"))
        await store.save_messages(
            agent,
            [
                _text("user", f"Please look at {in_text} today."),
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Running it."},
                        {"type": "tool_use", "id": "t1", "name": f"run_{in_name}", "input": {"cmd": f"ls {in_input}"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": f"found {in_result}\n"}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t2",
                            "content": [{"type": "text", "text": f"nested {in_result}"}],
                            "is_error": True,
                        }
                    ],
                },
            ],
        )
        for word, seqs, role in (
            (in_text, [0], "user"),
            (in_input, [1], "assistant"),
            (in_name, [1], "assistant"),
            (in_result, [3, 2], "user"),
        ):
            hits = await store.search_messages(word)
            assert [h.seq for h in hits] == seqs, word
            for hit in hits:
                assert isinstance(hit, MessageHit)
                assert hit.agent_id == agent
                assert hit.role == role
                assert_utc(hit.created_at, "created_at")
                assert isinstance(hit.score, float)
                _check_highlights(hit, word)

    @pytest.mark.asyncio
    async def test_search_every_word_must_match_and_quotes_make_a_phrase(self, store: Any, ns: str) -> None:
        agent = ns + "a"
        alpha, beta, gamma = (_word(ns, s) for s in ("alpha", "beta", "gamma"))
        await store.save_messages(
            agent,
            [
                _text("user", f"{alpha} {beta} and then {gamma}"),
                _text("user", f"only {alpha} here"),
                _text("user", f"{gamma} {beta} {alpha}"),
            ],
        )

        async def seqs(query: str) -> list[int]:
            return sorted(h.seq for h in await store.search_messages(query, agent_id=agent))

        assert await seqs(alpha) == [0, 1, 2]
        assert await seqs(f"{alpha} {gamma}") == [0, 2]
        assert await seqs(f"{gamma.upper()}   {alpha}") == [0, 2]
        assert await seqs(f'"{alpha} {beta}"') == [0]
        assert await seqs(f'"{beta} {alpha}"') == [2]
        assert await seqs(f'"{alpha} {gamma}"') == []
        assert await seqs(f'"{alpha} {beta}" {gamma}') == [0]
        assert await seqs(f"{alpha} {_word(ns, 'absent')}") == []
        # Operators of FTS engines are plain words here: "OR" must match too.
        assert await seqs(f"{alpha} OR {_word(ns, 'absent')}") == []
        # A chunk joined by punctuation is a phrase of its words.
        assert await seqs(f"{alpha}-{beta}") == [0]
        assert await seqs(f"{beta}.{alpha}") == [2]
        [hit] = await store.search_messages(f'"{alpha} {beta}"', agent_id=agent)
        assert hit.snippet[slice(*hit.highlights[0])] == f"{alpha} {beta}"

    @pytest.mark.asyncio
    async def test_search_ranks_better_matches_first_and_pages_exactly(self, store: Any, ns: str) -> None:
        kiwi = _word(ns, "kiwi")
        filler = " ".join(f"filler{i}" for i in range(60))
        await store.save_messages(ns + "a", [_text("user", f"{filler} {kiwi} {filler}")])
        await store.save_messages(ns + "b", [_text("user", f"{kiwi} {kiwi} {kiwi} salad")])
        await store.save_messages(ns + "c", [_text("user", f"a {kiwi} {filler}")])
        hits = await store.search_messages(kiwi)
        assert hits[0].agent_id == ns + "b"
        assert {h.agent_id for h in hits} == {ns + "a", ns + "b", ns + "c"}
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

        # Ties (identical messages) are broken newest first, so paging visits each hit once.
        for i in range(7):
            await store.save_messages(ns + f"t{i}", [_text("user", f"tie {kiwi}tie")])
        pages = []
        for offset in range(0, 8, 3):
            pages += await store.search_messages(f"{kiwi}tie", limit=3, offset=offset)
        assert sorted(h.agent_id for h in pages) == [ns + f"t{i}" for i in range(7)]
        assert [h.created_at for h in pages] == sorted((h.created_at for h in pages), reverse=True)
        assert await store.search_messages(f"{kiwi}tie", offset=7) == []

    @pytest.mark.asyncio
    async def test_search_filters(self, store: Any, ns: str) -> None:
        plum = _word(ns, "plum")
        a1, a2, a3 = ns + "a1", ns + "a2", ns + "a3"
        await store.save_info(a1, data.info(a1, template_id=ns + "tpl", metadata={"userId": ns + "u"}))
        await store.save_info(a2, data.info(a2, template_id=ns + "tpl", metadata={"user_id": ns + "v"}))
        await store.save_messages(a1, [_text("user", f"{plum} one"), _text("assistant", f"{plum} two")])
        await store.save_messages(a2, [_text("user", f"{plum} three")])
        await store.save_messages(a3, [_text("system", f"{plum} four")])  # no info: no template, no user

        async def found(**filters: Any) -> set[tuple[str, int]]:
            return {(h.agent_id, h.seq) for h in await store.search_messages(plum, **filters)}

        assert await found() == {(a1, 0), (a1, 1), (a2, 0), (a3, 0)}
        assert await found(agent_id=a1) == {(a1, 0), (a1, 1)}
        assert await found(agent_id=ns + "missing") == set()
        assert await found(template_id=ns + "tpl") == {(a1, 0), (a1, 1), (a2, 0)}
        assert await found(template_id=ns + "other") == set()
        assert await found(user_id=ns + "u") == {(a1, 0), (a1, 1)}
        assert await found(user_id=ns + "v") == {(a2, 0)}
        assert await found(role="assistant") == {(a1, 1)}
        assert await found(role="system") == {(a3, 0)}
        assert await found(role="user", template_id=ns + "tpl", user_id=ns + "v") == {(a2, 0)}

        hits = {(h.agent_id, h.seq): h.created_at for h in await store.search_messages(plum)}
        first = hits[(a1, 0)]
        last = hits[(a3, 0)]
        assert await found(created_after=last) == {k for k, v in hits.items() if v >= last}
        assert await found(created_before=first) == {k for k, v in hits.items() if v <= first}
        assert await found(created_after=last + timedelta(milliseconds=1)) == set()
        assert await found(created_before=first - timedelta(milliseconds=1)) == set()
        assert await found(created_after=first, created_before=last) == set(hits)
        assert await found(created_after=to_epoch_ms(first), agent_id=a1) == {(a1, 0), (a1, 1)}

    @pytest.mark.asyncio
    async def test_search_snippet_and_highlights(self, store: Any, ns: str) -> None:
        fig = _word(ns, "fig")
        head = "Lorem ipsum dolor sit amet. " * 20
        tail = " Consectetur adipiscing elit." * 20
        await store.save_messages(ns + "a", [_text("user", f"{head}The {fig.upper()} tree\n{tail}")])
        [hit] = await store.search_messages(fig)
        assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
        assert len(hit.snippet) <= 260
        assert "\n" not in hit.snippet
        _check_highlights(hit, fig)
        assert hit.snippet[hit.highlights[0][1] :].startswith(" tree")

        # Several occurrences: all highlighted; short text: whole text, no ellipsis.
        await store.save_messages(ns + "b", [_text("user", f"{fig}, then {fig}; {fig}!")])
        [hit] = await store.search_messages(fig, agent_id=ns + "b")
        assert hit.snippet == f"{fig}, then {fig}; {fig}!"
        assert [hit.snippet[s:e] for s, e in hit.highlights] == [fig, fig, fig]

    @pytest.mark.asyncio
    async def test_search_ignores_case_and_latin_accents(self, store: Any, ns: str) -> None:
        u, seqs = await _save_texts(
            store,
            ns,
            [("user", "Crème Brûlée at the CAFÉ"), ("user", "Die Straße in Zürich"), ("user", "naïve coöperation")],
        )
        cases = [
            ("creme brulee", [0]),
            ("CRÈME", [0]),
            ("café", [0]),
            ("cafe", [0]),
            ('"creme brulee"', [0]),
            ("strasse zurich", [1]),
            ("STRAẞE", [1]),
            ("naive cooperation", [2]),
        ]
        for query, expected in cases:
            assert await seqs(query) == expected, query
        [hit] = await store.search_messages(f"brulee {u}")
        assert {hit.snippet[s:e] for s, e in hit.highlights} == {"Brûlée", u}

    @pytest.mark.asyncio
    async def test_search_finds_chinese_and_japanese_without_spaces(self, store: Any, ns: str) -> None:
        u, seqs = await _save_texts(
            store,
            ns,
            [
                ("user", "我们使用数据库存储会话记录"),
                ("assistant", "東京タワーに行きました。とても高かったです"),
                ("user", "서울에서 만나요"),
                ("user", "ภาษาไทยไม่มีช่องว่าง"),
            ],
        )
        cases = [
            ("数据库", [0]),
            ("数据", [0]),
            ("存储会话", [0]),
            ("数据 会话", [0]),
            ("会话数据", []),
            ("タワー", [1]),
            ("東京", [1]),
            ("高かった", [1]),
            ("서울에서", [2]),
            ("ภาษาไทย", [3]),
        ]
        for query, expected in cases:
            assert await seqs(query) == expected, query
        [hit] = await store.search_messages(f"数据库 {u}")
        assert hit.snippet[slice(*hit.highlights[0])] == "数据库"

    @pytest.mark.asyncio
    async def test_search_survives_hostile_queries(self, store: Any, ns: str) -> None:
        u = _word(ns, "")
        stored = f'say "hi" (x OR y) AND NOT z* col:val NEAR(a b) {u} \\ \x00 %_'
        await store.save_messages(ns + "a", [_text("user", stored)])
        for query in HOSTILE_QUERIES + [q + f" {u}" for q in HOSTILE_QUERIES]:
            try:
                hits = await store.search_messages(query)
            except ValueError:
                continue
            assert isinstance(hits, list), query
        assert [h.seq for h in await store.search_messages(f'"x OR y" {u}')] == [0]
        assert [h.seq for h in await store.search_messages(f"NOT z {u}")] == [0]
        assert [h.seq for h in await store.search_messages(f"col:val {u}")] == [0]
        with pytest.raises(ValueError):
            await store.search_messages("x" * 10_240)
        with pytest.raises(ValueError):
            await store.search_messages(f"{u} " * 2_000)
        # The store still works after all of that.
        assert [h.seq for h in await store.search_messages(u)] == [0]

    @pytest.mark.asyncio
    async def test_search_rejects_bad_arguments(self, store: Any, ns: str) -> None:
        for query in ("", "   ", "\n\t", "!!!", "()", '""'):
            with pytest.raises(ValueError):
                await store.search_messages(query)
        with pytest.raises(ValueError):
            await store.search_messages(None)
        with pytest.raises(ValueError):
            await store.search_messages("x", limit=0)
        with pytest.raises(ValueError):
            await store.search_messages("x", offset=-1)
        with pytest.raises(ValueError):
            await store.search_messages("x", created_after="yesterday")
        with pytest.raises(ValueError):
            await store.search_messages("x", role="user\x00")
        with pytest.raises(InvalidAgentIdError):
            await store.search_messages("x", agent_id="../etc")

    @pytest.mark.asyncio
    async def test_search_follows_rewrites_and_deletes(self, store: Any, ns: str, open_store: Any) -> None:
        old, new = _word(ns, "old"), _word(ns, "new")
        agent = ns + "a"
        await store.save_info(agent, data.info(agent))
        await store.save_messages(agent, [_text("user", f"{old} one"), _text("user", f"{old} two")])
        await store.append_messages(agent, [_text("user", f"{old} three")])
        assert len(await store.search_messages(old)) == 3
        await store.save_messages(agent, [_text("user", f"{new} one")])
        assert await store.search_messages(old) == []
        assert [h.seq for h in await store.search_messages(new)] == [0]
        [fork] = await store.batch_fork(agent, 1) if hasattr(store, "batch_fork") else [None]
        store = await self.reopen(store, open_store)  # type: ignore[attr-defined]
        found = {h.agent_id for h in await store.search_messages(new)}
        assert found == ({agent, fork} if fork else {agent})
        await store.delete(agent)
        assert {h.agent_id for h in await store.search_messages(new)} == ({fork} if fork else set())

    @pytest.mark.asyncio
    async def test_search_concurrent_with_writes(self, store: Any, ns: str) -> None:
        pear = _word(ns, "pear")

        async def write(i: int) -> None:
            await store.save_messages(ns + f"w{i}", [_text("user", f"{pear} number {i}")])

        await asyncio.gather(*(write(i) for i in range(8)))
        hits = await store.search_messages(pear, limit=100)
        assert sorted(h.agent_id for h in hits) == sorted(ns + f"w{i}" for i in range(8))
