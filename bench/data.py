"""Deterministic records for the reference workloads (shared/bench/WORKLOAD.md).

Everything here is built before a timed phase starts, so a benchmark measures
the store, not the making of its input. Each record exists twice: as the
pydantic model an agent loop would hand to a store, and as its KODE wire dict
(what the raw floors encode and write, and compare against when reading back).

Text is cut from one fixed pseudo-random corpus, so it neither compresses
unrealistically well nor costs seconds to generate for 100,000 messages.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from kode_sdk.store.base import message_to_wire
from kode_sdk.types import AgentInfo, Message, Timeline, ToolCallRecord

TOOL_NAMES = ("bash_run", "fs_read", "fs_write", "fs_grep")
TEMPLATE_COUNT = 5
W2_CHANNEL_CYCLE = ("progress",) * 6 + ("control",) * 2 + ("monitor",) * 2

_CORPUS_LEN = 1 << 20
_ALPHABET = "abcdefghijklmnopqrstuvwxyz" * 3 + "ABCDEFGHIJ0123456789" + " " * 16 + ".,;:-_/()'\"\n"
_CORPUS = "".join(random.Random(20241126).choices(_ALPHABET, k=_CORPUS_LEN))


def text(length: int, *key: int) -> str:
    """``length`` characters of corpus text, the same for the same ``key``."""
    h = 0xCBF29CE484222325
    for part in key:
        h = ((h ^ (part & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    start = h % (_CORPUS_LEN - length)
    return _CORPUS[start : start + length]


def now_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return int(time.time() * 1000)


def template_id(agent: int) -> str:
    """The template of agent number ``agent`` (five templates, round-robin)."""
    return f"tpl-{agent % TEMPLATE_COUNT}"


# --------------------------------------------------------------------------- turn pieces


def turn_message_wires(agent: int, t: int) -> list[dict[str, Any]]:
    """The three messages of turn ``t`` of agent ``agent``, as wire dicts."""
    tool_id = f"toolu_{agent}_{t}"
    return [
        {"role": "user", "content": [{"type": "text", "text": text(200, agent, t, 1)}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": text(300, agent, t, 2)},
                {"type": "tool_use", "id": tool_id, "name": TOOL_NAMES[t % 4], "input": {"cmd": text(80, agent, t, 3)}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_id,
                    "content": text(500, agent, t, 4),
                    "is_error": t % 7 == 0,
                }
            ],
        },
    ]


def tool_record(agent: int, t: int, created_ms: int) -> ToolCallRecord:
    """The tool-call record of turn ``t``: COMPLETED (FAILED when ``t % 7 == 0``),
    approval required and allowed when ``t % 5 == 0``, a three-entry audit trail."""
    failed = t % 7 == 0
    needs_approval = t % 5 == 0
    started = created_ms + 3
    duration = 40 + (agent * 31 + t * 17) % 900
    completed = started + duration
    final = "failed" if failed else "completed"
    if needs_approval:
        trail = [
            {"state": "approval_required", "timestamp": created_ms, "note": "policy: ask"},
            {"state": "approved", "timestamp": created_ms + 2, "note": "allowed by user"},
            {"state": final, "timestamp": completed, "note": None},
        ]
        approval: dict[str, Any] = {
            "required": True,
            "decision": "allow",
            "decided_by": f"user-{agent % 10}",
            "decided_at": created_ms + 2,
            "note": "ok",
        }
    else:
        trail = [
            {"state": "pending", "timestamp": created_ms, "note": None},
            {"state": "executing", "timestamp": started, "note": None},
            {"state": final, "timestamp": completed, "note": None},
        ]
        approval = {"required": False}
    return ToolCallRecord.model_validate(
        {
            "id": f"toolu_{agent}_{t}",
            "name": TOOL_NAMES[t % 4],
            "input": {"cmd": text(80, agent, t, 3)},
            "state": final,
            "approval": approval,
            "result": {"output": text(500, agent, t, 4), "exit_code": 1 if failed else 0},
            "error": "command exited with status 1" if failed else None,
            "is_error": failed,
            "started_at": started,
            "completed_at": completed,
            "duration_ms": float(duration),
            "created_at": created_ms,
            "updated_at": completed,
            "audit_trail": trail,
        }
    )


def turn_event_wires(agent: int, t: int, first_seq: int, ts: int) -> list[dict[str, Any]]:
    """The six events of a turn: text_chunk_start, three text_chunk,
    text_chunk_end (progress) and token_usage (monitor), seq rising by one."""
    chunks = [text(60, agent, t, 10 + i) for i in range(3)]
    events: list[dict[str, Any]] = [
        {"channel": "progress", "type": "text_chunk_start", "step": t},
        *({"channel": "progress", "type": "text_chunk", "step": t, "delta": c} for c in chunks),
        {"channel": "progress", "type": "text_chunk_end", "step": t, "text": "".join(chunks)},
        {
            "channel": "monitor",
            "type": "token_usage",
            "inputTokens": 900 + 310 * t,
            "outputTokens": 140 + t % 50,
            "totalTokens": 1040 + 310 * t + t % 50,
        },
    ]
    return [
        {"cursor": first_seq + i, "bookmark": {"seq": first_seq + i, "timestamp": ts + i}, "event": e}
        for i, e in enumerate(events)
    ]


def agent_info(agent_id: str, agent: int, created_ms: int, message_count: int, last_seq: int | None) -> AgentInfo:
    """The agent's info as saved at the end of a turn."""
    return AgentInfo.model_validate(
        {
            "agent_id": agent_id,
            "template_id": template_id(agent),
            "created_at": created_ms,
            "config_version": "v1",
            "message_count": message_count,
            "last_sfp_index": message_count - 1,
            "last_bookmark": None if last_seq is None else {"seq": last_seq, "timestamp": created_ms + last_seq},
            "breakpoint": "ready",
            "metadata": {"userId": f"user-{agent % 10}", "bench": True},
        }
    )


# --------------------------------------------------------------------------- W1


@dataclass(slots=True)
class Turn:
    """Everything one W1 turn writes, as models and as wire dicts."""

    agent: int
    t: int
    messages: list[Message]
    message_wires: list[dict[str, Any]]
    record: ToolCallRecord
    record_wire: dict[str, Any]
    events: list[Timeline]
    event_wires: list[dict[str, Any]]
    info: AgentInfo
    info_wire: dict[str, Any]


def w1_agent_id(agent: int) -> str:
    """Agent id of W1 agent number ``agent``."""
    return f"w1-agent-{agent:04d}"


def w1_turns(agents: int, turns: int) -> list[list[Turn]]:
    """``result[t][a]``: turn ``t`` of agent ``a``."""
    base = now_ms()
    out: list[list[Turn]] = []
    for t in range(turns):
        row: list[Turn] = []
        for a in range(agents):
            messages = [Message.model_validate(w) for w in turn_message_wires(a, t)]
            record = tool_record(a, t, base + t * 1000 + a)
            event_wires = turn_event_wires(a, t, 6 * t + 1, base + t * 1000)
            events = [Timeline.model_validate(w) for w in event_wires]
            info = agent_info(w1_agent_id(a), a, base, 3 * (t + 1), 6 * t + 6)
            row.append(
                Turn(
                    agent=a,
                    t=t,
                    messages=messages,
                    message_wires=[message_to_wire(m) for m in messages],
                    record=record,
                    record_wire=record.to_wire(),
                    events=events,
                    event_wires=[e.to_wire() for e in events],
                    info=info,
                    info_wire=info.to_wire(),
                )
            )
        out.append(row)
    return out


# --------------------------------------------------------------------------- W2


def w2_events(count: int) -> list[Timeline]:
    """``count`` events of one agent, seq 1..count; channels cycle 6 progress :
    2 control : 2 monitor."""
    base = now_ms()
    out: list[Timeline] = []
    for i in range(count):
        channel = W2_CHANNEL_CYCLE[i % len(W2_CHANNEL_CYCLE)]
        if channel == "progress":
            event: dict[str, Any] = {"channel": channel, "type": "text_chunk", "step": i // 10, "delta": text(60, i)}
        elif channel == "control":
            event = {
                "channel": channel,
                "type": "permission_required",
                "call": {"id": f"toolu_{i}", "name": "bash_run"},
            }
        else:
            event = {"channel": channel, "type": "token_usage", "inputTokens": i, "outputTokens": i % 97}
        seq = i + 1
        out.append(
            Timeline.model_validate({"cursor": seq, "bookmark": {"seq": seq, "timestamp": base + i}, "event": event})
        )
    return out


# --------------------------------------------------------------------------- W3


def w3_agent_id(agent: int) -> str:
    """Agent id of W3 agent number ``agent``; ``id[:-1]`` is a prefix shared by ten agents."""
    return f"w3-{agent:05d}"


@dataclass(slots=True)
class Population:
    """One W3 agent: info, messages and tool calls, as models and wire dicts."""

    agent_id: str
    info: AgentInfo
    messages: list[Message]
    message_wires: list[dict[str, Any]]
    records: list[ToolCallRecord]
    record_wires: list[dict[str, Any]]


#: The word W3's search query looks for: in 1 % of the messages (see w3_population).
SEARCH_WORD = "needle"


def w3_search_seqs(agent: int, messages: int) -> list[int]:
    """The positions of agent ``agent``'s messages holding :data:`SEARCH_WORD`:
    every hundredth, starting at ``agent % 100`` (1 % of all messages)."""
    return list(range(agent % 100, messages, 100))


def _plant(wire: dict[str, Any], word: str) -> None:
    """Put ``word`` at the start of the message's first text or tool result."""
    block = wire["content"][0]
    if block["type"] == "text":
        block["text"] = f"{word} {block['text']}"
    else:
        block["content"] = f"{word} {block['content']}"


def w3_population(agent: int, base_ms: int, messages: int, tool_calls: int) -> Population:
    """Agent ``agent`` of the W3 population (created one second apart per agent)."""
    agent_id = w3_agent_id(agent)
    created = base_ms + agent * 1000
    wires: list[dict[str, Any]] = []
    t = 0
    while len(wires) < messages:
        wires.extend(turn_message_wires(agent, t))
        t += 1
    wires = wires[:messages]
    for seq in w3_search_seqs(agent, messages):
        _plant(wires[seq], SEARCH_WORD)
    models = [Message.model_validate(w) for w in wires]
    records = [tool_record(agent, i, created + i * 10) for i in range(tool_calls)]
    info = agent_info(agent_id, agent, created, messages, None)
    return Population(
        agent_id=agent_id,
        info=info,
        messages=models,
        message_wires=[message_to_wire(m) for m in models],
        records=records,
        record_wires=[r.to_wire() for r in records],
    )
