"""Exact JSON encoding and decoding for everything the stores persist.

orjson is the fast path. It has three gaps the KODE contract does not allow,
each closed here:

* it refuses integers beyond 64 bits, and *parses* them as floats: such values
  are encoded with the standard library and decoded by it too (a number of 20+
  digits in the text routes decoding to ``json``);
* it silently writes NaN and Infinity as ``null``: :func:`check_json` rejects
  them before anything is written;
* lone surrogates are refused by both (they are not Unicode text).

Every failure raises :class:`~kode_sdk.errors.RecordValidationError` naming the
field that held the bad value.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

import orjson

from .errors import RecordValidationError

__all__ = ["check_json", "decode", "dumps", "encode"]

# 19 digits reach below -2**63 and above 2**64 - 1 (orjson's integer range).
# A document holding 19 digits in a row may hold an integer beyond 64 bits.
# Found by mapping every digit to "0" and searching for 19 of them: C code,
# 9x faster than the regex [0-9]{19} on a 1 KB message.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS = b"0" * 19
# Deeper values are refused: the stores copy saved documents recursively (two
# Python frames a level, against a limit of 1,000 frames: 500 levels failed
# with RecursionError), the standard library (the big-int path) recurses per
# level, and SQLite's JSON functions stop at 1,000 levels. 256 leaves room
# for the caller's own stack.
_MAX_DEPTH = 256


def check_json(value: Any, field: str) -> None:
    """Raise :class:`RecordValidationError` unless ``value`` is plain JSON.

    Plain JSON is ``None``, ``bool``, ``int``, finite ``float``, ``str`` (valid
    Unicode), ``list``/``tuple`` and ``dict`` with ``str`` keys, nested at most
    256 levels deep. ``field`` names the value in the error message.
    """
    # An explicit stack instead of recursion: hostile input may nest deeper
    # than Python's recursion limit.
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        if item is None or item is True or item is False:
            continue
        kind = type(item)
        if kind is str:
            if not item.isascii():
                _check_text(item, where)
        elif kind is int:
            continue
        elif kind is float:
            if not math.isfinite(item):
                raise RecordValidationError(
                    f"{where}: {item!r} is not valid JSON (NaN and Infinity are not allowed)",
                    field=where,
                )
        elif kind is dict:
            if depth >= _MAX_DEPTH:
                _too_deep(field, where)
            for key, sub in item.items():
                if type(key) is not str:
                    raise RecordValidationError(f"{where}: object key {key!r} is not a string", field=where)
                if not key.isascii():
                    _check_text(key, where)
                stack.append((sub, f"{where}.{key}", depth + 1))
        elif kind is list or kind is tuple:
            if depth >= _MAX_DEPTH:
                _too_deep(field, where)
            for index, sub in enumerate(item):
                stack.append((sub, f"{where}[{index}]", depth + 1))
        elif isinstance(item, bool | int | float | str | dict | list | tuple):
            # Subclasses (IntEnum, str enums, OrderedDict, ...): check as their base.
            base: Any
            if isinstance(item, bool):
                base = bool(item)
            elif isinstance(item, int):
                base = int(item)
            elif isinstance(item, float):
                base = float(item)
            elif isinstance(item, str):
                base = str(item)
            elif isinstance(item, dict):
                base = dict(item)
            else:
                base = list(item)
            stack.append((base, where, depth))
        else:
            raise RecordValidationError(f"{where}: a value of type {kind.__name__} is not JSON", field=where)


def _too_deep(field: str, where: str) -> NoReturn:
    # The path to the culprit is as long as the nesting; show its two ends only.
    shown = where if len(where) <= 60 else f"{where[:40]}…{where[-15:]}"
    raise RecordValidationError(
        f"{field}: nested deeper than the {_MAX_DEPTH} levels kode-sdk stores (at {shown})",
        field=field,
    )


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordValidationError(
            f"{where}: string holds an unpaired surrogate at index {exc.start}, which is not valid Unicode",
            field=where,
        ) from None


def _has_non_finite(value: Any) -> bool:
    # Only floats matter here, and no paths are built: this runs on the
    # success path of encode() whenever the output holds a null.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def encode(value: Any, field: str = "value", *, sort_keys: bool = False, check_finite: bool = True) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON bytes, exactly; with ``sort_keys``
    object keys are sorted, so equal values give equal bytes (digests, keys).
    ``check_finite=False`` skips the NaN/Infinity walk for values already
    validated (records read back from a store): it costs ~10x orjson itself.

    Integers beyond 64 bits survive. NaN, Infinity, lone surrogates and
    non-JSON types raise :class:`RecordValidationError`. The full
    :func:`check_json` walk runs only where orjson objects or its output holds
    a ``null`` (which is how orjson writes NaN).
    """
    try:
        out = orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else None)
    except orjson.JSONEncodeError:
        pass
    else:
        # orjson writes NaN and Infinity as null. Output without a null cannot
        # hold one; otherwise check (records are checked at validation, but a
        # model mutated in place after validation is not).
        if check_finite and b"null" in out and _has_non_finite(value):
            check_json(value, field)  # raises, naming the place
        return out
    # Slow path: find out what orjson disliked, with a precise message.
    check_json(value, field)
    try:
        return json.dumps(
            value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=sort_keys
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise RecordValidationError(f"{field}: not encodable as JSON: {exc}", field=field) from None


def dumps(value: Any, field: str = "value", *, sort_keys: bool = False) -> str:
    """Like :func:`encode`, returning ``str``."""
    return encode(value, field, sort_keys=sort_keys).decode("utf-8")


def decode(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text written by :func:`encode`, exactly (big integers included)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if _NINETEEN_DIGITS in raw.translate(_DIGITS_AS_ZERO):
        # orjson would turn integers beyond 64 bits into floats.
        return json.loads(raw)
    return orjson.loads(raw)
