"""PostgresStore behind a transaction-mode pooler (PgBouncer ``pool_mode =
transaction``, or a managed equivalent): what replaces session state.

Behind such a pooler every transaction may run on a different server session,
one that another client used a moment ago and may have left with any setting
(an empty ``search_path`` after a ``pg_restore``, say). So:

* **Settings per transaction.** Nothing is sent at connect (PgBouncer refuses
  the ``options`` startup parameter). Each transaction starts with one
  statement, :func:`settings_statement` — ``set_config(name, value, true)``
  for ``search_path`` and the planner settings — queued in the same pipeline
  as ``BEGIN``, so it costs no extra round trip.
* **No server-side prepared statements** (``prepare_threshold=None``): a
  statement prepared on one server session does not exist on the next.
* **Agent locks are leases**, rows of ``agent_leases`` (migration 0003) with an
  expiry on the server's clock: :class:`LeaseAgentLock`. Taking one is an
  ``INSERT … ON CONFLICT DO UPDATE … WHERE expires_at < now`` (so only a free
  or expired lease is taken), retried with backoff until the timeout. While
  held, a task renews it every third of the lease. A holder that dies stops
  renewing: its lock outlives it by at most one lease. A holder that could not
  renew in time (a network partition, a frozen event loop) knows it locally —
  its lease is counted from *before* its last successful renewal was sent,
  so the local deadline always falls before the server's — and every write of
  that agent through the store then raises
  :class:`~kode_sdk.errors.LockLostError` instead of writing.
* **The live tail polls** (LISTEN needs a session of its own); see
  :meth:`PostgresStore.tail_events <kode_sdk.store.postgres.PostgresStore.tail_events>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...errors import LockLostError
from ..locks import AgentLock, wait_with_backoff
from .config import PostgresSettings

__all__ = [
    "LEASE_ACQUIRE",
    "LEASE_RELEASE",
    "LEASE_RENEW",
    "LeaseAgentLock",
    "acquire_lease",
    "settings_statement",
]

logger = logging.getLogger("kode_sdk.store.postgres")

# Only a free or expired lease is taken; the server's clock decides expiry,
# so the workers' clocks never have to agree.
LEASE_ACQUIRE = (
    "INSERT INTO agent_leases AS l (agent_id, holder, expires_at)"
    " VALUES (%s, %s, clock_timestamp() + %s * interval '1 millisecond')"
    " ON CONFLICT (agent_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
    " WHERE l.expires_at < clock_timestamp() RETURNING 1"
)
LEASE_RENEW = (
    "UPDATE agent_leases SET expires_at = clock_timestamp() + %s * interval '1 millisecond'"
    " WHERE agent_id = %s AND holder = %s AND expires_at > clock_timestamp() RETURNING 1"
)
LEASE_RELEASE = "DELETE FROM agent_leases WHERE agent_id = %s AND holder = %s RETURNING 1"

# The local deadline keeps this share of the lease: room for clocks that run
# at slightly different rates on the client and the server.
_LOCAL_SHARE = 0.9

RunRow = Callable[[str, Sequence[Any]], Awaitable[bool]]
"""Run one statement in its own transaction; True if it returned a row."""


def settings_statement(settings: PostgresSettings) -> tuple[str, list[str]]:
    """The statement that applies the store's settings to the current
    transaction only (``set_config(…, true)``): ``(sql, params)``."""
    calls = ", ".join("set_config(%s, %s, true)" for _ in settings.session_settings)
    params = [item for pair in settings.session_settings for item in pair]
    return f"SELECT {calls}", params


class LeaseAgentLock(AgentLock):
    """A held agent lock that is a lease row, renewed in the background.

    :attr:`lost` turns True once the lease may have lapsed; the store then
    refuses writes of this agent (:class:`~kode_sdk.errors.LockLostError`)."""

    def __init__(
        self,
        agent_id: str,
        holder: str,
        lease_s: float,
        confirmed_at: float,
        run: RunRow,
        on_release: Callable[[LeaseAgentLock], None],
    ) -> None:
        super().__init__(agent_id)
        self._holder = holder
        self._lease_s = lease_s
        self._valid_until = confirmed_at + lease_s * _LOCAL_SHARE
        self._taken_over = False
        self._run = run
        self._on_release = on_release
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())

    @property
    def lost(self) -> bool:
        """True once the lease may have lapsed (not renewed in time, or taken over)."""
        return self._taken_over or time.monotonic() >= self._valid_until

    def check(self) -> None:
        """Raise :class:`~kode_sdk.errors.LockLostError` if the lease may have lapsed."""
        if not self.released and self.lost:
            raise LockLostError(self.agent_id)

    async def _renew_loop(self) -> None:
        interval = self._lease_s / 3
        while not self.released:
            await asyncio.sleep(max(0.0, min(interval, self._valid_until - time.monotonic() - interval / 2)))
            if self.released:
                return
            sent = time.monotonic()
            try:
                renewed = await self._run(LEASE_RENEW, [int(self._lease_s * 1000), self.agent_id, self._holder])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Keep trying while the lease may still be ours; the local
                # deadline turns the lock into "lost" if this goes on too long.
                logger.warning("lease of agent %r: renewal failed (%s), retrying", self.agent_id, type(exc).__name__)
                if self.lost:
                    return
                await asyncio.sleep(min(0.2, interval))
                continue
            if not renewed:
                self._taken_over = True
                logger.warning("lease of agent %r expired before it could be renewed: lock lost", self.agent_id)
                return
            self._valid_until = sent + self._lease_s * _LOCAL_SHARE

    async def _release(self) -> None:
        self._renewer.cancel()
        with contextlib.suppress(BaseException):
            await self._renewer
        self._on_release(self)
        try:
            deleted = await self._run(LEASE_RELEASE, [self.agent_id, self._holder])
        except Exception as exc:
            # The lease expires by itself, at most one lease from now.
            logger.warning("lease of agent %r: release failed (%s)", self.agent_id, type(exc).__name__)
            return
        if not deleted:
            logger.warning("lock of agent %r was no longer held at release", self.agent_id)


async def acquire_lease(
    agent_id: str,
    timeout_ms: int,
    lease_s: float,
    run: RunRow,
    on_release: Callable[[LeaseAgentLock], None],
) -> LeaseAgentLock | None:
    """Take the agent's lease within ``timeout_ms`` (at least one try), polling
    with backoff up to 50 ms; None on timeout."""
    holder = secrets.token_hex(16)
    confirmed = [0.0]

    async def attempt() -> bool:
        sent = time.monotonic()
        if await run(LEASE_ACQUIRE, [agent_id, holder, int(lease_s * 1000)]):
            confirmed[0] = sent
            return True
        return False

    if not await wait_with_backoff(attempt, timeout_ms, first_delay_s=0.002, max_delay_s=0.05):
        return None
    return LeaseAgentLock(agent_id, holder, lease_s, confirmed[0], run, on_release)
