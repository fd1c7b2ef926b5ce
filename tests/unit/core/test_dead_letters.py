"""Sizing dead letters: a record too large for the dead-letter topic is cut and described."""

from __future__ import annotations

import hashlib

import pytest

from worker.core.dead_letters import FRAMING_BYTES, Headers, fit

LIMIT = 1_000_000
HEADERS: Headers = [("error.kind", "oversize"), ("source.offset", "7")]


def _size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    named = sum(len(n) + len(v if isinstance(v, bytes) else (v or "").encode()) for n, v in headers)
    return len(key or b"") + len(value or b"") + named + FRAMING_BYTES


def test_record_that_fits_is_unchanged() -> None:
    """A record within the limit keeps its key, value and headers exactly."""
    value = b"x" * 10_000
    assert fit(b"p-1", value, HEADERS, LIMIT) == (b"p-1", value, HEADERS)


@pytest.mark.parametrize("length", [1_020_166, 10 * 1024 * 1024])
def test_large_value_is_cut_to_fit_the_limit(length: int) -> None:
    """Values of 1 MB and 10 MB become a prefix that fits, with the whole key kept."""
    value = bytes(range(256)) * (length // 256) + b"z" * (length % 256)
    key, cut, headers = fit(b"p-1", value, HEADERS, LIMIT)
    assert key == b"p-1"
    assert cut is not None
    assert value.startswith(cut)
    assert _size(key, cut, headers) <= LIMIT
    assert len(cut) > LIMIT - 2 * FRAMING_BYTES  # cut no more than needed


def test_cut_record_names_the_original_size_and_digest() -> None:
    """A cut value carries truncated, original.size and original.sha256 after the reason."""
    value = b"y" * 2_000_000
    _, _, headers = fit(b"p-1", value, HEADERS, LIMIT)
    added = dict(headers[len(HEADERS) :])
    assert headers[: len(HEADERS)] == HEADERS
    assert added == {
        "truncated": "true",
        "original.size": "2000000",
        "original.sha256": hashlib.sha256(value).hexdigest(),
    }


def test_oversized_key_is_cut_too_and_described() -> None:
    """A key larger than half the room is cut to a prefix with its own size and digest."""
    big_key = b"k" * 3_000_000
    key, value, headers = fit(big_key, b"v" * 10, HEADERS, LIMIT)
    assert key is not None
    assert big_key.startswith(key)
    assert value == b"v" * 10
    assert dict(headers)["original.key_size"] == "3000000"
    assert dict(headers)["original.key_sha256"] == hashlib.sha256(big_key).hexdigest()
    assert _size(key, value, headers) <= LIMIT


def test_missing_value_stays_missing_when_the_key_is_cut() -> None:
    """A tombstone with a huge key stays a tombstone: only the key is cut."""
    key, value, headers = fit(b"k" * 2_000_000, None, HEADERS, LIMIT)
    assert value is None
    assert dict(headers)["original.size"] == "0"
    assert _size(key, value, headers) <= LIMIT


def test_limit_smaller_than_the_headers_leaves_an_empty_value() -> None:
    """A limit with no room left for data yields an empty value, never a negative cut."""
    key, value, _ = fit(b"p-1", b"x" * 5_000, HEADERS, 100)
    assert (key, value) == (b"", b"")
