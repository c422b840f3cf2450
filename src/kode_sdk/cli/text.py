"""Stored text made safe to print on a terminal.

Stored content is model output and tool output: it may hold escape sequences
(clear screen, cursor moves, OSC-8 links, window titles), bidi overrides or
rich markup. Every human-readable CLI output passes stored values through
:func:`inert` (or :func:`cell` for table cells), so they show as visible
``\\x1b``-style escapes and never act on the terminal. ``--json`` output is
JSON-escaped already and stays exactly as stored.

>>> inert("red \\x1b[31m text\\n")
'red \\\\x1b[31m text\\\\n'
"""

from __future__ import annotations

import re

from rich.text import Text

__all__ = ["cell", "inert"]

# C0 and C1 controls, DEL, and the invisible bidi controls that can reorder
# what a terminal shows (the "trojan source" characters).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: object) -> str:
    """``str(value)`` with every control character shown as a visible escape."""
    return _UNSAFE.sub(_escape, str(value))


def cell(value: object) -> Text:
    """A table cell showing ``value`` literally: controls escaped, no markup."""
    return Text(inert(value))
