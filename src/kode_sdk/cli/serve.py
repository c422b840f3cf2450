"""``kode serve``: the read-only HTTP API of :mod:`kode_sdk.server`, run by uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from .app import CliError, State, UsageError, app


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
    """Serve the session browser at /, /health, /ready, /metrics and read-only JSON queries over HTTP."""
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
    store = state.store()
    config = uvicorn.Config(create_app(store, token=token), host=host, port=port, log_level=log_level)
    # uvicorn configures its loggers when the Config is built; the filter goes on after that.
    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())
    uvicorn.Server(config).run()
