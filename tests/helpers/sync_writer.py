"""Child process for the kode_sdk.sync exit tests: writes through the blocking
API from plain functions, prints what was acknowledged, and exits WITHOUT
closing anything (the way a script or a request handler ends).

    python sync_writer.py '<store config as JSON>' <agent_id> <count>
"""

from __future__ import annotations

import json
import sys

from kode_sdk import sync
from kode_sdk.testing import data


def handle_request(store: sync.SyncStore, agent_id: str, step: int) -> None:
    """What a Flask view or a Celery task does: plain calls, no event loop in sight."""
    store.append_messages(agent_id, [{"role": "user", "content": [{"type": "text", "text": f"turn {step}"}]}])
    store.append_event(agent_id, data.timeline(step))


def main() -> None:
    config, agent_id, count = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store = sync.create_store(config)
    acknowledged = 0
    for step in range(1, count + 1):
        handle_request(store, agent_id, step)
        acknowledged = step
    print(json.dumps({"acknowledged": acknowledged}), flush=True)
    # No store.close(): the interpreter's exit must not lose what was acknowledged.


if __name__ == "__main__":
    main()
