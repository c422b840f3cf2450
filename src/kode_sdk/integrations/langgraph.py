"""A LangGraph checkpoint saver on any kode store: :class:`KodeSaver`.

Install with ``pip install 'kode-sdk[langgraph]'``. Give it a store and
compile the graph with it::

    from kode_sdk import create_store
    from kode_sdk.integrations.langgraph import KodeSaver

    saver = KodeSaver(create_store({"type": "sqlite", "path": "agents.db"}))
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "t-1"}})

How a thread is kept (through the public Store API, no tables of its own):

- A LangGraph thread is one kode agent (its id is the thread id when that is a
  valid agent id, else ``lg-x.<hash>``); its ``AgentInfo`` has template
  ``"langgraph"`` and, in ``metadata["langgraph"]``, the thread id, the
  newest checkpoint id per namespace and the epoch of its message log.
- The root namespace's message channel (``messages``) is the agent's kode
  message list, an append-only log: each distinct message is stored once, as
  a kode message (text, ``tool_use`` and ``tool_result`` blocks, the rest of
  the LangChain object in ``metadata["lc"]``), so ``kode messages``,
  ``query_messages``, search and stats work on the thread. A checkpoint refers
  to its messages as runs of log positions — a few bytes, where LangGraph's
  own savers write the whole list again into every checkpoint.
- Each checkpoint is a kode ``Snapshot`` with id ``cp|<ns>|<checkpoint_id>``
  (other channel values in JSON when they are plain JSON, else LangGraph's
  serializer in base64); the pending writes of a checkpoint are the snapshot
  ``wr|<ns>|<checkpoint_id>``.
- ``put`` is one ``store.transaction``: the new messages, the checkpoint and
  the info commit together.
- ``prune`` and ``delete_for_runs`` replace the dropped checkpoints and writes
  with empty tombstones, with the new ``latest`` in the same transaction
  (nothing kept is ever rewritten); ``delete_thread`` deletes the agent.

Blocking methods (``graph.invoke``) and async ones (``graph.ainvoke``) both
work: the store is used on one event loop (see ``_loop.py``). Like LangGraph's
own savers, one thread is run by one writer at a time. A run starts with
``get_tuple`` (as every LangGraph run does), which reads the thread's info;
the run's ``put`` calls then use the info this saver last read or wrote
instead of reading it again (one round trip less per checkpoint). Any other
path (``get_tuple`` of an explicit checkpoint, a failed ``put``, ``prune``,
``delete_*``, ``copy_thread``) drops that copy, and the next ``put`` reads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - the hint is the point
    raise ImportError("kode_sdk.integrations.langgraph needs LangGraph: pip install 'kode-sdk[langgraph]'") from exc

from .. import jsoncodec
from ..errors import InvalidAgentIdError, RecordValidationError
from ..store.agent_ids import validate_agent_id
from ..store.factory import create_store
from ..store.list_diff import share_copy
from ..store.protocols import Store
from ..store.transaction import StoreTransaction
from ..types import AgentInfo, Snapshot
from ._langchain import from_wire, to_wire
from ._locks import KeyedLocks
from ._loop import LoopHome

__all__ = ["TEMPLATE_ID", "KodeSaver"]

#: ``AgentInfo.template_id`` of every agent that holds a LangGraph thread.
TEMPLATE_ID = "langgraph"
_META = "langgraph"
_CP = "cp|"
_WR = "wr|"
_LOG_CACHE_THREADS = 256
_UNKNOWN = object()


@dataclass
class _Log:
    """What this process knows of a thread's message log (positions never change: append-only)."""

    epoch: str
    wires: list[dict[str, Any]] = field(default_factory=list)
    index: dict[bytes, int] = field(default_factory=dict)
    #: Message objects known to be at a position: ``id(obj) -> (weakref, position, share_copy of its fields)``.
    #: A graph hands the same objects back checkpoint after checkpoint; recognising them by identity, and
    #: checking their fields against the copy (which catches a message changed in place), saves converting
    #: every message of the list at every checkpoint.
    known: dict[int, tuple[weakref.ref[Any], int, Any]] = field(default_factory=dict)

    def remember(self, message: Any, pos: int) -> None:
        """Note that ``message`` (as its fields are now) is the message at ``pos``."""
        key = id(message)
        known = self.known

        def forget(_ref: weakref.ref[Any]) -> None:
            entry = known.get(key)
            if entry is not None and entry[0] is _ref:
                del known[key]

        known[key] = (weakref.ref(message, forget), pos, share_copy(message.__dict__))

    def position(self, message: Any) -> int | None:
        """The position of ``message`` if it is a remembered object, unchanged since."""
        entry = self.known.get(id(message))
        if entry is None or entry[0]() is not message or entry[2] != message.__dict__:
            return None
        return entry[1]


def _key(wire: dict[str, Any]) -> bytes:
    # Sorted keys: PostgreSQL's jsonb does not keep key order, and a loaded message must match.
    return jsoncodec.encode(wire, sort_keys=True, check_finite=False)


def _json_native(value: Any) -> bool:
    """True when ``value`` survives JSON unchanged (exact types, finite floats, str keys)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_json_native(item) for item in value)
    if kind is dict:
        return all(type(k) is str and _json_native(v) for k, v in value.items())
    return False


def _runs(positions: list[int]) -> list[list[int]]:
    """Positions as ``[start, stop)`` runs: a linear conversation is one run."""
    runs: list[list[int]] = []
    for pos in positions:
        if runs and runs[-1][1] == pos:
            runs[-1][1] = pos + 1
        else:
            runs.append([pos, pos + 1])
    return runs


def _split(snapshot_id: str) -> tuple[str, str, str]:
    """``(kind, ns, checkpoint_id)`` of a snapshot id this module wrote."""
    kind, rest = snapshot_id[:3], snapshot_id[3:]
    ns, _, cid = rest.rpartition("|")
    return kind, ns, cid


class KodeSaver(BaseCheckpointSaver[str]):
    """LangGraph checkpoints, writes and messages in a kode store (module docstring: how).

    ``store`` is any kode store (``create_store(...)``, opened or not);
    ``messages_channel`` names the channel kept as kode messages;
    ``agent_prefix`` is put before every agent id, to keep LangGraph threads
    apart from other agents of the store.
    """

    def __init__(
        self,
        store: Store,
        *,
        serde: SerializerProtocol | None = None,
        messages_channel: str = "messages",
        agent_prefix: str = "",
    ) -> None:
        super().__init__(serde=serde)
        self.store = store
        self.messages_channel = messages_channel
        self.agent_prefix = agent_prefix
        self._home = LoopHome("langgraph", store)
        self._logs: OrderedDict[str, _Log] = OrderedDict()
        # Pending writes this saver last read or stored, by snapshot id: a task that writes several
        # times to one checkpoint does not read back what it wrote (a checkpoint is written by one run
        # at a time, the rule every LangGraph saver relies on). Entries come only from the store.
        self._writes: OrderedDict[tuple[str, str], list[list[Any]]] = OrderedDict()
        # The newest checkpoint id this saver wrote or read, per (agent, namespace): only a guess of
        # which snapshots to read while the info (which decides) is read; see _get_tuple.
        self._latest: OrderedDict[tuple[str, str], str] = OrderedDict()
        # The thread's info as this saver last read it (get_tuple) or wrote it (put), handed to the
        # next put, which takes it out (see the module docs); None: the thread has no info yet.
        self._infos: OrderedDict[str, AgentInfo | None] = OrderedDict()
        self._owns_store = False
        # One read-modify-write of a thread at a time in this process (parallel tasks of a step
        # store their writes concurrently; see _locks.py).
        self._locks = KeyedLocks()

    @classmethod
    def from_config(cls, config: dict[str, Any] | None = None, **kwargs: Any) -> KodeSaver:
        """A saver on a new store built by ``create_store(config)``; ``close()`` closes it."""
        saver = cls(create_store(config), **kwargs)
        saver._owns_store = True
        return saver

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the store if this saver created it (``from_config``); a store you gave stays open."""
        if self._owns_store:
            self._home.run(self.store.close())
            self._home.closed()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._owns_store:
            await self._home.arun(self.store.close())
            self._home.closed()

    def __enter__(self) -> KodeSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> KodeSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ naming

    def agent_id(self, thread_id: str) -> str:
        """The kode agent id that holds LangGraph thread ``thread_id``."""
        tid = str(thread_id)
        candidate = self.agent_prefix + tid
        if not tid.startswith("lg-x."):
            try:
                return validate_agent_id(candidate)
            except InvalidAgentIdError:
                pass
        return validate_agent_id(f"{self.agent_prefix}lg-x.{hashlib.sha256(tid.encode()).hexdigest()[:40]}")

    def get_next_version(self, current: str | int | None, channel: None) -> Any:
        """Integer versions, as ``BaseCheckpointSaver`` makes them.

        LangGraph's own savers add a random fraction (``"000…3.0.8417…"``) because
        they key stored values by version, and two forks of a thread must not
        collide; here a checkpoint holds its values itself, and small integers keep
        every checkpoint ~400 bytes smaller. A thread that already has string
        versions (from another saver) keeps that form.
        """
        if current is None:
            return 1
        if isinstance(current, int):
            return current + 1
        return f"{int(str(current).split('.')[0]) + 1:032}.{random.random():016}"

    # ------------------------------------------------------------------ values

    def _encode(self, value: Any) -> dict[str, Any]:
        if _json_native(value):
            return {"j": value}
        if type(value) is list and value:
            wires = [to_wire(item) for item in value]
            if all(w is not None for w in wires):
                return {"m": wires}
        if type(value) is dict and all(type(k) is str for k in value):
            # E.g. a graph's input, {"messages": [HumanMessage(...)]}: its messages as kode wire
            # messages rather than inside an opaque serialized blob.
            return {"d": {k: self._encode(v) for k, v in value.items()}}
        kind, data = self.serde.dumps_typed(value)
        return {"s": kind, "b": base64.b64encode(data).decode("ascii")}

    def _decode(self, encoded: dict[str, Any], log: _Log | None = None) -> Any:
        if "j" in encoded:
            return encoded["j"]
        if "m" in encoded:
            return [from_wire(w) for w in encoded["m"]]
        if "d" in encoded:
            return {k: self._decode(v, log) for k, v in encoded["d"].items()}
        if "r" in encoded:
            assert log is not None
            messages = []
            for start, stop in encoded["r"]:
                for pos in range(start, stop):
                    message = from_wire(log.wires[pos])
                    log.remember(message, pos)
                    messages.append(message)
            return messages
        return self.serde.loads_typed((encoded["s"], base64.b64decode(encoded["b"])))

    def _refs(self, log: _Log, value: Any, new: list[tuple[bytes, dict[str, Any], Any]]) -> list[list[int]] | None:
        """Log positions of the messages in ``value`` (new ones added to ``new``), or None."""
        if not isinstance(value, list):
            return None
        fresh: dict[bytes, int] = {}
        positions: list[int] = []
        for message in value:
            known = log.position(message)
            if known is not None:
                positions.append(known)
                continue
            wire = to_wire(message)
            if wire is None:
                return None
            try:
                key = _key(wire)
            except TypeError:
                return None
            pos = log.index.get(key)
            if pos is None:
                pos = fresh.get(key)
            if pos is None:
                pos = fresh[key] = len(log.wires) + len(new)
                new.append((key, wire, message))
            else:
                log.remember(message, pos)
            positions.append(pos)
        return _runs(positions)

    # ------------------------------------------------------------------ store access

    async def _log(self, agent: str, epoch: str, count: int, need: int = 0) -> _Log:
        """The thread's message log, reloaded when this process's copy is behind or of another epoch."""
        log = self._logs.get(agent)
        if log is None or log.epoch != epoch or len(log.wires) < max(count, need):
            messages = await self.store.load_messages(agent) if max(count, need) else []
            log = _Log(epoch)
            for message in messages:
                wire = {"role": message.role, "content": message.content, "metadata": message.metadata}
                log.index.setdefault(_key(wire), len(log.wires))
                log.wires.append(wire)
            self._logs[agent] = log
            while len(self._logs) > _LOG_CACHE_THREADS:
                self._logs.popitem(last=False)
        else:
            self._logs.move_to_end(agent)
        return log

    @staticmethod
    def _thread_meta(info: AgentInfo | None) -> dict[str, Any] | None:
        if info is None or info.template_id != TEMPLATE_ID:
            return None
        meta = info.metadata.get(_META)
        return meta if isinstance(meta, dict) else None

    async def _tuple(
        self, agent: str, thread_id: str, ns: str, cid: str, doc: dict[str, Any], writes: Snapshot | None
    ) -> CheckpointTuple:
        values: dict[str, Any] = {}
        log = None
        for channel, encoded in doc["cv"].items():
            if "r" in encoded:
                need = max((stop for _, stop in encoded["r"]), default=0)
                if log is None or len(log.wires) < need:
                    log = await self._log(agent, doc["ep"], 0, need)
            values[channel] = self._decode(encoded, log)
        checkpoint = cast(Checkpoint, {**self._decode(doc["ck"]), "channel_values": values})
        pending: list[tuple[str, str, Any]] = []
        if writes is not None and writes.metadata and "w" in writes.metadata:
            entries = sorted(writes.metadata["w"], key=lambda e: (e[4], e[0], e[1]))
            pending = [(e[0], e[2], self._decode(e[3])) for e in entries]
        parent = doc.get("p")
        return CheckpointTuple(
            config={"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}},
            checkpoint=checkpoint,
            metadata=self._decode(doc["md"]),
            parent_config=(
                {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
                if parent
                else None
            ),
            pending_writes=pending,
        )

    async def _scan(self, agent: str) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], Snapshot]]:
        """Every live checkpoint document and writes snapshot of a thread, by ``(ns, checkpoint_id)``."""
        checkpoints: dict[tuple[str, str], dict[str, Any]] = {}
        writes: dict[tuple[str, str], Snapshot] = {}
        for snap in await self.store.list_snapshots(agent):
            if not snap.metadata or "gone" in snap.metadata:
                continue
            kind, ns, cid = _split(snap.id)
            if kind == _CP:
                checkpoints[(ns, cid)] = snap.metadata
            elif kind == _WR:
                writes[(ns, cid)] = snap
        return checkpoints, writes

    async def _thread_agents(self) -> list[tuple[str, str]]:
        """``(agent_id, thread_id)`` of every LangGraph thread in the store (reads each agent's info)."""
        found = []
        for agent in await self.store.list(self.agent_prefix or None):
            meta = self._thread_meta(await self.store.load_info(agent))
            if meta is not None:
                found.append((agent, str(meta["thread_id"])))
        return found

    # ------------------------------------------------------------------ the saver, async

    async def _get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = conf.get("checkpoint_ns", "")
        agent = self.agent_id(thread_id)
        cid = get_checkpoint_id(config)
        snap = writes = None
        if cid is None:
            # Under the thread's lock: a put of this saver in flight (e.g. the parent graph's, while a
            # subgraph starts) commits first, so the info kept for the next put is never older than it.
            async with self._locks.hold(agent):
                hint = self._latest.get((agent, ns))
                if hint is None:
                    info = await self.store.load_info(agent)
                else:
                    # The newest checkpoint this saver wrote or read is most likely still the newest:
                    # read it together with the info, which decides (one round trip instead of two).
                    info, snap, writes = await asyncio.gather(
                        self.store.load_info(agent),
                        self.store.load_snapshot(agent, _CP + ns + "|" + hint),
                        self.store.load_snapshot(agent, _WR + ns + "|" + hint),
                    )
                self._keep_info(agent, info)
            meta = self._thread_meta(info)
            latest = meta["latest"].get(ns) if meta else None
            if latest is None:
                return None
            if latest != hint:
                snap = writes = None
            cid = latest
            self._hint(agent, ns, cid)
        else:
            # A checkpoint named by id (e.g. a run resumed from an earlier one): the info was not
            # read, so the next put reads it.
            self._infos.pop(agent, None)
        if snap is None:
            snap, writes = await asyncio.gather(
                self.store.load_snapshot(agent, _CP + ns + "|" + cid),
                self.store.load_snapshot(agent, _WR + ns + "|" + cid),
            )
        if snap is None or not snap.metadata or "gone" in snap.metadata:
            if get_checkpoint_id(config) is not None:
                return None
            # The newest checkpoint was pruned or deleted by run: the newest one left.
            checkpoints, writes_by = await self._scan(agent)
            left = sorted(c for n, c in checkpoints if n == ns)
            if not left:
                return None
            cid = left[-1]
            return await self._tuple(agent, thread_id, ns, cid, checkpoints[(ns, cid)], writes_by.get((ns, cid)))
        return await self._tuple(agent, thread_id, ns, cid, snap.metadata, writes)

    async def _list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> list[CheckpointTuple]:
        if config is None:
            threads = await self._thread_agents()
            ns_wanted: str | None = None
            cid_wanted = None
        else:
            conf = config["configurable"]
            thread_id = str(conf["thread_id"])
            threads = [(self.agent_id(thread_id), thread_id)]
            ns_wanted = conf.get("checkpoint_ns") if "checkpoint_ns" in conf else None
            cid_wanted = get_checkpoint_id(config)
        before_id = get_checkpoint_id(before) if before else None
        found: list[CheckpointTuple] = []
        for agent, thread_id in threads:
            checkpoints, writes = await self._scan(agent)
            for ns, cid in sorted(checkpoints, key=lambda k: (k[0], k[1]), reverse=True):
                if ns_wanted is not None and ns != ns_wanted:
                    continue
                if cid_wanted is not None and cid != cid_wanted:
                    continue
                if before_id is not None and cid >= before_id:
                    continue
                doc = checkpoints[(ns, cid)]
                if filter:
                    metadata = self._decode(doc["md"])
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                found.append(await self._tuple(agent, thread_id, ns, cid, doc, writes.get((ns, cid))))
                if limit is not None and len(found) >= limit:
                    return found
        return found

    async def _put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        async with self._locks.hold(self.agent_id(str(config["configurable"]["thread_id"]))):
            return await self._put_locked(config, checkpoint, metadata)

    async def _put_locked(
        self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata
    ) -> RunnableConfig:
        conf = config["configurable"]
        thread_id = str(conf["thread_id"])
        ns = conf.get("checkpoint_ns", "")
        parent = conf.get("checkpoint_id")
        cid = checkpoint["id"]
        agent = self.agent_id(thread_id)
        # Taken out: if this put fails, the next one reads the info again.
        kept = self._infos.pop(agent, _UNKNOWN)
        info = await self.store.load_info(agent) if kept is _UNKNOWN else cast(AgentInfo | None, kept)
        meta = self._thread_meta(info)
        if meta is None:
            meta = {"thread_id": thread_id, "epoch": uuid.uuid4().hex[:12], "latest": {}}
        else:
            # Copied: the info may be an object the store shares with its cache.
            meta = {**meta, "latest": dict(meta["latest"])}
        log = await self._log(agent, meta["epoch"], info.message_count if info is not None else 0)
        new: list[tuple[bytes, dict[str, Any], Any]] = []
        values: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():
            runs = self._refs(log, value, new) if channel == self.messages_channel and ns == "" else None
            values[channel] = {"r": runs} if runs is not None else self._encode(value)
        skeleton = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        doc = {
            "ck": self._encode(skeleton),
            "cv": values,
            "md": self._encode(get_serializable_checkpoint_metadata(config, metadata)),
            "p": parent,
            "ep": meta["epoch"],
        }
        latest = meta["latest"]
        advances = latest.get(ns) is None or cid > latest[ns]
        if advances:
            latest[ns] = cid
        try:
            saved = await self._commit_put(agent, info, meta, log, new, ns, cid, doc, advances)
        except RecordValidationError:
            if not new:
                raise
            # A message kode cannot hold as given: keep this channel with LangGraph's serializer.
            new = []
            values[self.messages_channel] = self._encode(checkpoint["channel_values"][self.messages_channel])
            saved = await self._commit_put(agent, info, meta, log, new, ns, cid, doc, advances)
        self._keep_info(agent, saved)
        for key, wire, message in new:
            log.index.setdefault(key, len(log.wires))
            log.remember(message, len(log.wires))
            log.wires.append(wire)
        if advances:
            self._hint(agent, ns, cid)
        if advances and info is not None:
            # A checkpoint newer than any of the thread's is new: it has no pending writes yet, so the
            # first put_writes against it need not read them (one round trip less per step).
            self._remember_writes(agent, _WR + ns + "|" + cid, [])
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}

    async def _commit_put(
        self,
        agent: str,
        info: AgentInfo | None,
        meta: dict[str, Any],
        log: _Log,
        new: list[tuple[bytes, dict[str, Any], Any]],
        ns: str,
        cid: str,
        doc: dict[str, Any],
        advances: bool,
    ) -> AgentInfo | None:
        """The new messages, the checkpoint and (when it changes) the thread's info: one commit.
        Returns the thread's info as stored after it."""
        async with self.store.transaction(agent) as tx:
            if new:
                await tx.append_messages(agent, [wire for _, wire, _ in new])
            await tx.save_snapshot(agent, {"id": _CP + ns + "|" + cid, "messages": [], "metadata": doc})
            if info is None or advances or new:
                info = await self._save_info(tx, agent, info, meta, len(log.wires) + len(new))
        return info

    async def _save_info(
        self, target: Store | StoreTransaction, agent: str, info: AgentInfo | None, meta: dict[str, Any], count: int
    ) -> AgentInfo:
        metadata = dict(info.metadata) if info is not None else {}
        metadata[_META] = meta
        if info is None:
            record = AgentInfo(agent_id=agent, template_id=TEMPLATE_ID, message_count=count, metadata=metadata)
        else:
            record = info.model_copy(update={"message_count": count, "metadata": metadata})
        await target.save_info(agent, record)
        return record

    async def _put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        agent = self.agent_id(str(config["configurable"]["thread_id"]))
        async with self._locks.hold(agent):
            await self._put_writes_locked(agent, config, writes, task_id, task_path)

    async def _put_writes_locked(
        self, agent: str, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> None:
        conf = config["configurable"]
        ns = conf.get("checkpoint_ns", "")
        snapshot_id = _WR + ns + "|" + conf["checkpoint_id"]
        cached = self._writes.get((agent, snapshot_id))
        if cached is not None:
            entries = list(cached)
        else:
            snap = await self.store.load_snapshot(agent, snapshot_id)
            entries = list(snap.metadata["w"]) if snap is not None and snap.metadata and "w" in snap.metadata else []
        where = {(e[0], e[1]): i for i, e in enumerate(entries)}
        changed = False
        for idx, (channel, value) in enumerate(writes):
            key = (task_id, WRITES_IDX_MAP.get(channel, idx))
            if key[1] >= 0 and key in where:
                continue  # a regular write is stored once (a retried task writes it again)
            entry = [task_id, key[1], channel, self._encode(value), task_path]
            if key in where:
                entries[where[key]] = entry
            else:
                where[key] = len(entries)
                entries.append(entry)
            changed = True
        if changed:
            await self.store.save_snapshot(agent, {"id": snapshot_id, "messages": [], "metadata": {"w": entries}})
            self._remember_writes(agent, snapshot_id, entries)

    def _keep_info(self, agent: str, info: AgentInfo | None) -> None:
        self._infos[agent] = info
        self._infos.move_to_end(agent)
        while len(self._infos) > _LOG_CACHE_THREADS:
            self._infos.popitem(last=False)

    def _hint(self, agent: str, ns: str, cid: str) -> None:
        self._latest[(agent, ns)] = cid
        self._latest.move_to_end((agent, ns))
        while len(self._latest) > _LOG_CACHE_THREADS:
            self._latest.popitem(last=False)

    def _remember_writes(self, agent: str, snapshot_id: str, entries: list[list[Any]]) -> None:
        self._writes[(agent, snapshot_id)] = entries
        self._writes.move_to_end((agent, snapshot_id))
        while len(self._writes) > _LOG_CACHE_THREADS:
            self._writes.popitem(last=False)

    def _forget(self, agent: str) -> None:
        self._logs.pop(agent, None)
        self._infos.pop(agent, None)
        for hint in [k for k in self._latest if k[0] == agent]:
            del self._latest[hint]
        for key in [k for k in self._writes if k[0] == agent]:
            del self._writes[key]

    async def _delete_thread(self, thread_id: str) -> None:
        agent = self.agent_id(str(thread_id))
        async with self._locks.hold(agent):
            self._forget(agent)
            await self.store.delete(agent)

    async def _drop(self, agent: str, drop: set[tuple[str, str]]) -> None:
        """Tombstone checkpoints ``drop`` (and their writes), then point ``latest`` at what is left."""
        async with self._locks.hold(agent):
            await self._drop_locked(agent, drop)

    async def _drop_locked(self, agent: str, drop: set[tuple[str, str]]) -> None:
        self._infos.pop(agent, None)
        checkpoints, writes = await self._scan(agent)
        ids = [_CP + ns + "|" + cid for ns, cid in drop if (ns, cid) in checkpoints]
        ids += [_WR + ns + "|" + cid for ns, cid in writes if (ns, cid) in drop or (ns, cid) not in checkpoints]
        info = await self.store.load_info(agent)
        meta = self._thread_meta(info)
        # The tombstones and the new ``latest``: one commit.
        async with self.store.transaction(agent) as tx:
            for snapshot_id in ids:
                self._writes.pop((agent, snapshot_id), None)
                await tx.save_snapshot(agent, {"id": snapshot_id, "messages": [], "metadata": {"gone": True}})
            if meta is not None:
                latest: dict[str, str] = {}
                for ns, cid in checkpoints:
                    if (ns, cid) not in drop and cid > latest.get(ns, ""):
                        latest[ns] = cid
                meta = {**meta, "latest": latest}
                await self._save_info(tx, agent, info, meta, info.message_count if info is not None else 0)

    async def _delete_for_runs(self, run_ids: Sequence[str]) -> None:
        wanted = set(run_ids)
        if not wanted:
            return
        for agent, _ in await self._thread_agents():
            checkpoints, _writes = await self._scan(agent)
            drop = {k for k, doc in checkpoints.items() if self._decode(doc["md"]).get("run_id") in wanted}
            if drop:
                await self._drop(agent, drop)

    async def _copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source = self.agent_id(str(source_thread_id))
        target = self.agent_id(str(target_thread_id))
        if source == target:
            return
        async with self._locks.hold(source):
            info = await self.store.load_info(source)
            meta = self._thread_meta(info)
            if meta is None:
                return
            messages = await self.store.load_messages(source)
            snapshots = await self.store.list_snapshots(source)
        async with self._locks.hold(target):
            await self._replace_thread(target, str(target_thread_id), meta, messages, snapshots)

    async def _replace_thread(
        self, target: str, thread_id: str, meta: dict[str, Any], messages: list[Any], snapshots: list[Snapshot]
    ) -> None:
        self._forget(target)
        await self.store.delete(target)
        copied = {**meta, "thread_id": thread_id, "latest": dict(meta["latest"])}
        # The log is copied whole, so every position a checkpoint refers to stays right. Messages,
        # checkpoints, writes and info in one commit: the target is a LangGraph thread whole or not at all.
        async with self.store.transaction(target) as tx:
            if messages:
                await tx.save_messages(target, messages)
            for snap in reversed(snapshots):
                if snap.metadata and "gone" not in snap.metadata:
                    await tx.save_snapshot(target, snap)
            await self._save_info(tx, target, None, copied, len(messages))

    async def _prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"strategy: expected 'keep_latest' or 'delete', got {strategy!r}")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self._delete_thread(thread_id)
                continue
            agent = self.agent_id(str(thread_id))
            checkpoints, _writes = await self._scan(agent)
            newest: dict[str, str] = {}
            for ns, cid in checkpoints:
                if cid > newest.get(ns, ""):
                    newest[ns] = cid
            drop = {(ns, cid) for ns, cid in checkpoints if newest[ns] != cid}
            if drop:
                await self._drop(agent, drop)

    # ------------------------------------------------------------------ BaseCheckpointSaver, async

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (or the thread's newest in its namespace), or None."""
        return await self._home.arun(self._get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints of a thread (every thread when ``config`` is None), newest first."""
        for item in await self._home.arun(self._list(config, filter=filter, before=before, limit=limit)):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint; returns the config that names it."""
        return await self._home.arun(self._put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Store a task's writes against the checkpoint ``config`` names."""
        await self._home.arun(self._put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread: every checkpoint, write and message."""
        await self._home.arun(self._delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Drop every checkpoint (and its writes) whose metadata ``run_id`` is in ``run_ids``."""
        await self._home.arun(self._delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and message of one thread to another (replacing it)."""
        await self._home.arun(self._copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint; ``delete``: delete the threads."""
        await self._home.arun(self._prune(thread_ids, strategy=strategy))

    # ------------------------------------------------------------------ BaseCheckpointSaver, blocking

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Blocking :meth:`aget_tuple`."""
        return self._home.run(self._get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Blocking :meth:`alist`."""
        return iter(self._home.run(self._list(config, filter=filter, before=before, limit=limit)))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Blocking :meth:`aput`."""
        return self._home.run(self._put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        """Blocking :meth:`aput_writes`."""
        self._home.run(self._put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Blocking :meth:`adelete_thread`."""
        self._home.run(self._delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Blocking :meth:`adelete_for_runs`."""
        self._home.run(self._delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Blocking :meth:`acopy_thread`."""
        self._home.run(self._copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Blocking :meth:`aprune`."""
        self._home.run(self._prune(thread_ids, strategy=strategy))
