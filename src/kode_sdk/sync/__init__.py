"""The blocking API: every store method without ``await``.

For synchronous programs (Flask, Django, Celery, scripts). Each call runs the
async store on one event-loop thread that this module owns, so it is safe to
call from many threads at once, and everything a call acknowledged is written
before the interpreter exits (an ``atexit`` hook closes stores left open).

>>> from kode_sdk import sync
>>> with sync.create_store({"type": "json", "base_dir": "./data/store"}) as store:   # doctest: +SKIP
...     store.save_messages("agt-1", [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
...     for event in store.read_events("agt-1"):
...         print(event.bookmark.seq)

``create_store`` / ``create_extended_store`` take the same arguments as the
async factories. ``SyncStore(async_store)`` (or ``SyncStore(factory)``, a
zero-argument callable making one) wraps a store you built yourself; let the
facade be its only user, since an async store belongs to the loop it runs on.
Iterators are plain iterators; locks are ``with store.agent_lock(agent_id):``.
:func:`call` and :func:`iterate` run your own coroutines on the same loop
(``store.async_store`` is the async store underneath). See docs/sync.md.
"""

from __future__ import annotations

from ._facade import SyncAgentLock
from ._generated import SyncExtendedStore, SyncQueryableStore, SyncStore, create_extended_store, create_store
from ._runner import call, iterate

__all__ = [
    "SyncAgentLock",
    "SyncExtendedStore",
    "SyncQueryableStore",
    "SyncStore",
    "call",
    "create_extended_store",
    "create_store",
    "iterate",
]
