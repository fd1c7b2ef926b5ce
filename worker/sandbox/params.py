"""A parsed API call and the parameter conventions shared by endpoints (lists, ids, paging).

List parameters come repeated or comma-joined (real clients use both); paging tokens are opaque.
"""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from multidict import MultiMapping

from worker.core.marketo_api import MAX_BATCH
from worker.sandbox.envelope import ApiError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One API call after routing: merged query and form parameters, and the JSON body if any."""

    rid: str
    params: MultiMapping[str]
    body: object
    path_id: int
    now_s: float
    headers: Mapping[str, str] = field(default_factory=dict)  # the request's (`Range`)


def values(call: Call, name: str) -> list[str]:
    """A list parameter, given repeated (`id=1&id=2`) or comma-joined (`id=1,2`)."""
    out: list[str] = []
    for raw in call.params.getall(name, ()):
        out.extend(v for v in raw.split(",") if v != "")
    return out


def _int(raw: object, name: str) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return int(raw)
    raise ApiError("1001", f"Invalid value '{raw}'. Required of type 'Integer' for '{name}'")


def body_input(call: Call) -> list[object] | None:
    """The `input` array of a JSON body, or None when there is no JSON body."""
    if not isinstance(call.body, dict):
        return None
    records = call.body.get("input")
    if not isinstance(records, list):
        raise ApiError("1003", "Invalid 'input': an array of records is required")
    return records


def ids(call: Call) -> list[int]:
    """Lead ids from `?id=` or a JSON body `{"input":[{"id":…}]}`; at most 300 per call."""
    records = body_input(call)
    if records is None:
        found = [_int(v, "id") for v in values(call, "id")]
    else:
        found = [_int(r.get("id") if isinstance(r, dict) else r, "id") for r in records]
    if not found:
        raise ApiError("701", "id cannot be blank")
    check_batch(len(found))
    return found


def check_batch(count: int) -> None:
    """Refuse more than 300 items (Marketo's limit; its code is undocumented, 1003 likeliest)."""
    if count > MAX_BATCH:
        raise ApiError("1003", f"Batch size exceeds maximum of {MAX_BATCH} ({count})")


def int_param(call: Call, name: str, default: int, maximum: int) -> int:
    """An integer parameter in 1..maximum (or 0..maximum for `offset`)."""
    raw = call.params.get(name)
    if raw is None or raw == "":
        return default
    value = _int(raw, name)
    if value < (0 if name == "offset" else 1) or value > maximum:
        raise ApiError("1003", f"Invalid value for '{name}': {raw} (maximum {maximum})")
    return value


def page_token(offset: int) -> str:
    """An opaque paging token for the next page (base32, like Marketo's)."""
    return base64.b32encode(f"sandbox:{offset}".encode()).decode().rstrip("=")


def page_offset(call: Call) -> int:
    """The offset a `nextPageToken` parameter points at (0 without one)."""
    token = call.params.get("nextPageToken")
    if not token:
        return 0
    try:
        padded = token + "=" * (-len(token) % 8)
        prefix, _, offset = base64.b32decode(padded).decode().partition(":")
        if prefix != "sandbox":
            raise ValueError(prefix)
        return int(offset)
    except ValueError as exc:
        raise ApiError("1003", f"Invalid nextPageToken: {token}") from exc


def page(items: list[T], call: Call, batch_size: int) -> tuple[list[T], dict[str, object]]:
    """Slice one page and the envelope extras (`nextPageToken` only when more remain)."""
    start = page_offset(call)
    chunk = items[start : start + batch_size]
    end = start + len(chunk)
    extra: dict[str, object] = {}
    if end < len(items):
        extra["nextPageToken"] = page_token(end)
    return chunk, extra
