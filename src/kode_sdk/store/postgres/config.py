"""Connection settings of :class:`~kode_sdk.store.postgres.PostgresStore`:
parse and validate them, and keep the password out of every message.

A connection is a libpq DSN (``"postgresql://user@host:5432/db"`` or
``"host=... dbname=..."``) or a dict of parts::

    {"host": "db", "port": 5432, "database": "kode", "user": "kode", "password": "…",
     "max": 20, "idle_timeout_ms": 30000, "connection_timeout_ms": 2000, "ssl": "require",
     "dsn": "postgresql://…",   # optional base that the parts override
     "schema": "kode",          # optional, default "public"
     "synchronous_commit": "off",  # optional durability trade, default: the server's
     "pooler": "transaction",   # behind PgBouncer in transaction mode (or KODE_POSTGRES_POOLER)
     "lock_lease_ms": 10000,    # agent-lock lease behind a pooler (renewed while held)
     "replicas": ["postgresql://…"]}  # read replicas (or KODE_POSTGRES_REPLICAS, comma-separated)

A bad value raises :class:`~kode_sdk.errors.StoreConfigError` naming the key.
The password (and an ``sslpassword``) is never echoed: not in errors, not in
``repr``, not in log records of ``psycopg`` / ``psycopg.pool`` (a logging
filter scrubs them), and :meth:`PostgresSettings.scrub` cleans any driver
message before it reaches an exception.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import StoreConfigError
from ...extras import missing_extra

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
except ImportError as exc:  # a SQLite-only install: say which extra to add
    raise missing_extra("postgres", exc) from None

from ...redact import redact

__all__ = [
    "DEFAULT_SCHEMA",
    "PostgresSettings",
    "parse_connection",
    "register_secrets",
    "scrub_text",
    "unregister_secrets",
]

DEFAULT_SCHEMA = "public"
DEFAULT_MAX = 10
DEFAULT_IDLE_TIMEOUT_MS = 30_000
DEFAULT_CONNECTION_TIMEOUT_MS = 5_000

_KNOWN_KEYS = frozenset(
    {
        "host",
        "port",
        "database",
        "dbname",
        "user",
        "password",
        "max",
        "min",
        "idle_timeout_ms",
        "connection_timeout_ms",
        "ssl",
        "dsn",
        "schema",
        "application_name",
        "synchronous_commit",
        "pooler",
        "lock_lease_ms",
        "replicas",
    }
)
POOLER_ENV = "KODE_POSTGRES_POOLER"
REPLICAS_ENV = "KODE_POSTGRES_REPLICAS"
POOLER_MODES = ("none", "transaction")
DEFAULT_LOCK_LEASE_MS = 10_000
_SYNC_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SSL_KEYS = {
    "mode": "sslmode",
    "sslmode": "sslmode",
    "rootcert": "sslrootcert",
    "sslrootcert": "sslrootcert",
    "ca": "sslrootcert",
    "cert": "sslcert",
    "sslcert": "sslcert",
    "key": "sslkey",
    "sslkey": "sslkey",
    "crl": "sslcrl",
    "sslcrl": "sslcrl",
    "password": "sslpassword",
    "sslpassword": "sslpassword",
}
# Lower-case only, so the name never needs quoting in search_path or SQL.
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def scrub_text(text: str, secrets: tuple[str, ...] | frozenset[str] = ()) -> str:
    """``text`` with every password-shaped part and literal secret replaced by
    ``***`` (see :func:`kode_sdk.redact.redact`)."""
    return redact(text, secrets)


@dataclass(frozen=True, slots=True, repr=False)
class PostgresSettings:
    """Validated connection settings. ``conninfo`` holds the password: never print it."""

    conninfo: str
    schema: str
    host: str | None
    port: int | None
    database: str | None
    user: str | None
    min_size: int
    max_size: int
    idle_timeout_s: float
    connect_timeout_s: float
    secrets: frozenset[str] = field(default_factory=frozenset)
    # Behind a transaction pooler: no startup ``options``; these settings are
    # applied per transaction instead (``set_config(name, value, true)``).
    pooler: str | None = None
    session_settings: tuple[tuple[str, str], ...] = ()
    lock_lease_s: float = DEFAULT_LOCK_LEASE_MS / 1000
    # conninfo strings of the read replicas (same options as ``conninfo``).
    replicas: tuple[str, ...] = ()

    @property
    def transaction_pooled(self) -> bool:
        """True behind a transaction-mode pooler (PgBouncer ``pool_mode=transaction``)."""
        return self.pooler == "transaction"

    def scrub(self, text: str) -> str:
        """``text`` without any trace of this connection's secrets."""
        return scrub_text(text, self.secrets)

    def describe(self) -> str:
        """``host:port/database user=... schema=...`` — safe to show anywhere."""
        where = f"{self.host or 'localhost'}:{self.port or 5432}/{self.database or ''}"
        return f"{where} user={self.user or ''} schema={self.schema}"

    def __repr__(self) -> str:
        return f"PostgresSettings({self.describe()})"


def _int(value: Any, key: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f">= {low}"
        raise StoreConfigError(f"connection[{key!r}]: expected an int {bound}, got {value!r}")
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise StoreConfigError(f"connection[{key!r}]: expected a non-empty string, got {type(value).__name__}")
    return value


def _ssl_params(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if value is True:
        return {"sslmode": "require"}
    if value is False:
        return {"sslmode": "disable"}
    if isinstance(value, str):
        if value not in _SSL_MODES:
            raise StoreConfigError(f"connection['ssl']: {value!r} is not one of {', '.join(_SSL_MODES)}, or a bool")
        return {"sslmode": value}
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            libpq = _SSL_KEYS.get(key) if isinstance(key, str) else None
            if libpq is None:
                raise StoreConfigError(f"connection['ssl']: unknown key {key!r} (use {', '.join(sorted(_SSL_KEYS))})")
            out[libpq] = _str(item, f"ssl.{key}")
        if "sslmode" in out and out["sslmode"] not in _SSL_MODES:
            raise StoreConfigError(f"connection['ssl']: mode {out['sslmode']!r} is not one of {', '.join(_SSL_MODES)}")
        return out
    raise StoreConfigError(
        f"connection['ssl']: expected a bool, an sslmode string or a dict, got {type(value).__name__}"
    )


def _check_schema(schema: Any) -> str:
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        shown = repr(schema) if isinstance(schema, str) and len(schema) < 80 else type(schema).__name__
        raise StoreConfigError(
            f"schema: {shown} is not a valid schema name (lower-case letters, digits and '_', "
            "not starting with a digit, at most 63 characters)"
        )
    return schema


def _parse_dsn(dsn: str, key: str) -> dict[str, Any]:
    try:
        return dict(conninfo_to_dict(dsn))
    except psycopg.ProgrammingError:
        # libpq's message quotes the offending fragment, which may be the password.
        raise StoreConfigError(f"{key}: not a valid PostgreSQL DSN (libpq could not parse it)") from None


def _pooler(parts: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    if parts.get("pooler") is not None:
        value, where = parts["pooler"], "connection['pooler']"
    elif env.get(POOLER_ENV, "").strip():
        value, where = env[POOLER_ENV].strip().lower(), POOLER_ENV
    else:
        return None
    if value not in POOLER_MODES:
        raise StoreConfigError(f"{where}: {value!r} is not one of {', '.join(POOLER_MODES)}")
    return None if value == "none" else str(value)


def _replica_dsns(parts: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    if parts.get("replicas") is not None:
        value = parts["replicas"]
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise StoreConfigError("connection['replicas']: expected a list of DSN strings")
        return [_str(item, f"replicas[{i}]") for i, item in enumerate(value)]
    raw = env.get(REPLICAS_ENV, "")
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_connection(
    connection: Mapping[str, Any] | str, schema: str | None = None, *, environ: Mapping[str, str] | None = None
) -> PostgresSettings:
    """Validate ``connection`` (a DSN or a dict of parts) into :class:`PostgresSettings`.

    ``schema`` (keyword of the store) wins over ``connection["schema"]``.
    ``KODE_POSTGRES_POOLER`` and ``KODE_POSTGRES_REPLICAS`` (from ``environ``,
    default ``os.environ``) apply when the dict does not set ``pooler`` /
    ``replicas`` (always, for a DSN string).
    Raises :class:`StoreConfigError` naming the bad key, never echoing a secret.
    """
    env = os.environ if environ is None else environ
    parts: dict[str, Any]
    if isinstance(connection, str):
        params = _parse_dsn(connection, "connection")
        parts = {}
    elif isinstance(connection, Mapping):
        parts = dict(connection)
        for key in parts:
            if key not in _KNOWN_KEYS:
                raise StoreConfigError(
                    f"connection: unknown key {key!r} (known: {', '.join(sorted(_KNOWN_KEYS - {'dbname'}))})"
                )
        params = _parse_dsn(_str(parts["dsn"], "dsn"), "connection['dsn']") if parts.get("dsn") is not None else {}
    else:
        raise StoreConfigError(f"connection: expected a DSN string or a dict of parts, got {type(connection).__name__}")

    for key, libpq in (("host", "host"), ("database", "dbname"), ("dbname", "dbname"), ("user", "user")):
        if parts.get(key) is not None:
            params[libpq] = _str(parts[key], key)
    if parts.get("password") is not None:
        password = parts["password"]
        if not isinstance(password, str) or "\x00" in password:
            raise StoreConfigError("connection['password']: expected a string")
        params["password"] = password
    if parts.get("port") is not None:
        params["port"] = str(_int(parts["port"], "port", low=1, high=65535))
    elif params.get("port") is not None:
        try:
            _int(str(params["port"]), "port", low=1, high=65535)
        except StoreConfigError:
            raise StoreConfigError("connection: the DSN's port is not an int from 1 to 65535") from None
    if parts.get("application_name") is not None:
        params["application_name"] = _str(parts["application_name"], "application_name")
    params.update(_ssl_params(parts.get("ssl")))
    params.setdefault("application_name", "kode-sdk")

    max_size = _int(parts.get("max", DEFAULT_MAX), "max", low=1, high=10_000)
    min_size = _int(parts.get("min", 1), "min", low=0, high=max_size)
    idle_ms = _int(parts.get("idle_timeout_ms", DEFAULT_IDLE_TIMEOUT_MS), "idle_timeout_ms", low=0)
    connect_ms = _int(parts.get("connection_timeout_ms", DEFAULT_CONNECTION_TIMEOUT_MS), "connection_timeout_ms", low=1)
    # libpq counts whole seconds (and treats 1 as 2); the pool wait uses the exact value.
    params["connect_timeout"] = str(max(2, math.ceil(connect_ms / 1000)))

    chosen = schema if schema is not None else parts.get("schema", DEFAULT_SCHEMA)
    schema_name = _check_schema(chosen)
    # search_path for every connection this store opens (pool, locks, tail).
    # Store queries are small keyed lookups: parallel workers and JIT only add
    # latency (measured: aggregate_stats 9 ms with a parallel plan before the
    # first ANALYZE, 0.14 ms without).
    settings: list[tuple[str, str]] = [
        ("search_path", schema_name),
        ("max_parallel_workers_per_gather", "0"),
        ("jit", "off"),
    ]
    sync = parts.get("synchronous_commit")
    if sync is not None:
        # Opt-in durability trade: "off" makes each commit return before its
        # WAL is flushed (a crash may lose the last few hundred ms, never
        # corrupts). Default: the server's setting.
        if sync not in _SYNC_COMMIT:
            raise StoreConfigError(
                f"connection['synchronous_commit']: {sync!r} is not one of {', '.join(_SYNC_COMMIT)}"
            )
        settings.append(("synchronous_commit", str(sync)))
    pooler = _pooler(parts, env)
    lease_ms = _int(parts.get("lock_lease_ms", DEFAULT_LOCK_LEASE_MS), "lock_lease_ms", low=300, high=3_600_000)
    if pooler == "transaction":
        # PgBouncer refuses the ``options`` startup parameter, and a pooled
        # server connection may carry anyone's settings: they go per transaction.
        if params.get("options"):
            raise StoreConfigError(
                "connection: the DSN sets 'options', which a transaction pooler refuses at connect; drop it"
            )
        params.pop("options", None)
    else:
        existing = str(params.get("options") or "")
        params["options"] = (existing + "".join(f" -c {name}={value}" for name, value in settings)).strip()

    secrets = frozenset(str(params[k]) for k in ("password", "sslpassword") if params.get(k))
    try:
        conninfo = make_conninfo("", **params)
    except psycopg.ProgrammingError:
        raise StoreConfigError("connection: the parts do not form a valid libpq connection string") from None
    replicas: list[str] = []
    for index, dsn in enumerate(_replica_dsns(parts, env)):
        replica = _parse_dsn(dsn, f"replicas[{index}]")
        # A replica DSN may name only its host and port: the rest (database,
        # user, password, ssl, options) is the primary's unless it says otherwise.
        for key, value in params.items():
            if key not in ("host", "hostaddr", "port"):
                replica.setdefault(key, value)
        for key in ("password", "sslpassword"):
            if replica.get(key):
                secrets = secrets | {str(replica[key])}
        try:
            replicas.append(make_conninfo("", **replica))
        except psycopg.ProgrammingError:
            raise StoreConfigError(f"replicas[{index}]: not a valid PostgreSQL DSN") from None

    port_value = params.get("port")
    return PostgresSettings(
        conninfo=conninfo,
        schema=schema_name,
        host=str(params["host"]) if params.get("host") else None,
        port=int(str(port_value)) if port_value and str(port_value).isdigit() else None,
        database=str(params["dbname"]) if params.get("dbname") else None,
        user=str(params["user"]) if params.get("user") else None,
        min_size=min_size,
        max_size=max_size,
        idle_timeout_s=idle_ms / 1000,
        connect_timeout_s=connect_ms / 1000,
        secrets=secrets,
        pooler=pooler,
        session_settings=tuple(settings),
        lock_lease_s=lease_ms / 1000,
        replicas=tuple(replicas),
    )


# --------------------------------------------------------------------------- log scrubbing

_live_secrets: dict[str, int] = {}
_secrets_lock = threading.Lock()


def register_secrets(secrets: frozenset[str]) -> None:
    """Scrub ``secrets`` from psycopg's log records while a store uses them."""
    if not secrets:
        return
    _install_filter()
    with _secrets_lock:
        for secret in secrets:
            _live_secrets[secret] = _live_secrets.get(secret, 0) + 1


def unregister_secrets(secrets: frozenset[str]) -> None:
    """Undo one :func:`register_secrets`."""
    with _secrets_lock:
        for secret in secrets:
            left = _live_secrets.get(secret, 0) - 1
            if left > 0:
                _live_secrets[secret] = left
            else:
                _live_secrets.pop(secret, None)


class _ScrubFilter(logging.Filter):
    """Rewrite psycopg / psycopg.pool records so no password survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _secrets_lock:
            secrets = frozenset(_live_secrets)
        try:
            message = record.getMessage()
        except Exception:  # a broken record: leave it to the logging module
            return True
        record.msg = scrub_text(message, secrets)
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = scrub_text(formatter.formatException(record.exc_info), secrets)
            record.exc_info = None
        return True


_filter_installed = False


def _install_filter() -> None:
    global _filter_installed
    if _filter_installed:
        return
    scrubber = _ScrubFilter()
    for name in ("psycopg", "psycopg.pool"):
        logging.getLogger(name).addFilter(scrubber)
    _filter_installed = True
