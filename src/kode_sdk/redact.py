"""Redaction of secrets in text meant for people: errors, logs, CLI output.

One helper, used wherever a connection string or a driver message may be
shown: the ``kode`` CLI (every store spec and error it prints) and the
PostgreSQL store's log filter. It needs no database driver.

>>> redact("host=db password=hunter2 dbname=kode")
'host=db password=*** dbname=kode'
>>> redact("postgresql://kode:hunter2@db/kode")
'postgresql://kode:***@db/kode'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact"]

# Shapes a password takes in a libpq key=value DSN or driver text, whatever its value.
_KV_PASSWORD = re.compile(r"((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
# ... and in a URL: scheme://user:PASSWORD@host
_URI_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")
_MIN_LITERAL_SECRET = 4  # shorter secrets would turn every message into asterisks


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every password-shaped part (``password=…``, ``://user:…@``)
    and every literal secret in ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if len(secret) >= _MIN_LITERAL_SECRET and secret in text:
            text = text.replace(secret, "***")
    text = _KV_PASSWORD.sub(r"\1***", text)
    return _URI_PASSWORD.sub(r"\1***\3", text)
