"""A provider that replays a fixed script of assistant turns: offline and deterministic.

The turn played is chosen by the conversation, not by a call counter: the
``n``-th assistant turn of a conversation is ``turns[n]``. So an agent resumed
from the store in a new process, with a new ``ScriptedProvider`` over the same
script, continues exactly where the old one stopped, and one provider can serve
many agents at once.

>>> provider = ScriptedProvider([
...     [text("Let me add those."), tool_use("add", {"a": 2, "b": 3})],
...     "2 + 3 = 5.",
... ])

A turn is a string (one text block), a list of content blocks, or a callable
taking the :class:`ModelRequest` and returning either. ``tool_use`` blocks
without an ``id`` get a deterministic one (``call_<turn>_<index>``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeAlias

from ... import jsoncodec
from ...errors import ProviderError
from ...types import Message
from .base import ModelRequest, StreamEvent, TextDelta, TurnComplete, Usage

__all__ = ["ScriptTurn", "ScriptedProvider", "text", "tool_use"]

ScriptTurn: TypeAlias = str | Sequence[dict[str, Any]] | Callable[[ModelRequest], "str | Sequence[dict[str, Any]]"]

_CHUNK = re.compile(r"\s*\S+\s*|\s+")


def text(value: str) -> dict[str, Any]:
    """A ``text`` content block."""
    return {"type": "text", "text": value}


def tool_use(name: str, input: dict[str, Any] | None = None, *, id: str | None = None) -> dict[str, Any]:
    """A ``tool_use`` content block (an id is assigned at replay when none is given)."""
    block: dict[str, Any] = {"type": "tool_use", "name": name, "input": dict(input or {})}
    if id is not None:
        block["id"] = id
    return block


def _approx_tokens(chars: int) -> int:
    # A deterministic stand-in for a tokenizer: about four characters a token.
    return max(1, (chars + 3) // 4)


class ScriptedProvider:
    """Replays ``turns`` in conversation order.

    ``loop=True`` starts the script over after its last turn (turn ``n`` plays
    ``turns[n % len(turns)]``), so a demo can run the same round again and
    again; otherwise running past the end raises :class:`ProviderError`.
    ``calls`` counts the model calls served.
    """

    name = "scripted"

    def __init__(self, turns: Sequence[ScriptTurn], *, loop: bool = False, model: str = "scripted-1") -> None:
        if not turns:
            raise ValueError("ScriptedProvider needs at least one turn")
        self.turns = list(turns)
        self.loop = loop
        self.model = model
        self.calls = 0
        # Per agent: (messages seen, assistant turns, characters) — conversations
        # only grow, so each call looks at the new messages alone, not the history.
        self._tally: dict[str, tuple[int, int, int]] = {}

    def position(self, messages: Sequence[Message]) -> int:
        """The index of the turn the next call over ``messages`` plays (before looping)."""
        return self._count(None, messages)[0]

    def _count(self, agent_id: str | None, messages: Sequence[Message]) -> tuple[int, int]:
        seen, turns, chars = (0, 0, 0)
        if agent_id is not None and agent_id in self._tally and self._tally[agent_id][0] <= len(messages):
            seen, turns, chars = self._tally[agent_id]
        for message in messages[seen:]:
            turns += message.role == "assistant"
            chars += len(jsoncodec.dumps(message.content, "content"))
        if agent_id is not None:
            self._tally[agent_id] = (len(messages), turns, chars)
        return turns, chars

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream the scripted turn for ``request``: its text in word chunks, then the whole turn."""
        position, history_chars = self._count(request.agent_id, request.messages)
        if position >= len(self.turns) and not self.loop:
            raise ProviderError(
                f"scripted provider has {len(self.turns)} turns and the conversation asks for turn {position + 1}"
            )
        self.calls += 1
        turn = self.turns[position % len(self.turns)]
        if callable(turn):
            turn = turn(request)
        content = [text(turn)] if isinstance(turn, str) else [dict(block) for block in turn]
        out_chars = 0
        for index, block in enumerate(content):
            if block.get("type") == "tool_use":
                block.setdefault("id", f"call_{position}_{index}")
                block.setdefault("input", {})
                out_chars += len(str(block["input"])) + len(block.get("name", ""))
            elif block.get("type") == "text":
                out_chars += len(block["text"])
                for chunk in _CHUNK.findall(block["text"]):
                    yield TextDelta(chunk)
        in_chars = len(request.system) + history_chars
        has_tools = any(block.get("type") == "tool_use" for block in content)
        yield TurnComplete(
            content=content,
            stop_reason="tool_use" if has_tools else "end_turn",
            usage=Usage(input_tokens=_approx_tokens(in_chars), output_tokens=_approx_tokens(out_chars)),
            model=self.model,
        )
