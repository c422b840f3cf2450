"""The ``kode`` command: query, migrate, back up, export, prune and serve agent stores."""

from .app import app, main

__all__ = ["app", "main"]
