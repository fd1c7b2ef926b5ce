"""Fixtures for the sandbox conformance suite: in-process sandboxes over real HTTP, fake clocks.

Each test gets its own sandbox on an ephemeral 127.0.0.1 port; time moves only when a test says.
"""

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web

from tests.fakes import FakeClock
from tests.sandbox.spec_quirks import relaxed_definitions
from worker.sandbox.gate import LimitConfig
from worker.sandbox.limits import QuotaDay
from worker.sandbox.server import Sandbox, SandboxConfig, build_app, make_runner

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
# 2026-03-10 12:00:00 America/Chicago (CDT, UTC-5): twelve hours before the quota reset.
WALL_START_S = 1773162000.0
OPENAPI_COPY = Path(__file__).resolve().parent / "openapi"
OPENAPI_SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "marketo" / "openapi"


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, headers and the body (parsed JSON when it is JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


class Api:
    """A client for one in-process sandbox, holding a token after `login()`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        sandbox: Sandbox,
        clocks: tuple[FakeClock, FakeClock],
    ) -> None:
        self.session = session
        self.url = url
        self.sandbox = sandbox
        self.clock, self.wall = clocks  # the sandbox's monotonic and wall clocks
        self.token = ""

    async def login(self) -> str:
        """Get a token from the identity endpoint and use it from now on."""
        answer = await self.identity(CLIENT_ID, CLIENT_SECRET)
        self.token = answer.body["access_token"]
        return self.token

    async def identity(self, client_id: str, secret: str, method: str = "GET") -> Answer:
        """Call the identity endpoint with query parameters."""
        query = {"grant_type": "client_credentials", "client_id": client_id}
        query["client_secret"] = secret
        return await self.call(method, "/identity/oauth/token", params=query, auth=False)

    async def call(self, method: str, path: str, *, auth: bool = True, **kw: Any) -> Answer:
        """Send a request (aiohttp keyword arguments) with the bearer token."""
        headers = dict(kw.pop("headers", {}))
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.request(method, self.url + path, headers=headers, **kw) as r:
            raw = await r.read()
            body: Any = raw.decode(errors="replace")
            if r.content_type == "application/json":
                body = json.loads(raw)
            return Answer(r.status, dict(r.headers), body)

    async def get(self, path: str, **params: Any) -> Answer:
        """GET with query parameters."""
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: object, **params: Any) -> Answer:
        """POST a JSON body."""
        return await self.call("POST", path, json=body, params=params)

    async def form(self, path: str, **fields: str) -> Answer:
        """POST a form body (Asset API writes)."""
        return await self.call("POST", path, data=fields)

    async def sync(self, *records: Mapping[str, object], **options: object) -> list[dict[str, Any]]:
        """Sync leads and return the per-record results."""
        answer = await self.post("/rest/v1/leads.json", {"input": list(records), **options})
        assert answer.body["success"], answer.body
        result: list[dict[str, Any]] = answer.body["result"]
        return result

    async def create_list(self, name: str, folder_id: int = 1001) -> int:
        """Create a static list through the Asset API and return its id."""
        folder = json.dumps({"id": folder_id, "type": "Folder"})
        answer = await self.form("/rest/asset/v1/staticLists.json", name=name, folder=folder)
        assert answer.body["success"], answer.body
        return int(answer.body["result"][0]["id"])


StartSandbox = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_sandbox() -> AsyncIterator[StartSandbox]:
    """A factory: `await start_sandbox(limits=..., faults=...)` starts a sandbox and logs in."""
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(*, login: bool = True, **overrides: Any) -> Api:
        limits = overrides.pop("limits", LimitConfig())
        limits = replace(limits, quota_day=replace(limits.quota_day, origin_s=WALL_START_S))
        config = SandboxConfig(CLIENT_ID, CLIENT_SECRET, limits=limits, **overrides)
        clocks = FakeClock(1000.0), FakeClock(WALL_START_S)
        sandbox = Sandbox(config, *clocks)
        runner = make_runner(build_app(sandbox))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        session = aiohttp.ClientSession()
        cleanups.extend([session.close, runner.cleanup])
        api = Api(session, f"http://127.0.0.1:{runner.addresses[0][1]}", sandbox, clocks)
        if login:
            await api.login()
        return api

    yield start
    for cleanup in cleanups:
        await cleanup()


@pytest.fixture
async def api(start_sandbox: StartSandbox) -> Api:
    """A sandbox with default limits, logged in."""
    return await start_sandbox()


@pytest.fixture
async def unlimited(start_sandbox: StartSandbox) -> Api:
    """A sandbox with every limit off, logged in."""
    off = LimitConfig(calls_per_window=0, concurrency=0, daily_quota=0, quota_day=QuotaDay())
    return await start_sandbox(limits=off)


@cache
def spec(name: str) -> dict[str, Any]:
    """An Adobe Swagger spec: the copy beside the tests, else the shared folder."""
    folder = OPENAPI_COPY if (OPENAPI_COPY / name).exists() else OPENAPI_SHARED
    loaded: dict[str, Any] = json.loads((folder / name).read_text())
    return loaded


def assert_matches_spec(spec_name: str, definition: str, payload: object) -> None:
    """Validate `payload` against a spec definition, allowing only the documented quirks."""
    definitions = relaxed_definitions(spec(spec_name)["definitions"])
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    jsonschema.Draft4Validator(schema).validate(payload)
