"""``kode serve``: the read-only HTTP API of :mod:`kode_sdk.server`, run by uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from ..errors import StoreConfigError
from ..store.factory import create_store
from .app import CliError, State, UsageError, app, run_async


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).", min=0, max=65535)] = 8080,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Every request must carry this token (required when --host is not a loopback address).",
            envvar="KODE_SERVE_TOKEN",
            show_envvar=True,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the session browser at /, /health, /ready, /metrics and read-only JSON queries over HTTP.

    Starts even when the database is unreachable: /health and /ready answer
    503 until it can be opened. A store that does not exist is an error (exit 2).
    """
    state: State = ctx.obj
    try:
        import uvicorn

        from ..server import create_app
        from ..web import RedactTokenFilter, check_bind
    except ImportError as exc:
        raise CliError(
            f"kode serve needs the 'server' extra: pip install 'kode-sdk[server]' ({exc.name} missing)"
        ) from None
    if token:
        state.secrets.append(token)
    try:
        check_bind(host, token)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    config = state.config()
    if str(config.get("type", "sqlite")).lower() != "postgres":
        # A missing file or folder is a typo to report now, not a database to wait for.
        run_async(ctx, lambda: _check_exists(config))
    # An unreachable database is not fatal: the app answers 503 until it opens.
    app_ = create_app(create_store({**config, "create": False}), token=token)
    server_config = uvicorn.Config(app_, host=host, port=port, log_level=log_level)
    # uvicorn configures its loggers when the Config is built; the filter goes on after that.
    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())
    uvicorn.Server(server_config).run()


async def _check_exists(config: dict[str, Any]) -> None:
    probe = create_store({**config, "create": False})
    try:
        await probe.open()
    except StoreConfigError:
        raise
    except Exception:  # unreachable, locked, …: the server retries; only a missing store is fatal here
        pass
    finally:
        await probe.close()
