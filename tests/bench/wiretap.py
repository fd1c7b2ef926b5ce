"""A recording reverse proxy between the workers and the sandbox: when each call ended, and how.

The sandbox's own stats have counts but no times; latency, drain time and budget use need the
moment each list call was acknowledged, with its lead ids. Runs on its own thread and loop.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp
import orjson
from aiohttp import web

_LIST = re.compile(r"^/rest/v1/lists/(\d+)/leads\.json$")
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class Call:
    """One proxied API call: kind is sync_leads, add_to_list, remove_from_list or other."""

    kind: str
    started_s: float  # wall clock
    ended_s: float
    code: str  # "ok", a Marketo error code, or "http<status>"
    list_id: int | None
    ids: tuple[int, ...]  # lead ids the answer reports done (added, removed, created, updated)
    records: int
    counted: bool  # a REST call the sandbox's window counts (the identity endpoint is not)
    path: str = ""  # the request's path (bulk calls are told apart by it)
    status: str = ""  # a bulk answer's `result[0].status` (Queued, Importing, Complete, ...)


def _kind(method: str, path: str, query: str) -> tuple[str, int | None]:
    match = _LIST.match(path)
    if path == "/rest/v1/leads.json" and method == "POST":
        return "sync_leads", None
    if match and method == "POST":
        removing = "_method=DELETE" in query
        return ("remove_from_list" if removing else "add_to_list"), int(match.group(1))
    if match and method == "DELETE":
        return "remove_from_list", int(match.group(1))
    return "other", None


def _outcome(status: int, body: bytes) -> tuple[str, tuple[int, ...], int]:
    if status != 200:
        return f"http{status}", (), 0
    try:
        reply = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "unparsed", (), 0
    if not isinstance(reply, dict) or not reply.get("success", False):
        errors = reply.get("errors") if isinstance(reply, dict) else None
        code = str(errors[0].get("code")) if errors else "failed"
        return code, (), 0
    rows = reply.get("result") or []
    done = tuple(
        int(row["id"])
        for row in rows
        if isinstance(row, dict) and row.get("status") in {"added", "removed", "created", "updated"}
    )
    return "ok", done, len(rows)


def _bulk_status(path: str, body: bytes) -> str:
    """A bulk JSON answer's job status ("" for any other call or answer)."""
    if not path.startswith("/bulk/") or not body.startswith(b"{"):
        return ""
    try:
        rows = orjson.loads(body).get("result") or [{}]
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    first = rows[0] if isinstance(rows[0], dict) else {}
    return str(first.get("status", ""))


class Wiretap:
    """`with Wiretap(sandbox_url) as tap:` point workers at `tap.url`; read `tap.calls()`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.url = ""
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> Self:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(15)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._loop.close()

    def calls(self) -> list[Call]:
        """Every call answered so far, in the order the answers came."""
        with self._lock:
            return list(self._calls)

    async def _start(self) -> int:
        connector = aiohttp.TCPConnector(limit=0)
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        started = time.time()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        url = self.upstream + request.path_qs
        async with self._session.request(
            request.method, url, data=body, headers=headers, allow_redirects=False
        ) as answer:
            payload = await answer.read()
            status, content_type = answer.status, answer.headers.get("Content-Type")
        ended = time.time()
        kind, list_id = _kind(request.method, request.path, request.query_string)
        if kind != "other":
            code, ids, records = _outcome(status, payload)
        else:
            code, ids, records = ("ok" if status == 200 else f"http{status}"), (), 0
        with self._lock:
            counted = request.path.startswith("/rest/")
            self._calls.append(
                Call(
                    *(kind, started, ended, code, list_id, ids, records, counted),
                    request.path,
                    _bulk_status(request.path, payload),
                )
            )
        response = web.Response(status=status, body=payload)
        if content_type:
            response.headers["Content-Type"] = content_type
        return response
