"""kode-sdk: persistence for long-running AI agents.

Conversations, tool calls with approvals and audit trails, event timelines,
todos, snapshots and forks — in JSON files, SQLite (the embedded default) or
PostgreSQL — and fast answers about them.

>>> import asyncio
>>> from kode_sdk import create_extended_store
>>> async def main() -> None:                                  # doctest: +SKIP
...     async with await create_extended_store() as store:
...         await store.save_messages("agt-1", [{"role": "user", "content": "Hello!"}])
...         print(await store.load_messages("agt-1"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AgentExistsError,
    AgentNotFoundError,
    AgentStateError,
    InvalidAgentIdError,
    KodeError,
    LockLostError,
    LockTimeoutError,
    ProviderError,
    RecordValidationError,
    SchemaVersionError,
    StoreClosedError,
    StoreConfigError,
    StoreConnectionError,
    StoreCorruptionError,
)
from .store.agent_ids import validate_agent_id
from .store.factory import config_from_env, create_extended_store, create_store
from .store.json_store import JSONStore
from .store.locks import AgentLock
from .store.protocols import ExtendedStore, QueryableStore, Store
from .store.sqlite import SqliteStore
from .store.transaction import StoreTransaction
from .types import (
    AgentInfo,
    AgentStats,
    Bookmark,
    BreakpointState,
    CompressionRecord,
    ConsistencyCheckResult,
    HistoryWindow,
    MediaCacheRecord,
    Message,
    MessageHit,
    RecoveredFile,
    SessionInfo,
    Snapshot,
    StoredMessage,
    StoredToolCall,
    StoreHealthStatus,
    StoreMetrics,
    Timeline,
    TodoItem,
    TodoSnapshot,
    ToolCallApproval,
    ToolCallAuditEntry,
    ToolCallRecord,
    ToolCallState,
)

if TYPE_CHECKING:
    from .agent import (
        Agent,
        AgentTemplate,
        AnthropicProvider,
        CompleteResult,
        OpenAIProvider,
        PermissionPolicy,
        ScriptedProvider,
        TemplateRegistry,
        Tool,
        ToolContext,
        ToolRegistry,
        tool,
    )
    from .store.postgres import PostgresStore

# The agent loop and the PostgreSQL driver load on first use: a SQLite-only
# program (and `kode --help`) does not pay for psycopg and the agent modules.
_LAZY = {
    "PostgresStore": ".store.postgres",
    **dict.fromkeys(
        (
            "Agent",
            "AgentTemplate",
            "AnthropicProvider",
            "CompleteResult",
            "OpenAIProvider",
            "PermissionPolicy",
            "ScriptedProvider",
            "TemplateRegistry",
            "Tool",
            "ToolContext",
            "ToolRegistry",
            "tool",
        ),
        ".agent",
    ),
}


def __getattr__(name: str) -> Any:
    if name == "sync":  # `import kode_sdk; kode_sdk.sync.create_store(...)` (loads the blocking API on first use)
        return importlib.import_module(".sync", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kode_sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentExistsError",
    "AgentInfo",
    "AgentLock",
    "AgentNotFoundError",
    "AgentStateError",
    "AgentStats",
    "AgentTemplate",
    "AnthropicProvider",
    "Bookmark",
    "BreakpointState",
    "CompleteResult",
    "CompressionRecord",
    "ConsistencyCheckResult",
    "ExtendedStore",
    "HistoryWindow",
    "InvalidAgentIdError",
    "JSONStore",
    "KodeError",
    "LockLostError",
    "LockTimeoutError",
    "MediaCacheRecord",
    "Message",
    "MessageHit",
    "OpenAIProvider",
    "PermissionPolicy",
    "PostgresStore",
    "ProviderError",
    "QueryableStore",
    "RecordValidationError",
    "RecoveredFile",
    "SchemaVersionError",
    "ScriptedProvider",
    "SessionInfo",
    "Snapshot",
    "SqliteStore",
    "Store",
    "StoreClosedError",
    "StoreConfigError",
    "StoreConnectionError",
    "StoreCorruptionError",
    "StoreHealthStatus",
    "StoreMetrics",
    "StoreTransaction",
    "StoredMessage",
    "StoredToolCall",
    "TemplateRegistry",
    "Timeline",
    "TodoItem",
    "TodoSnapshot",
    "Tool",
    "ToolCallApproval",
    "ToolCallAuditEntry",
    "ToolCallRecord",
    "ToolCallState",
    "ToolContext",
    "ToolRegistry",
    "__version__",
    "config_from_env",
    "create_extended_store",
    "create_store",
    "tool",
    "validate_agent_id",
]
