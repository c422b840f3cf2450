"""Optional dependencies, installed as extras, and the one-line hint when one
is missing.

The core install (``pip install kode-sdk``) is what the SQLite and JSON stores,
the records and the ``kode`` command need. Each optional feature names its
extra; importing it without that extra raises
:class:`~kode_sdk.errors.MissingExtraError` saying what to install, instead of
a ``ModuleNotFoundError`` traceback.

>>> psycopg = import_extra("psycopg", "postgres")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["EXTRAS", "import_extra", "missing_extra"]

# extra -> what it enables (for the message)
EXTRAS = {
    "postgres": "the PostgreSQL store (psycopg and psycopg_pool)",
    "server": "kode serve and the HTTP API (starlette, uvicorn, jinja2)",
    "anthropic": "the Anthropic provider",
    "openai": "the OpenAI provider",
}


def missing_extra(extra: str, exc: ImportError) -> MissingExtraError:
    """The error to raise when importing ``extra``'s dependency failed with ``exc``."""
    what = EXTRAS.get(extra, f"the {extra!r} feature")
    missing = exc.name or "a dependency"
    return MissingExtraError(f"{what} needs the '{extra}' extra: pip install 'kode-sdk[{extra}]' ({missing} missing)")


def import_extra(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(extra, exc) from None
