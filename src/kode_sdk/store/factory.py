"""Build a store from a config dict or from the environment.

>>> store = create_store({"type": "json", "base_dir": "./data/store"})   # no I/O yet
>>> store = await create_extended_store()            # doctest: +SKIP  (SQLite at ./data/agents.db)

Environment (read only when no config is given):

==========================  =====================================================
``KODE_STORE_TYPE``         ``sqlite`` (default), ``postgres`` or ``json``; any case
``KODE_SQLITE_PATH``        SQLite file, default ``./data/agents.db``
``KODE_STORE_PATH``         JSON store directory / ``file_store_base_dir``, default ``./data/store``
``KODE_DATABASE_URL``       PostgreSQL DSN; wins over the ``POSTGRES_*`` parts
``POSTGRES_HOST`` …         ``POSTGRES_HOST``, ``POSTGRES_PORT``, ``POSTGRES_DB``,
                            ``POSTGRES_USER``, ``POSTGRES_PASSWORD``
``KODE_POSTGRES_SCHEMA``    PostgreSQL schema to keep the tables in (default ``public``)
``KODE_POSTGRES_POOLER``    ``transaction`` behind PgBouncer in transaction mode (read by PostgresStore
                            itself, so it applies to explicit DSNs and configs too)
``KODE_POSTGRES_REPLICAS``  comma-separated DSNs of read replicas (likewise)
==========================  =====================================================

A bad value raises :class:`~kode_sdk.errors.StoreConfigError` naming the key or
variable; a password is never part of the message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import StoreConfigError

if TYPE_CHECKING:
    from .protocols import ExtendedStore, Store

__all__ = ["config_from_env", "create_extended_store", "create_store", "postgres_connection"]

DEFAULT_SQLITE_PATH = "./data/agents.db"
DEFAULT_STORE_PATH = "./data/store"
STORE_TYPES = ("sqlite", "postgres", "json")

_CONNECTION_INT_KEYS = ("port", "max", "idle_timeout_ms", "connection_timeout_ms")
_CONNECTION_STR_KEYS = ("host", "database", "user", "password")


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The store config the environment describes (see the module docs).

    >>> config_from_env({"KODE_STORE_TYPE": "SQLite", "KODE_SQLITE_PATH": "/tmp/a.db"})["db_path"]
    '/tmp/a.db'
    """
    env = os.environ if environ is None else environ
    raw_type = env.get("KODE_STORE_TYPE", "").strip() or "sqlite"
    store_type = raw_type.lower()
    if store_type not in STORE_TYPES:
        raise StoreConfigError(f"KODE_STORE_TYPE must be one of sqlite, postgres, json; got {raw_type!r}")
    store_path = env.get("KODE_STORE_PATH") or DEFAULT_STORE_PATH
    if store_type == "json":
        return {"type": "json", "base_dir": store_path}
    if store_type == "sqlite":
        return {
            "type": "sqlite",
            "db_path": env.get("KODE_SQLITE_PATH") or DEFAULT_SQLITE_PATH,
            "file_store_base_dir": env.get("KODE_STORE_PATH") or None,
        }
    config: dict[str, Any] = {"type": "postgres", "file_store_base_dir": env.get("KODE_STORE_PATH") or None}
    if env.get("KODE_POSTGRES_SCHEMA"):
        config["schema"] = env["KODE_POSTGRES_SCHEMA"]
    dsn = env.get("KODE_DATABASE_URL")
    if dsn:
        config["dsn"] = dsn
        return config
    connection: dict[str, Any] = {}
    for variable, key in (
        ("POSTGRES_HOST", "host"),
        ("POSTGRES_DB", "database"),
        ("POSTGRES_USER", "user"),
        ("POSTGRES_PASSWORD", "password"),
    ):
        if env.get(variable):
            connection[key] = env[variable]
    if env.get("POSTGRES_PORT"):
        connection["port"] = _port(env["POSTGRES_PORT"], "POSTGRES_PORT")
    if not connection.get("host"):
        raise StoreConfigError("KODE_STORE_TYPE is postgres but neither KODE_DATABASE_URL nor POSTGRES_HOST is set")
    config["connection"] = connection
    return config


def _port(value: Any, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise StoreConfigError(f"{name} must be a port number (1-65535); got {value!r}") from None
    if not 1 <= port <= 65535:
        raise StoreConfigError(f"{name} must be a port number (1-65535); got {port}")
    return port


def _path(config: Mapping[str, Any], key: str, *, required: bool, default: str | None = None) -> str | None:
    value = config.get(key, default)
    if value is None:
        if required:
            raise StoreConfigError(f"store config: {key!r} is required")
        return None
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise StoreConfigError(f"store config: {key!r} must be a non-empty path; got {type(value).__name__}")
    return str(Path(value))


def postgres_connection(config: Mapping[str, Any]) -> tuple[dict[str, Any] | str, str | None]:
    """The ``dsn`` (or ``connection`` dict) and ``schema`` of a ``postgres``
    store config, checked: the one reading of those keys (the store, backup).

    >>> postgres_connection({"type": "postgres", "dsn": "postgresql://localhost/app"})
    ('postgresql://localhost/app', None)
    """
    if config.get("dsn") is not None and config.get("connection") is not None:
        raise StoreConfigError("store config: give either 'dsn' or 'connection', not both")
    connection = config.get("dsn") if config.get("dsn") is not None else config.get("connection")
    if connection is None:
        raise StoreConfigError("store config: postgres needs 'dsn' or 'connection'")
    schema = config.get("schema")
    if schema is not None and not isinstance(schema, str):
        raise StoreConfigError("store config: 'schema' must be a string")
    return _check_connection(connection), schema


def _check_connection(connection: Any) -> dict[str, Any] | str:
    if isinstance(connection, str):
        if not connection.strip():
            raise StoreConfigError("store config: 'connection' DSN is empty")
        return connection
    if not isinstance(connection, Mapping):
        raise StoreConfigError(
            f"store config: 'connection' must be a dict of parts or a DSN string; got {type(connection).__name__}"
        )
    checked = dict(connection)
    for key in _CONNECTION_INT_KEYS:
        if key in checked and checked[key] is not None:
            if key == "port":
                checked[key] = _port(checked[key], "connection.port")
            elif isinstance(checked[key], bool) or not isinstance(checked[key], int) or checked[key] < 0:
                raise StoreConfigError(f"store config: connection.{key} must be a non-negative int")
    for key in _CONNECTION_STR_KEYS:
        if key in checked and checked[key] is not None and not isinstance(checked[key], str):
            # Never echo the value: it may be the password.
            raise StoreConfigError(f"store config: connection.{key} must be a string")
    return checked


def create_store(config: Mapping[str, Any] | None = None) -> Store:
    """Build an unopened store of any backend (no I/O happens here).

    ``config`` is a dict with ``type`` (``sqlite``, ``postgres`` or ``json``)
    and that backend's keys; ``None`` reads the environment.

    ``create`` (any backend, default ``True``): whether :meth:`open` may
    create a missing SQLite file or JSON directory (and their parent
    folders), or create the kode tables in a PostgreSQL schema that has none.
    ``False`` makes a missing store a :class:`~kode_sdk.errors.StoreConfigError`:
    what read-only tools want, so a typo never leaves a new empty store
    behind. PostgreSQL never creates a database (a missing one is a
    connection error).

    >>> store = create_store({"type": "sqlite", "db_path": "./data/agents.db"})
    >>> type(store).__name__
    'SqliteStore'
    """
    if config is None:
        config = config_from_env()
    if not isinstance(config, Mapping):
        raise StoreConfigError(f"store config must be a dict; got {type(config).__name__}")
    raw_type = config.get("type", "sqlite")
    store_type = raw_type.lower() if isinstance(raw_type, str) else raw_type
    create = config.get("create", True)
    if not isinstance(create, bool):
        raise StoreConfigError(f"store config: 'create' must be true or false; got {type(create).__name__}")
    if store_type == "json":
        from .json_store import JSONStore

        base_dir = cast(str, _path(config, "base_dir", required=False, default=DEFAULT_STORE_PATH))
        return cast("Store", JSONStore(base_dir, create=create))
    if store_type == "sqlite":
        from .sqlite import SqliteStore

        return cast(
            "Store",
            SqliteStore(
                cast(str, _path(config, "db_path", required=False, default=DEFAULT_SQLITE_PATH)),
                file_store_base_dir=_path(config, "file_store_base_dir", required=False),
                create=create,
            ),
        )
    if store_type == "postgres":
        from .postgres import PostgresStore

        connection, schema = postgres_connection(config)
        return cast(
            "Store",
            PostgresStore(
                connection,
                file_store_base_dir=_path(config, "file_store_base_dir", required=False),
                schema=schema,
                create=create,
            ),
        )
    raise StoreConfigError(f"store config: 'type' must be one of sqlite, postgres, json; got {raw_type!r}")


async def create_extended_store(config: Mapping[str, Any] | None = None) -> ExtendedStore:
    """Build and open a store with the full ExtendedStore API (SQLite or PostgreSQL).

    ``None`` reads the environment (SQLite at ``./data/agents.db`` when nothing
    is set). ``{"type": "json"}`` is refused: JSONStore has no health check,
    metrics or ``batch_fork`` (it does have agent locks).

    >>> store = await create_extended_store({"type": "sqlite", "db_path": "./data/agents.db"})  # doctest: +SKIP
    """
    if config is None:
        config = config_from_env()
    raw_type = config.get("type", "sqlite") if isinstance(config, Mapping) else None
    if isinstance(raw_type, str) and raw_type.lower() == "json":
        raise StoreConfigError(
            "create_extended_store: the json backend is not an ExtendedStore; use 'sqlite' or 'postgres' "
            "(or create_store for a plain Store)"
        )
    store = create_store(config)
    await store.open()
    return cast("ExtendedStore", store)
