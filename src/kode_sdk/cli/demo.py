"""``kode demo``: the main job, the same as ``make demo``."""

from __future__ import annotations

import typer

from .app import app


@app.command()
def demo() -> None:
    """Run several agents on the SQLite store in ./data and show what the query API finds.

    Run it twice: the second run resumes the same agents from the store.
    """
    from ..demo import main as run_demo

    raise typer.Exit(run_demo())
