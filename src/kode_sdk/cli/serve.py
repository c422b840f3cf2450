"""``kode serve``: the read-only HTTP API of :mod:`kode_sdk.server`, run by uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import CliError, State, app


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).", min=0, max=65535)] = 8080,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve /health, /ready, /metrics and read-only JSON queries over HTTP."""
    state: State = ctx.obj
    try:
        import uvicorn

        from ..server import create_app
    except ImportError as exc:
        raise CliError(
            f"kode serve needs the 'server' extra: pip install 'kode-sdk[server]' ({exc.name} missing)"
        ) from None
    store = state.store()
    uvicorn.run(create_app(store), host=host, port=port, log_level=log_level)
