"""The ``kode`` typer app: the global options (``--store``, ``--debug``), how a
command gets its store, how results are printed, and how errors become exit codes.

Exit codes scripts can trust:

====  ===========================================================================
0     success
1     operational failure: unhealthy store, agent not found, connection lost,
      migration conflict or mismatch, backup tool missing
2     usage or bad input: unknown option, bad time or agent id, bad store spec
130   interrupted (Ctrl-C)
====  ===========================================================================

Errors print as one line on stderr (``kode: error: …``); ``--debug`` adds the
traceback. Passwords never appear: every message goes through
:func:`kode_sdk.redact.redact` (password-shaped parts and the configured secrets).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from .. import jsoncodec
from ..errors import (
    AgentNotFoundError,
    InvalidAgentIdError,
    KodeError,
    RecordValidationError,
    StoreConfigError,
    StoreConnectionError,
)
from ..ops.dump import plain_json
from ..redact import redact
from ..store.factory import config_from_env, create_store
from ..store.protocols import Store
from .text import inert

__all__ = [
    "CliError",
    "JsonOption",
    "State",
    "UsageError",
    "app",
    "emit_json",
    "emit_jsonl",
    "main",
    "parse_store_spec",
    "run_async",
    "to_json",
]


stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of a table.")]


class CliError(Exception):
    """An operational failure to report as one line (exit 1 unless ``code`` says otherwise)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """Bad input from the command line (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)


@dataclass
class State:
    """What the global options decided, shared by every command."""

    store_spec: str | None = None
    debug: bool = False
    secrets: list[str] = field(default_factory=list)

    def config(self, spec: str | None = None) -> dict[str, Any]:
        """The factory config of ``spec`` (default: ``--store``, else the environment)."""
        spec = spec if spec is not None else self.store_spec
        config = config_from_env() if spec is None else parse_store_spec(spec)
        self.secrets.extend(_secrets_of(config))
        return config

    def store(self, spec: str | None = None, *, create: bool = False) -> Store:
        """An unopened store for ``spec`` (see :meth:`config`). Unless ``create``,
        opening it never creates a missing store (StoreConfigError, exit 2)."""
        return create_store({**self.config(spec), "create": create})


def _secrets_of(config: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    connection = config.get("connection")
    if isinstance(connection, Mapping) and connection.get("password"):
        found.append(str(connection["password"]))
    for dsn in (config.get("dsn"), connection if isinstance(connection, str) else None):
        if isinstance(dsn, str):
            try:
                from psycopg.conninfo import conninfo_to_dict

                password = conninfo_to_dict(dsn).get("password")
            except Exception:
                password = None
            if password:
                found.append(str(password))
    env_password = os.environ.get("POSTGRES_PASSWORD")
    if env_password:
        found.append(env_password)
    return found


def parse_store_spec(spec: str) -> dict[str, Any]:
    """A factory config from ``sqlite:PATH``, ``postgres:DSN`` (or a bare
    ``postgresql://…`` URL) or ``json:DIR``.

    A PostgreSQL URL may carry ``schema=NAME`` among its query parameters; it
    selects the schema the tables live in and is not passed to libpq.

    >>> parse_store_spec("sqlite:./data/agents.db")
    {'type': 'sqlite', 'db_path': './data/agents.db'}
    """
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    kind = kind.lower()
    if kind in ("postgres", "postgresql") and rest.startswith("//"):
        return _postgres_config(text)
    if "=" in kind or (not sep and "=" in text):
        raise StoreConfigError(
            f"store {redact(spec)!r}: a libpq key=value DSN needs the postgres: prefix (postgres:host=… dbname=…)"
        )
    if not sep or not rest:
        raise StoreConfigError(f"store {redact(spec)!r}: expected sqlite:PATH, postgres:DSN or json:DIR")
    if kind == "sqlite":
        return {"type": "sqlite", "db_path": rest}
    if kind == "json":
        return {"type": "json", "base_dir": rest}
    if kind in ("postgres", "postgresql", "pg"):
        return _postgres_config(rest)
    raise StoreConfigError(
        f"store {redact(spec)!r}: unknown backend {redact(kind)!r} (use sqlite:PATH, postgres:DSN or json:DIR)"
    )


def _postgres_config(dsn: str) -> dict[str, Any]:
    config: dict[str, Any] = {"type": "postgres"}
    if "://" in dsn:
        parts = urlsplit(dsn)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = [v for k, v in query if k == "schema"]
        if schema:
            config["schema"] = schema[-1]
            dsn = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    config["dsn"] = dsn
    schema_env = os.environ.get("KODE_POSTGRES_SCHEMA")
    if "schema" not in config and schema_env:
        config["schema"] = schema_env
    return config


to_json = plain_json


def emit_json(value: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.buffer.write(jsoncodec.encode(to_json(value), check_finite=False) + b"\n")
    sys.stdout.flush()


def emit_jsonl(value: Any) -> None:
    """Print one JSON Lines record on stdout (flushed, for streams)."""
    emit_json(value)


def fail(message: str, code: int = 1, state: State | None = None) -> NoReturn:
    """Print ``kode: error: message`` (secrets redacted, controls escaped) and exit with ``code``."""
    shown = inert(redact(message, state.secrets if state else ()))
    stderr.print(Text("kode: error: ", style="bold red") + Text(shown), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _code_of(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, AgentNotFoundError):
        return 1
    if isinstance(exc, InvalidAgentIdError | RecordValidationError | StoreConfigError):
        return 2
    if isinstance(exc, KodeError):
        return 1
    if isinstance(exc, ValueError):
        return 2
    return 1


def run_async(ctx: typer.Context, fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` on a fresh event loop (errors are reported by the app's group)."""
    return asyncio.run(_call(fn))


def report_error(state: State | None, exc: BaseException) -> NoReturn:
    """Turn ``exc`` into one line on stderr and its exit code."""
    if isinstance(exc, KeyboardInterrupt):
        fail("interrupted", 130, state)
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`kode export | head`): stop quietly, as Unix tools do.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1)
    if state is not None and state.debug:
        sys.stderr.write(redact("".join(traceback.format_exception(exc)), state.secrets))
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, KodeError | CliError | ValueError | OSError):
        message = f"{type(exc).__name__}: {message}"
    cause = _driver_log.last
    if isinstance(exc, StoreConnectionError) and cause:
        message = f"{message} ({cause.removeprefix('error connecting in ').split(': ', 1)[-1]})"
    fail(message, _code_of(exc), state)


class KodeGroup(TyperGroup):
    """The command group: every error a command raises becomes one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (Exception, KeyboardInterrupt) as exc:
            if _is_framework_exception(exc):
                raise  # Exit, Abort and usage errors: the framework reports them (usage: exit 2)
            report_error(ctx.obj if isinstance(ctx.obj, State) else None, exc)


class _LastRecord(logging.Handler):
    """Keeps the driver's last warning instead of printing it: the one error
    line names it (see :func:`report_error`); ``--debug`` shows them all."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.last = record.getMessage().strip().splitlines()[0]


_driver_log = _LastRecord()


def _quiet_driver_logs() -> None:
    # psycopg_pool logs a warning per failed connection attempt while it
    # retries; for a command that is noise before the one error line.
    logger = logging.getLogger("psycopg.pool")
    if _driver_log not in logger.handlers:
        logger.addHandler(_driver_log)
    logger.propagate = False


def _is_framework_exception(exc: BaseException) -> bool:
    # typer vendors click in recent versions and uses click itself in older ones.
    module = type(exc).__module__
    return module.startswith(("click", "typer"))


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def run_with_store(
    ctx: typer.Context, fn: Callable[[Store], Awaitable[T]], spec: str | None = None, *, create: bool = False
) -> T:
    """Open the command's store, run ``fn(store)``, close the store.

    Only commands that write a store they were pointed at pass ``create``:
    every other one fails on a missing store instead of creating it.
    """
    state: State = ctx.obj

    async def go() -> T:
        store = state.store(spec, create=create)
        try:
            await store.open()
            return await fn(store)
        finally:
            await store.close()

    return run_async(ctx, go)


app = typer.Typer(
    name="kode",
    cls=KodeGroup,
    help="Query and operate kode-sdk agent stores (SQLite, PostgreSQL, JSON files).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            "-s",
            help="sqlite:PATH, postgres:DSN or json:DIR (default: the environment, as create_store reads it).",
            envvar="KODE_STORE",
            show_envvar=True,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Query and operate kode-sdk agent stores."""
    ctx.obj = State(store_spec=store, debug=debug)
    if not debug:
        _quiet_driver_logs()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``kode`` command."""
    app(args=argv, prog_name="kode")
