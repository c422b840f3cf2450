"""Agent ids: the one rule for what an agent id may be (``validate_agent_id``)."""

from __future__ import annotations

import re

from ..errors import (
    InvalidAgentIdError,
)

MAX_AGENT_ID_LENGTH = 128
_AGENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def validate_agent_id(agent_id: object) -> str:
    """Return ``agent_id`` if it is a valid agent id, else raise
    :class:`InvalidAgentIdError` saying why.

    Valid: a ``str`` of 1–128 characters from ``[A-Za-z0-9._:-]``, not ``.`` or
    ``..``. No valid id can name a path outside a store's directory.

    >>> validate_agent_id("agt:demo-1")
    'agt:demo-1'
    """
    if type(agent_id) is str and _AGENT_ID.fullmatch(agent_id) and agent_id not in (".", ".."):
        return agent_id
    raise InvalidAgentIdError(_agent_id_problem(agent_id))


def _agent_id_problem(agent_id: object) -> str:
    if type(agent_id) is not str:  # a str subclass could override comparisons or hashing
        return f"invalid agent id: expected a str, got {type(agent_id).__name__}"
    shown = repr(agent_id if len(agent_id) <= 40 else agent_id[:40] + "…")
    if not agent_id:
        return "invalid agent id '': must not be empty"
    if len(agent_id) > MAX_AGENT_ID_LENGTH:
        return f"invalid agent id {shown}: {len(agent_id)} characters, at most {MAX_AGENT_ID_LENGTH} allowed"
    if agent_id in (".", ".."):
        return f"invalid agent id {shown}: '.' and '..' are reserved"
    bad = next(ch for ch in agent_id if not _AGENT_ID.fullmatch(ch))
    return f"invalid agent id {shown}: character {bad!r} is not allowed (use A-Z a-z 0-9 . _ : -)"
