"""The ``kode`` command.

Each command is a small function here that imports what it needs when it
runs, so ``kode --help`` stays fast and optional extras stay optional.
"""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="kode",
    help="kode-sdk: persistence for long-running AI agents.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """kode-sdk: persistence for long-running AI agents."""


@app.command()
def demo() -> None:
    """Run several agents on the SQLite store in ./data and show what the query API finds.

    Run it twice: the second run resumes the same agents from the store.
    """
    from ..demo import main as run_demo

    raise typer.Exit(run_demo())


def main() -> None:
    """Entry point of the ``kode`` console script."""
    app()
