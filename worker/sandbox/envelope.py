"""The Marketo response envelope: requestId, date formats, success and error bodies.

Lead Database and Asset API bodies differ (docs/marketo-facts.md); only this module knows how.
"""

import itertools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
# Real requestIds are "<short hex>#<hex unix ms>" (recordings); the prefix is a counter here.
_request_counter = itertools.count(random.randrange(0x1000, 0xFFFF))


class ApiError(Exception):
    """A request-level Marketo error: HTTP 200, `success: false`, one `errors[]` entry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished HTTP answer; `code` is "ok", a Marketo error code or "http<status>" for stats."""

    status: int
    body: bytes
    code: str
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()  # beyond Content-Type (`Content-Range`)


def request_id(now_s: float) -> str:
    """Return a requestId in the recorded `1568#178b202751a` shape."""
    return f"{next(_request_counter):x}#{int(now_s * 1000):x}"


def lead_db_date(epoch_s: float) -> str:
    """Format a Lead Database datetime: `2021-04-08T15:03:32Z`."""
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def asset_date(epoch_s: float) -> str:
    """Format an Asset API datetime, with its odd suffix: `2020-08-28T23:42:22Z+0000`."""
    return datetime.fromtimestamp(int(epoch_s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ+0000")


def lead_db_ok(rid: str, result: list[object], **extra: object) -> Reply:
    """Lead Database success: `errors` and `warnings` are omitted, as live responses do."""
    payload: dict[str, object] = {"requestId": rid, "result": result, "success": True}
    payload.update(extra)
    return Reply(200, orjson.dumps(payload), "ok")


def asset_ok(rid: str, result: list[object] | None, warnings: tuple[str, ...] = ()) -> Reply:
    """Asset success: `errors: []`, string warnings, and no `result` key when nothing was found."""
    payload: dict[str, object] = {
        "success": True,
        "errors": [],
        "requestId": rid,
        "warnings": list(warnings),
    }
    if result is not None:
        payload["result"] = result
    return Reply(200, orjson.dumps(payload), "ok")


def failure(rid: str, error: ApiError, *, asset: bool) -> Reply:
    """Request-level failure: HTTP 200, `success: false`, the code as a quoted string."""
    errors = [{"code": error.code, "message": error.message}]
    payload: dict[str, object]
    if asset:
        payload = {"success": False, "errors": errors, "requestId": rid, "warnings": []}
    else:
        payload = {"requestId": rid, "success": False, "errors": errors}
    return Reply(200, orjson.dumps(payload), error.code)


def http_error(status: int, reason: str) -> Reply:
    """An HTTP-level error with the non-JSON body a gateway would send (413, 414, 500, 502)."""
    body = f"<html><head><title>{status} {reason}</title></head><body>{reason}</body></html>"
    return Reply(status, body.encode(), f"http{status}", "text/html")
