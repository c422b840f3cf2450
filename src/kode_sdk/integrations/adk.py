"""A Google ADK session service on any kode store: :class:`KodeSessionService`.

Install with ``pip install 'kode-sdk[adk]'``::

    from google.adk.runners import Runner
    from kode_sdk import create_store
    from kode_sdk.integrations.adk import KodeSessionService

    service = KodeSessionService(create_store({"type": "sqlite", "db_path": "agents.db"}))
    runner = Runner(agent=agent, app_name="support", session_service=service)

How it is kept (through the public Store API):

- A session is one kode agent, ``<app>:<user>:<session>`` when that is a valid
  agent id (else ``adk-x.<hash>``), with template ``adk:<app>`` and
  ``metadata["user_id"]``, so ``kode sessions`` and ``query_sessions`` filter
  by app and user; ``metadata["adk"]`` holds the session's own state.
- Each event is one kode message: ``text`` blocks, a ``tool_use`` block per
  function call, a ``tool_result`` block per function response (role
  ``user`` for the user's events and function responses, ``assistant`` for
  the model's); the rest of the event (id, author, invocation, actions and
  their state delta, timestamps) is in ``metadata["adk"]``. Events load back
  equal to what was appended; a part this module does not know is kept whole
  in an ``adk_part`` block.
- App state and user state (``app:`` / ``user:`` keys) live in the info of
  the agents ``adk-app.<hash>`` and ``adk-user.<hash>``.

``append_event`` is one ``append_messages`` call, plus a ``save_info`` per
scope whose state the event changes.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

try:
    from google.adk.errors.already_exists_error import AlreadyExistsError
    from google.adk.events.event import Event
    from google.adk.sessions import _session_util
    from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig, ListSessionsResponse
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
except ImportError as exc:  # pragma: no cover - the hint is the point
    raise ImportError("kode_sdk.integrations.adk needs Google ADK: pip install 'kode-sdk[adk]'") from exc

from ..errors import InvalidAgentIdError
from ..store.agent_ids import validate_agent_id
from ..store.protocols import ExtendedStore, Store
from ..types import AgentInfo, Message
from ._locks import KeyedLocks
from ._loop import LoopHome

__all__ = ["KodeSessionService", "event_from_message", "event_to_message"]

_DUMP: dict[str, Any] = {"mode": "json", "exclude_none": True, "exclude_defaults": True}


def _part_block(part: dict[str, Any]) -> dict[str, Any]:
    if part.keys() == {"text"} and isinstance(part["text"], str):
        return {"type": "text", "text": part["text"]}
    call: dict[str, Any] = part.get("function_call") or {}
    if part.keys() == {"function_call"} and call.get("id") and call.get("name") and isinstance(call.get("args"), dict):
        return {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["args"]}
    response: dict[str, Any] = part.get("function_response") or {}
    if part.keys() == {"function_response"} and response.get("id") and response.get("name"):
        return {
            "type": "tool_result",
            "tool_use_id": response["id"],
            "name": response["name"],
            "content": response.get("response"),
            "is_error": False,
        }
    return {"type": "adk_part", "part": part}


def _block_part(block: dict[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return {"text": block["text"]}
    if kind == "tool_use":
        return {"function_call": {"id": block["id"], "name": block["name"], "args": block["input"]}}
    if kind == "tool_result":
        response: dict[str, Any] = {"id": block["tool_use_id"], "name": block["name"]}
        if block.get("content") is not None:
            response["response"] = block["content"]
        return {"function_response": response}
    return dict(block["part"])


def event_to_message(event: Event) -> dict[str, Any]:
    """The kode wire message an ADK event is stored as."""
    data = event.model_dump(**_DUMP)
    content = data.pop("content", None)
    if content is None:
        blocks: list[dict[str, Any]] = []
        role = "user" if event.author == "user" else "assistant"
    else:
        blocks = [_part_block(p) for p in content.pop("parts", [])]
        data["content"] = content  # what is left of it: the role
        role = "user" if content.get("role") == "user" else "assistant"
    wire = {"role": role, "content": blocks, "metadata": {"adk": data}}
    if event_from_message(wire) != event:
        # Not representable as blocks: keep the whole event (the blocks still serve queries).
        wire["metadata"] = {"adk": event.model_dump(**_DUMP), "whole": True}
    return wire


def event_from_message(message: dict[str, Any] | Message) -> Event:
    """The event a message written by :func:`event_to_message` stands for."""
    if isinstance(message, Message):
        message = {"role": message.role, "content": message.content, "metadata": message.metadata}
    meta = message["metadata"] or {}
    data = dict(meta["adk"])
    if not meta.get("whole") and "content" in data:
        data["content"] = {**data["content"], "parts": [_block_part(b) for b in message["content"]]}
    return Event.model_validate(data)


def _hashed(prefix: str, *parts: str) -> str:
    return f"{prefix}{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:40]}"


class KodeSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` on a kode store (module docstring: how).

    ``store`` is any kode store, opened or not; ``agent_prefix`` is put before
    every agent id this service writes.
    """

    def __init__(self, store: Store, *, agent_prefix: str = "") -> None:
        self.store = store
        self.agent_prefix = agent_prefix
        self._home = LoopHome("adk", store)
        self._locks = KeyedLocks()

    # ------------------------------------------------------------------ naming

    def agent_id(self, app_name: str, user_id: str, session_id: str) -> str:
        """The kode agent id of a session."""
        if ":" not in app_name + user_id:
            try:
                return validate_agent_id(f"{self.agent_prefix}{app_name}:{user_id}:{session_id}")
            except InvalidAgentIdError:
                pass
        return validate_agent_id(_hashed(f"{self.agent_prefix}adk-x.", app_name, user_id, session_id))

    def _app_agent(self, app_name: str) -> str:
        return validate_agent_id(_hashed(f"{self.agent_prefix}adk-app.", app_name))

    def _user_agent(self, app_name: str, user_id: str) -> str:
        return validate_agent_id(_hashed(f"{self.agent_prefix}adk-user.", app_name, user_id))

    # ------------------------------------------------------------------ state

    async def _scoped(self, agent: str) -> dict[str, Any]:
        info = await self.store.load_info(agent)
        return dict(info.metadata.get("state", {})) if info is not None else {}

    async def _update_scoped(self, agent: str, template: str, delta: dict[str, Any]) -> None:
        # App and user state are shared by sessions that other processes may be running: read,
        # merge and save under the agent's lock where the store has one (and always in-process).
        async with self._locks.hold(agent):
            if isinstance(self.store, ExtendedStore):
                async with self.store.agent_lock(agent):
                    await self._update_scoped_locked(agent, template, delta)
            else:
                await self._update_scoped_locked(agent, template, delta)

    async def _update_scoped_locked(self, agent: str, template: str, delta: dict[str, Any]) -> None:
        info = await self.store.load_info(agent)
        state = dict(info.metadata.get("state", {})) if info is not None else {}
        state.update(delta)
        if info is None:
            info = AgentInfo(agent_id=agent, template_id=template, metadata={"state": state})
        else:
            info = info.model_copy(update={"metadata": {**info.metadata, "state": state}})
        await self.store.save_info(agent, info)

    async def _merged(self, session: Session) -> Session:
        for key, value in (await self._scoped(self._app_agent(session.app_name))).items():
            session.state[State.APP_PREFIX + key] = value
        for key, value in (await self._scoped(self._user_agent(session.app_name, session.user_id))).items():
            session.state[State.USER_PREFIX + key] = value
        return session

    async def _apply_deltas(self, app_name: str, user_id: str, deltas: dict[str, dict[str, Any]]) -> None:
        if deltas["app"]:
            await self._update_scoped(self._app_agent(app_name), "adk-app-state", deltas["app"])
        if deltas["user"]:
            await self._update_scoped(self._user_agent(app_name, user_id), "adk-user-state", deltas["user"])

    # ------------------------------------------------------------------ the service

    async def _create(
        self, app_name: str, user_id: str, state: dict[str, Any] | None, session_id: str | None
    ) -> Session:
        sid = session_id.strip() if session_id else None
        sid = sid or str(uuid.uuid4())
        agent = self.agent_id(app_name, user_id, sid)
        if await self.store.load_info(agent) is not None:
            raise AlreadyExistsError(f"Session with id {sid} already exists.")
        deltas = _session_util.extract_state_delta(_session_util.make_json_safe_state(state or {}))
        await self._apply_deltas(app_name, user_id, deltas)
        now = time.time()
        meta = {"app_name": app_name, "user_id": user_id, "id": sid, "state": deltas["session"], "updated": now}
        info = AgentInfo(agent_id=agent, template_id=f"adk:{app_name}", metadata={"user_id": user_id, "adk": meta})
        await self.store.save_info(agent, info)
        session = Session(
            app_name=app_name, user_id=user_id, id=sid, state=dict(deltas["session"]), last_update_time=now
        )
        return await self._merged(session)

    async def _get(
        self, app_name: str, user_id: str, session_id: str, config: GetSessionConfig | None
    ) -> Session | None:
        agent = self.agent_id(app_name, user_id, session_id.strip())
        info = await self.store.load_info(agent)
        if info is None or "adk" not in info.metadata:
            return None
        meta = info.metadata["adk"]
        events = [event_from_message(m) for m in await self.store.load_messages(agent)]
        updated = max([float(meta["updated"]), *(e.timestamp for e in events[-1:])])
        if config is not None:
            if config.num_recent_events is not None:
                events = events[-config.num_recent_events :] if config.num_recent_events else []
            if config.after_timestamp is not None:
                events = [e for e in events if e.timestamp >= config.after_timestamp]
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=meta["id"],
            state=dict(meta["state"]),
            events=events,
            last_update_time=updated,
        )
        return await self._merged(session)

    async def _list(self, app_name: str, user_id: str | None) -> ListSessionsResponse:
        found: list[Session] = []
        offset = 0
        while True:
            page = await self.store.query_sessions(  # type: ignore[attr-defined]
                template_id=f"adk:{app_name}", user_id=user_id, limit=1000, offset=offset
            )
            for row in page:
                meta = (row.metadata or {}).get("adk")
                if meta is None or (user_id is not None and meta["user_id"] != user_id):
                    continue
                session = Session(
                    app_name=app_name,
                    user_id=meta["user_id"],
                    id=meta["id"],
                    state=dict(meta["state"]),
                    last_update_time=max(float(meta["updated"]), row.updated_at.timestamp()),
                )
                found.append(await self._merged(session))
            if len(page) < 1000:
                break
            offset += 1000
        found.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=found)

    async def _append(self, session: Session, event: Event) -> Event:
        agent = self.agent_id(session.app_name, session.user_id, session.id)
        async with self._locks.hold(agent):
            return await self._append_locked(agent, session, event)

    async def _append_locked(self, agent: str, session: Session, event: Event) -> Event:
        # Validate first: an event for a missing session must not create half a session.
        info = await self.store.load_info(agent)
        if info is None:
            from google.adk.errors.session_not_found_error import SessionNotFoundError

            raise SessionNotFoundError(f"Session {session.id} not found.")
        await self.store.append_messages(agent, [event_to_message(event)])
        if event.actions and event.actions.state_delta:
            deltas = _session_util.extract_state_delta(event.actions.state_delta)
            await self._apply_deltas(session.app_name, session.user_id, deltas)
            if deltas["session"]:
                meta = dict(info.metadata["adk"])
                meta["state"] = {**meta["state"], **deltas["session"]}
                meta["updated"] = event.timestamp
                await self.store.save_info(agent, info.model_copy(update={"metadata": {**info.metadata, "adk": meta}}))
        return event

    # ------------------------------------------------------------------ BaseSessionService

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session (``AlreadyExistsError`` when the id is taken)."""
        return await self._home.arun(self._create(app_name, user_id, state, session_id))

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """The session with its events and merged app/user/session state, or None."""
        return await self._home.arun(self._get(app_name, user_id, session_id, config))

    async def list_sessions(self, *, app_name: str, user_id: str | None = None) -> ListSessionsResponse:
        """The app's sessions (of one user when given), without events, oldest update first."""
        return await self._home.arun(self._list(app_name, user_id))

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its events (app and user state stay)."""
        await self._home.arun(self.store.delete(self.agent_id(app_name, user_id, session_id.strip())))

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        """The user's state (keys without the ``user:`` prefix)."""
        return await self._home.arun(self._scoped(self._user_agent(app_name, user_id)))

    async def append_event(self, session: Session, event: Event) -> Event:
        """Apply the event to ``session`` and store it (and its state delta)."""
        if event.partial:
            return event
        event = await super().append_event(session=session, event=event)
        session.last_update_time = event.timestamp
        return await self._home.arun(self._append(session, event))
