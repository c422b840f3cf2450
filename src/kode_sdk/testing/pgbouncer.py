"""A real PgBouncer (Debian's ``pgbouncer`` package) in transaction mode in
front of a test server, for the tests and benchmarks (W5) that run the store
through a pooler.

Started with a config of its own in a temporary directory, on a free port,
``auth_type = any`` (the server behind it trusts 127.0.0.1), as the
``postgres`` user when the tests run as root (PgBouncer refuses root).
When the binary is missing the tests skip with a notice;
``KODE_REQUIRE_PGBOUNCER=1`` (set by ``.ci/run``) turns that into a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["REQUIRE_ENV", "PgBouncer", "find_pgbouncer"]

REQUIRE_ENV = "KODE_REQUIRE_PGBOUNCER"


def find_pgbouncer() -> str | None:
    """The pgbouncer binary, or None."""
    for path in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("pgbouncer")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncer:
    """PgBouncer, transaction pooling, ``pool_size`` server connections per
    database/user pair, in front of the server that ``server_url`` names."""

    def __init__(self, server_url: str, *, pool_size: int = 20, max_client_conn: int = 400) -> None:
        binary = find_pgbouncer()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        server = conninfo_to_dict(server_url)
        self.server = server
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="kode-pgbouncer-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise RuntimeError("running as root and 'runuser' is missing")
            as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")
        host = str(server.get("host") or "127.0.0.1")
        backend_port = str(server.get("port") or 5432)
        user = str(server.get("user") or "postgres")
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={host} port={backend_port} user={user}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {max_client_conn}\n"
            "server_reset_query =\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
            f"pidfile = {self.dir / 'pgbouncer.pid'}\n"
            "admin_users = postgres\n"
        )
        if as_user:
            shutil.chown(ini, "postgres", "postgres")
        self._proc = subprocess.Popen(
            [*as_user, binary, "-q", str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                break
            except psycopg.Error as exc:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "pgbouncer.log").read_text() if (self.dir / "pgbouncer.log").exists() else ""
                    self.stop()
                    raise RuntimeError(f"pgbouncer did not start: {exc}; {log[-1000:]}") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        """A DSN of the server's database, through PgBouncer."""
        params = {k: v for k, v in self.server.items() if k not in ("host", "port", "options")}
        return make_conninfo("", **{**params, "host": "127.0.0.1", "port": str(self.port)})

    def stop(self) -> None:
        """Stop PgBouncer and remove its directory."""
        pidfile = self.dir / "pgbouncer.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        with contextlib.suppress(Exception):
            shutil.rmtree(self.dir, ignore_errors=True)
