"""The extension interface for store authors: every piece a backend needs,
in one import (``docs/writing-a-store.md`` walks through them).

Each name lives in the module that owns its job, and kode_sdk's own code
imports it from there; this module only gathers them, so a store written
outside this package depends on one stable name list (``__all__``) rather
than on the package's layout.

==========================  ==================================================
module                      job
==========================  ==================================================
``store.protocols``         ``Store``, ``QueryableStore``, ``ExtendedStore``
``store.lifecycle``         ``BaseStore`` and the ``operation`` decorators
``store.appended``          ``AppendedRecords``: the append-only kinds' methods once
``store.policy``            argument and filter rules, driver-error mapping
``store.agent_ids``         what an agent id may be
``store.records``           record kinds, records in (``coerce_list``), a message's wire form
``store.list_diff``         snapshots and the list diff of incremental saves
``store.events``            event validation, 64-bit bounds, group commit
``store.queries``           ``QueryFront``: the query API once, a primitive per query
``store.search``            ``search_messages``' requests, rows and scan ranking
``store.query_rules``       time clauses, prefix ranges, stats, fork ids
``store.locks``             the ``agent_lock`` block and its backoff
``store.metrics``           per-store call metrics
``store.transaction``       ``store.transaction()``: a unit of work
``store.results``           rows into query results without re-validation
==========================  ==================================================

>>> from kode_sdk.store.base import BaseStore, operation, coerce_list
"""

from __future__ import annotations

from .agent_ids import MAX_AGENT_ID_LENGTH, validate_agent_id
from .appended import AppendedRecords
from .events import (
    INT64_MAX,
    INT64_MIN,
    EventCommitter,
    PendingEvent,
    check_channel,
    check_int64,
    duplicate_seq_error,
    event_row,
    event_rows,
    since_seq,
    timeline_from_wire,
)
from .lifecycle import BaseStore, operation, operation_iter
from .list_diff import (
    ExactNumber,
    SavedListCache,
    changed_positions,
    message_keys,
    message_snapshot,
    message_snapshot_from_wire,
    share_copy,
    tool_call_keys,
    tool_call_snapshot,
    updated_snapshots,
)
from .locks import AgentLock, wait_with_backoff
from .metrics import Metrics
from .policy import OpKind, check_page, check_sort, time_bound
from .protocols import ExtendedStore, QueryableStore, Store
from .queries import AgentCounts, MessageQuery, QueryFront, SessionQuery, ToolCallQuery
from .query_rules import created_at_clauses, fork_agent_ids, prefix_upper_bound, stats_from_counts, user_id_of
from .records import RecordKind, coerce_list, message_to_wire, record_json
from .results import message_from_wire
from .search import SearchCandidate, SearchRequest, SearchRow, SearchScan
from .transaction import StoreTransaction

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_AGENT_ID_LENGTH",
    "AgentCounts",
    "AgentLock",
    "AppendedRecords",
    "BaseStore",
    "EventCommitter",
    "ExactNumber",
    "ExtendedStore",
    "MessageQuery",
    "Metrics",
    "OpKind",
    "PendingEvent",
    "QueryFront",
    "QueryableStore",
    "RecordKind",
    "SavedListCache",
    "SearchCandidate",
    "SearchRequest",
    "SearchRow",
    "SearchScan",
    "SessionQuery",
    "Store",
    "StoreTransaction",
    "ToolCallQuery",
    "changed_positions",
    "check_channel",
    "check_int64",
    "check_page",
    "check_sort",
    "coerce_list",
    "created_at_clauses",
    "duplicate_seq_error",
    "event_row",
    "event_rows",
    "fork_agent_ids",
    "message_from_wire",
    "message_keys",
    "message_snapshot",
    "message_snapshot_from_wire",
    "message_to_wire",
    "operation",
    "operation_iter",
    "prefix_upper_bound",
    "record_json",
    "share_copy",
    "since_seq",
    "stats_from_counts",
    "time_bound",
    "timeline_from_wire",
    "tool_call_keys",
    "tool_call_snapshot",
    "updated_snapshots",
    "user_id_of",
    "validate_agent_id",
    "wait_with_backoff",
]
