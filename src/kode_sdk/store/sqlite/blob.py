"""How SqliteStore keeps a JSON document in a ``data`` column: plain TEXT when
it is small, a zstd-compressed BLOB when that saves space.

SQLite types values, not columns, so both kinds live in the same column and
``typeof(data)`` tells them apart: databases written before compression
existed are read as they are, never rewritten.

A BLOB is one format byte followed by the payload. Format 1 is a zstd frame
(magicless: the format byte already says what follows) compressed with
:data:`DICTIONARY_V1`, a raw-content dictionary of the JSON that every
message, tool call and event repeats (keys, block types, tool-call states),
so a 1 KB message does not pay for its own field names. The dictionary of a
format can never change once written; a better one would be format 2.

>>> value = pack(b'{"role":"user","content":[{"type":"text","text":"' + b"x" * 300 + b'"}]}')
>>> isinstance(value, bytes), unpack(value)[:16]
(True, b'{"role":"user","')
>>> pack(b'{"role":"user"}'), unpack('{"role":"user"}')
('{"role":"user"}', '{"role":"user"}')
"""

from __future__ import annotations

import threading

import zstandard

from ...errors import StoreCorruptionError

__all__ = ["DICTIONARY_V1", "MIN_PACKED_BYTES", "pack", "unpack"]

# Below this, a document stays TEXT: the frame and format byte would eat most
# of the gain, and small rows (events, todos) stay readable with the sqlite3
# shell. Measured on W4 messages (250-520 bytes): 0.74 of the JSON size, ~6 us each.
MIN_PACKED_BYTES = 128

_FORMAT_ZSTD_V1 = 1

# Frozen: blobs of format 1 can only be decompressed with exactly these bytes.
DICTIONARY_V1 = (
    # A tool-call record (ToolCallRecord.to_wire), then messages: the most
    # common fragments last, where matches are cheapest to reference.
    b'{"id":"toolu_","name":"","input":{},"state":"completed","approval":{"required":true,"decision":"allow",'
    b'"decidedBy":null,"decidedAt":null,"note":null,"meta":null},"result":{"output":"'
    b'"},"error":null,"isError":false,"startedAt":0,"completedAt":0,"durationMs":0,"createdAt":0,"updatedAt":0,'
    b'"auditTrail":[{"state":"pending","timestamp":0,"note":null},{"state":"executing","timestamp":0,"note":null},'
    b'{"state":"completed","timestamp":0,"note":null}]}'
    b'{"type":"image","source":{"type":"base64","media_type":"image/png","data":"'
    b'{"role":"assistant","content":[{"type":"thinking","thinking":"","signature":"'
    b',"metadata":{}}'
    b'{"role":"system","content":[{"type":"text","text":"'
    b'{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_","content":"","is_error":true}]}'
    b'{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_","content":"","is_error":false}]}'
    b'{"role":"assistant","content":[{"type":"text","text":""},{"type":"tool_use","id":"toolu_","name":"'
    b'","input":{"cmd":"'
    b'{"role":"user","content":[{"type":"text","text":"'
)

_PARAMETERS = zstandard.ZstdCompressionParameters.from_level(
    1,  # levels 3-6 measured 0.5-2% smaller on W4 messages and 2-3x slower
    source_size=4096,  # tuned for documents of a few KB (larger ones still compress)
    format=zstandard.FORMAT_ZSTD1_MAGICLESS,
    write_content_size=True,
    write_checksum=False,
    write_dict_id=False,
)
_DICTIONARY = zstandard.ZstdCompressionDict(DICTIONARY_V1, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
# Digested once: without this, every compress() re-loads the dictionary (10x slower).
_DICTIONARY.precompute_compress(compression_params=_PARAMETERS)

# zstandard's (de)compressor objects are not thread-safe: one pair per thread
# (each SqliteStore works on its own worker thread).
_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    try:
        return _local.compressor  # type: ignore[no-any-return]
    except AttributeError:
        _local.compressor = zstandard.ZstdCompressor(dict_data=_DICTIONARY, compression_params=_PARAMETERS)
        return _local.compressor  # type: ignore[no-any-return]


def _decompressor() -> zstandard.ZstdDecompressor:
    try:
        return _local.decompressor  # type: ignore[no-any-return]
    except AttributeError:
        _local.decompressor = zstandard.ZstdDecompressor(dict_data=_DICTIONARY, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
        return _local.decompressor  # type: ignore[no-any-return]


def pack(document: bytes) -> str | bytes:
    """The value to store for ``document`` (UTF-8 JSON): a BLOB when
    compressing saves bytes, otherwise the same JSON as TEXT."""
    if len(document) >= MIN_PACKED_BYTES:
        packed = bytes((_FORMAT_ZSTD_V1,)) + _compressor().compress(document)
        if len(packed) < len(document):
            return packed
    return document.decode("utf-8")


def unpack(value: str | bytes) -> str | bytes:
    """The JSON document stored as ``value`` (TEXT as is, a BLOB decompressed).

    Raises :class:`StoreCorruptionError` for a BLOB this code cannot read."""
    if type(value) is str:
        return value
    if not isinstance(value, bytes) or not value:
        raise StoreCorruptionError(f"a stored JSON document has an unexpected type: {type(value).__name__}")
    if value[0] != _FORMAT_ZSTD_V1:
        raise StoreCorruptionError(f"a stored JSON document has an unknown format byte {value[0]}")
    try:
        return _decompressor().decompress(value[1:])
    except zstandard.ZstdError as exc:
        raise StoreCorruptionError(f"a stored JSON document cannot be decompressed: {exc}") from exc
