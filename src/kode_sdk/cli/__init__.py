"""The ``kode`` command: query, migrate, back up, export, prune and serve agent stores.

``app.py`` holds the Typer app and what every command shares; each command
module registers its commands on it when imported here. Importing any
``kode_sdk.cli`` module runs this first, so the commands are always there,
and no module imports the package that imports it (no import cycle).
"""

from . import demo, ops, query, serve  # noqa: F401  (each registers its commands on ``app``)
from .app import app, main

__all__ = ["app", "main"]
