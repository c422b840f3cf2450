"""The error hierarchy of kode-sdk: one module, one root.

Every error the library raises on purpose is a :class:`KodeError`, so callers
can catch the whole family at once::

    try:
        await store.save_messages("../x", [])
    except KodeError as exc:
        print(exc)   # invalid agent id '../x': must not contain '/' ...

Messages say what happened and where; they never contain a password.
"""

from __future__ import annotations

__all__ = [
    "AgentExistsError",
    "AgentNotFoundError",
    "AgentStateError",
    "InvalidAgentIdError",
    "KodeError",
    "LockLostError",
    "LockTimeoutError",
    "MissingExtraError",
    "ProviderError",
    "RecordValidationError",
    "SchemaVersionError",
    "StoreClosedError",
    "StoreConfigError",
    "StoreConnectionError",
    "StoreCorruptionError",
]


class KodeError(Exception):
    """Root of every error raised by kode-sdk."""


class StoreConfigError(KodeError, ValueError):
    """A store configuration (dict or environment variable) is invalid.

    The message names the offending key or variable and never echoes a password.
    """


class StoreConnectionError(KodeError, ConnectionError):
    """The store could not reach its database, or lost the connection mid-call."""


class StoreClosedError(KodeError, RuntimeError):
    """A method was called on a store after :meth:`close`."""


class InvalidAgentIdError(KodeError, ValueError):
    """An agent id is empty, too long, or holds characters outside ``[A-Za-z0-9._:-]``."""


class RecordValidationError(KodeError, ValueError):
    """A record (message, tool call, event, ...) failed validation.

    ``field`` is the dotted path of the offending value when known, e.g.
    ``messages[3].content[0].text``.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LockTimeoutError(KodeError, TimeoutError):
    """An agent lock could not be acquired within ``timeout_ms``."""

    def __init__(self, agent_id: str, timeout_ms: int) -> None:
        super().__init__(f"could not acquire the lock of agent {agent_id!r} within {timeout_ms} ms")
        self.agent_id = agent_id
        self.timeout_ms = timeout_ms


class LockLostError(KodeError, RuntimeError):
    """A write was refused because this store's lock on the agent has lapsed
    (a lease that could not be renewed in time, or that another worker took
    over after it expired): writing now could overwrite the new holder's work."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(
            f"the lock of agent {agent_id!r} was lost (its lease lapsed); nothing was written —"
            " release it and acquire it again"
        )
        self.agent_id = agent_id


class SchemaVersionError(KodeError, RuntimeError):
    """The database schema is newer than this version of kode-sdk understands,
    or a migration failed."""


class AgentNotFoundError(KodeError, LookupError):
    """An operation needed an existing agent (one whose ``AgentInfo`` was saved)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} not found")
        self.agent_id = agent_id


class AgentExistsError(KodeError, ValueError):
    """``Agent.create`` was given the id of an agent the store already holds
    (use ``Agent.resume_from_store`` to continue it)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} already exists; resume it with Agent.resume_from_store")
        self.agent_id = agent_id


class AgentStateError(KodeError, RuntimeError):
    """The agent cannot do what was asked in its current state (e.g. ``chat``
    while tool calls await approval, or ``decide`` on an unknown permission id)."""


class ProviderError(KodeError, RuntimeError):
    """A model provider failed: the SDK is missing, the API answered with an
    error, or a scripted provider ran out of turns."""


class StoreCorruptionError(KodeError, RuntimeError):
    """Stored data could not be read back: a file or row is damaged (unparseable
    JSON, a missing header, a truncated record).

    Raised instead of treating damaged data as empty, so nothing is silently
    lost; the message names the file or table and what was wrong.
    """


class MissingExtraError(KodeError, ImportError):
    """An optional feature's dependencies are not installed; the message is
    the one line that installs them (``pip install 'kode-sdk[postgres]'``)."""
