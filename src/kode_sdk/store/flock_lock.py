"""Agent locks as ``flock`` on one file per agent, shared by the file-based
backends (SqliteStore, JSONStore).

``flock`` belongs to an open file description, so a second acquire waits even
in the same process and from the same store (the lock is not re-entrant);
the kernel frees it when the holding process dies, whatever way. There is no
expiry. POSIX only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; acquiring raises there
    fcntl = None  # type: ignore[assignment]

from ..errors import LockTimeoutError, StoreConnectionError
from .locks import AgentLock, wait_with_backoff

__all__ = ["FlockAgentLock", "acquire_flock_lock"]

_FILE_MODE = 0o600


class FlockAgentLock(AgentLock):
    """An agent lock held as ``flock(LOCK_EX)`` on ``<lock dir>/<agent_id>.lock``."""

    def __init__(self, agent_id: str, fd: int, on_release: Callable[[FlockAgentLock], None]) -> None:
        super().__init__(agent_id)
        self._fd = fd
        self._on_release = on_release

    async def _release(self) -> None:
        fd, self._fd = self._fd, -1
        self._on_release(self)
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


async def acquire_flock_lock(
    lock_dir: Path, agent_id: str, timeout_ms: int, on_release: Callable[[FlockAgentLock], None]
) -> FlockAgentLock:
    """Take the exclusive lock of ``agent_id`` in ``lock_dir`` (created 0700
    when missing), waiting up to ``timeout_ms``, else raise
    :class:`LockTimeoutError`. ``on_release`` is called when it is released."""
    if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
        raise ValueError(f"timeout_ms must be an int >= 0; got {timeout_ms!r}")
    if fcntl is None:  # pragma: no cover - Windows
        raise NotImplementedError("agent locks need fcntl.flock (POSIX)")
    path = lock_dir / f"{agent_id}.lock"

    def open_lock_file() -> int:
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)

    try:
        fd = open_lock_file()
    except OSError as exc:
        raise StoreConnectionError(f"cannot open lock file {str(path)!r}: {exc}") from exc

    async def attempt() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    try:
        acquired = await wait_with_backoff(attempt, timeout_ms, max_delay_s=0.025)
    except BaseException:
        os.close(fd)
        raise
    if not acquired:
        os.close(fd)
        raise LockTimeoutError(agent_id, timeout_ms)
    return FlockAgentLock(agent_id, fd, on_release)
