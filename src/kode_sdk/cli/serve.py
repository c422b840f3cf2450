"""``kode serve``: the read-only HTTP API of :mod:`kode_sdk.server`, run by uvicorn."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..errors import StoreConfigError
from ..store.factory import create_store
from .app import CliError, State, app, run_async


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0: any free port).", min=0, max=65535)] = 8080,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
) -> None:
    """Serve /health, /ready, /metrics and read-only JSON queries over HTTP.

    Starts even when the database is unreachable: /health and /ready answer
    503 until it can be opened. A store that does not exist is an error (exit 2).
    """
    state: State = ctx.obj
    try:
        import uvicorn

        from ..server import create_app
    except ImportError as exc:
        raise CliError(
            f"kode serve needs the 'server' extra: pip install 'kode-sdk[server]' ({exc.name} missing)"
        ) from None
    config = state.config()
    if str(config.get("type", "sqlite")).lower() != "postgres":
        # A missing file or folder is a typo to report now, not a database to wait for.
        run_async(ctx, lambda: _check_exists(config))
    # An unreachable database is not fatal: the app answers 503 until it opens.
    uvicorn.run(create_app(create_store({**config, "create": False})), host=host, port=port, log_level=log_level)


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
