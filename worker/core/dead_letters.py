"""Dead-letter records that always fit: a record too large for the dead-letter topic is cut.

Pure: no I/O. An input topic may accept records far larger than the worker's producer
(`message.max.bytes`, 1,000,000 bytes by default) or the dead-letter topic
(`max.message.bytes`) does; copying such a record unchanged failed for good, and a worker that
cannot write a dead letter cannot get past its offset. The copy keeps a prefix of the key and
value, with the original sizes and SHA-256 digests in headers, so the record can still be found
and identified in the input topic.
"""

from __future__ import annotations

import hashlib
from typing import Final

Headers = list[tuple[str, str | bytes | None]]

# record and batch framing: a batch header is 61 bytes, a record's own at most 21, and each
# header adds two varints; generous, so a cut record is never refused by a few bytes
FRAMING_BYTES: Final = 1024


def fit(
    key: bytes | None, value: bytes | None, headers: Headers, limit: int
) -> tuple[bytes | None, bytes | None, Headers]:
    """Return the key, value and headers to dead-letter within `limit` bytes in all.

    A record that fits is returned unchanged. Otherwise the value (and the key, when it alone
    takes more than half the room) is cut to a prefix, and headers `truncated: true`,
    `original.size` and `original.sha256` (plus `original.key_size` and `original.key_sha256`
    for a cut key) describe what was cut.
    """
    if _size(key) + _size(value) + _headers_size(headers) + FRAMING_BYTES <= limit:
        return key, value, headers
    cut: Headers = [("truncated", "true"), *_describe("", value)]
    key_cut = _describe("key_", key)  # room is kept for these whether the key is cut or not
    room = max(0, limit - FRAMING_BYTES - _headers_size([*headers, *cut, *key_cut]))
    key_room = min(_size(key), room // 2)  # a key cut only when it takes over half the room
    if key is not None and key_room < len(key):
        cut += key_cut
    return _prefix(key, key_room), _prefix(value, room - key_room), [*headers, *cut]


def _describe(prefix: str, data: bytes | None) -> Headers:
    data = data or b""
    return [
        (f"original.{prefix}size", str(len(data))),
        (f"original.{prefix}sha256", hashlib.sha256(data).hexdigest()),
    ]


def _prefix(data: bytes | None, length: int) -> bytes | None:
    return None if data is None else data[:length]


def _size(data: str | bytes | None) -> int:
    if data is None:
        return 0
    return len(data.encode() if isinstance(data, str) else data)


def _headers_size(headers: Headers) -> int:
    return sum(_size(name) + _size(value) for name, value in headers)
