"""Fakes for ports, shared by test modules (never stand-ins for Kafka or the sandbox)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs

import orjson
from aiohttp import test_utils, web

from worker.core.ids import LeadId


class RecordingLimiter:
    """An unlimited limiter that records how it was used."""

    def __init__(self) -> None:
        self.slots = 0
        self.rate_limited_codes: list[str] = []
        self.quota_exhausted_calls = 0

    def call(self) -> AbstractAsyncContextManager[None]:
        """Take a slot (always granted)."""
        return self._slot()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.slots += 1
        yield

    def rate_limited(self, code: str) -> None:
        """Record a 606/615."""
        self.rate_limited_codes.append(code)

    def quota_exhausted(self) -> None:
        """Record a 607."""
        self.quota_exhausted_calls += 1


@dataclass(frozen=True)
class Result:
    """One record's outcome in a Marketo answer, as fakes of the list writer give it."""

    status: str
    lead_id: LeadId | None = None
    reasons: tuple[tuple[str, str], ...] = ()


# --- Marketo over HTTP: a scripted fake server, for the client's and the transport's unit tests
# (the sandbox stands in for a faithful Marketo; this fake answers only what a test scripts).

IDENTITY = "/identity/oauth/token"
Reply = tuple[int, bytes]  # HTTP status (0: never answer within the client's timeout) and body


def ok(result: list[object], **extra: object) -> Reply:
    """A Lead DB success body."""
    return 200, orjson.dumps({"requestId": "1#2", "result": result, "success": True, **extra})


def fail(code: str) -> Reply:
    """A request-level failure body."""
    errors = [{"code": code, "message": "scripted"}]
    return 200, orjson.dumps({"requestId": "1#2", "success": False, "errors": errors})


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeMarketo:
    """A scripted fake of Marketo for unit tests: per-path reply queues, tokens from a list."""

    tokens: list[tuple[str, int]] = field(default_factory=lambda: [("tok-1", 3600)])
    identity_status: int = 200
    scripts: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    hang: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, path: str, *replies: Reply) -> None:
        """Queue replies for `path`; when the queue is empty the fake answers an empty success."""
        self.scripts.setdefault(path, []).extend(replies)

    def calls(self, path: str) -> list[Seen]:
        """The requests seen on `path`."""
        return [s for s in self.seen if s.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        """Answer from the script."""
        body = await request.read()
        query = parse_qs(request.query_string, keep_blank_values=True)
        self.seen.append(Seen(request.method, request.path, query, dict(request.headers), body))
        if request.path == IDENTITY:
            return self._token()
        queue = self.scripts.get(request.path)
        status, payload = queue.pop(0) if queue else ok([])
        if status == 0:
            await self.hang.wait()  # never answers within the client's timeout
        return web.Response(status=status or 200, body=payload, content_type="application/json")

    def _token(self) -> web.Response:
        if self.identity_status != 200:
            body = b'{"error":"invalid_client","error_description":"Bad client credentials"}'
            return web.Response(status=self.identity_status, body=body)
        token, expires_in = self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]
        reply = {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        return web.json_response(reply)


class ServeMarketo(Protocol):
    """The `serve_marketo` fixture: serve a fake on 127.0.0.1 (over TLS with `tls`), get its URL."""

    async def __call__(self, fake: FakeMarketo, tls: ssl.SSLContext | None = None) -> str: ...


@asynccontextmanager
async def marketo_servers() -> AsyncIterator[ServeMarketo]:
    """Serve fakes until the block ends; then release their hung replies and stop the servers."""
    served: list[tuple[FakeMarketo, test_utils.TestServer]] = []

    async def serve(fake: FakeMarketo, tls: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        server = test_utils.TestServer(app, host="127.0.0.1")
        await server.start_server(ssl=tls)
        served.append((fake, server))
        return str(server.make_url("")).rstrip("/")

    try:
        yield serve
    finally:
        for fake, server in served:
            fake.hang.set()
            await server.close()
