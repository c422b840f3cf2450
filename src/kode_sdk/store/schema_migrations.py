"""The schema-migration rules shared by the SQL backends.

One place decides which migration files exist and which of them a database
still needs; each backend only executes a migration's SQL and records it in its
own version table (SQLite ``schema_version``, PostgreSQL ``kode_schema_version``;
the tables stay as they are so existing databases keep upgrading).

The rules:

* Files are ``NNNN_name.sql`` under ``kode_sdk/store/schema/<dialect>/``; any
  other ``.sql`` file there is an error, not silently skipped.
* Numbers start at 1 and never repeat. They are handed out per feature, so one
  may land before a lower one: a migration is applied when its number is not
  yet recorded, not when it is above the highest recorded one.
* A database recording a number above every shipped one was written by a newer
  kode-sdk and is refused before anything is applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from typing import NamedTuple

from ..errors import SchemaVersionError

__all__ = ["Migration", "discover", "pending"]

_FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


class Migration(NamedTuple):
    """One schema migration: ``version`` (the file name's number), the file
    ``name`` and its ``sql`` text. A tuple, so ``version, name, sql = m`` works."""

    version: int
    name: str
    sql: str


def discover(dialect: str) -> list[Migration]:
    """The migrations shipped for ``dialect`` (``"sqlite"`` or ``"postgres"``),
    in version order; raises :class:`SchemaVersionError` on a misnamed file or
    a numbering that does not start at 1 or repeats a number."""
    folder = resources.files("kode_sdk.store.schema").joinpath(dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(name)
        if match is None:
            raise SchemaVersionError(f"{dialect} migration file {name!r} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] != 1):
        raise SchemaVersionError(f"{dialect} migrations must start at 1 and never repeat a number: {versions}")
    return found


def pending(known: list[Migration], applied: Iterable[int], *, database: str) -> list[Migration]:
    """The migrations of ``known`` whose version is not in ``applied``, in order.

    Raises :class:`SchemaVersionError` naming ``database`` when ``applied``
    holds a version above every known one (a newer kode-sdk wrote it)."""
    done = set(applied)
    current = max(done, default=0)
    latest = known[-1].version if known else 0
    if current > latest:
        raise SchemaVersionError(
            f"{database} is at schema version {current}, newer than this kode-sdk knows ({latest});"
            " upgrade kode-sdk to open it"
        )
    return [m for m in known if m.version not in done]
