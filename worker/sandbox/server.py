"""The aiohttp application: HTTP-level checks, auth, `_method`, body parsing, then the gate.

One catch-all route, so unknown paths and methods get Marketo's 610/605 envelopes.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from multidict import MultiDict, MultiMapping

from worker.sandbox import admin, bulk_import, multipart, store
from worker.sandbox.bulk_export import BulkExports, ExportConfig
from worker.sandbox.bulk_import import BulkImports
from worker.sandbox.endpoints import build_router
from worker.sandbox.envelope import ApiError, Reply, failure, http_error, request_id
from worker.sandbox.faults import Faults
from worker.sandbox.gate import Gate, LimitConfig
from worker.sandbox.identity import ApiUser, Services, TokenBook, token_headers, token_reply
from worker.sandbox.params import Call
from worker.sandbox.routes import Body, Route

MAX_BODY_BYTES = 1024 * 1024
MAX_LEAD_DB_URI = 8 * 1024
MAX_ASSET_URI = 65 * 1024
IDENTITY_PATH = "/identity/oauth/token"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the command line configures."""

    client_id: str
    client_secret: str
    token_ttl_s: float = 3600.0
    strict_auth: bool = False
    folders: tuple[str, ...] = ("Audiences",)
    state_file: Path | None = None
    limits: LimitConfig = field(default_factory=LimitConfig)
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    bulk_rows_per_s: float = bulk_import.DEFAULT_ROWS_PER_S  # bulk import's only setting
    bulk_export: ExportConfig = field(default_factory=ExportConfig)
    api_users: tuple[ApiUser, ...] = ()  # other custom services (other integrations)


def _send(reply: Reply, extra: dict[str, str] | None = None) -> web.Response:
    headers = {"Content-Type": reply.content_type, "Server": "nginx", **dict(reply.headers)}
    if extra:
        headers.update(extra)
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _raise(error: ApiError) -> Reply:
    raise error


class Sandbox:
    """One simulated Marketo instance."""

    def __init__(
        self,
        config: SandboxConfig,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
        now_s = wall_clock()
        path = config.state_file
        self.store = (
            store.load(path, config.folders, now_s)
            if path is not None
            else store.new_store(config.folders, now_s)
        )
        ttl_s = config.token_ttl_s
        books = [TokenBook(config.client_id, config.client_secret, ttl_s)]
        for other in config.api_users:
            books.append(TokenBook(other.client_id, other.client_secret, ttl_s, other.user_id))
        self.tokens = Services(books)
        self.gate = Gate(config.limits, config.faults, config.seed)
        self.bulk_imports = BulkImports(self.store, clock, config.bulk_rows_per_s)
        self.bulk_exports = BulkExports(
            config.bulk_export, self.store, config.limits.quota_day, clock, wall_clock
        )
        self.router = build_router(
            self.store, self.gate.usage, self.bulk_imports, self.bulk_exports
        )

    def catch_up(self) -> None:
        """Bring the bulk jobs to the present, so every answer sees their progress.

        Exports first: a job that started since the last call snapshots the lists as that call
        left them, never with rows an import only reaches now.
        """
        self.bulk_exports.advance()
        self.bulk_imports.advance(self.clock(), self.wall_clock())

    def save(self) -> None:
        """Write the state file, if one is configured."""
        if self.config.state_file is not None:
            self.catch_up()
            store.save(self.store, self.config.state_file)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer any request."""
        path = request.path
        self.catch_up()
        if path.startswith("/_sandbox/"):
            return await admin.handle(self, request)
        asset = path.startswith("/rest/asset/")
        too_long = len(request.raw_path) > (MAX_ASSET_URI if asset else MAX_LEAD_DB_URI)
        if too_long and path.startswith("/rest/"):
            return self._http_error(414, "Request-URI Too Large")
        # Bulk import takes a file "less than 10 MB"; everything else 1 MB.
        limit = bulk_import.MAX_BODY_BYTES - 1 if path == bulk_import.PATH else MAX_BODY_BYTES
        if (request.content_length or 0) > limit:
            return self._http_error(413, "Request Entity Too Large")
        body = await request.read() if request.body_exists else b""
        if len(body) > limit:
            return self._http_error(413, "Request Entity Too Large")
        if path == IDENTITY_PATH:
            return self._identity(request, body)
        return _send(await self._api(request, body, asset))

    def _http_error(self, status: int, reason: str) -> web.Response:
        reply = http_error(status, reason)
        self.gate.stats.record("http", reply.code)
        return _send(reply)

    def _identity(self, request: web.Request, body: bytes) -> web.Response:
        params = _params(request, body)
        if request.method not in {"GET", "POST"}:
            return self._http_error(405, "Method Not Allowed")
        reply = token_reply(self.tokens, params, self.clock())
        self.gate.stats.record("identity", reply.code)
        return _send(reply, dict(token_headers()) if reply.status == 200 else None)

    async def _api(self, request: web.Request, body: bytes, asset: bool) -> Reply:
        times = (self.clock(), self.wall_clock())
        rid = request_id(times[1])
        params = _params(request, body)
        route: Route | None = None
        path_id, problem = 0, None
        try:
            method = _method(request, params, asset)
            route, path_id = self.router.resolve(method, request.path)
        except ApiError as error:
            problem = error
        name = "unknown" if route is None else route.name
        try:
            user = self._authenticate(request, params, times[0])
        except ApiError as error:
            return self.gate.finish(name, failure(rid, error, asset=asset), times)
        call = Call(rid, params, None, path_id, times[1], request.headers)
        if problem is not None or route is None:
            work = partial(_raise, problem or ApiError("610", "Requested resource not found"))
        else:
            work = partial(_execute, route, call, body)
        return await self.gate.run(name, asset, rid, times, work, user)

    def _authenticate(self, request: web.Request, params: MultiMapping[str], now_s: float) -> str:
        """The API user whose valid token the request carries; ApiError 601/602 otherwise."""
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        param_token = params.get("access_token")
        if param_token is not None and self.config.strict_auth:
            raise ApiError("601", "Access token in query or body is not accepted; use the header")
        token = token or param_token or ""
        code, user = self.tokens.check(token, now_s) if token else ("601", "")
        if code == "602":
            raise ApiError("602", "Access token expired")
        if code is not None:
            raise ApiError("601", "Access token invalid")
        return user


def _params(request: web.Request, body: bytes) -> MultiMapping[str]:
    """Query parameters, plus form fields when the body is a form (`_method=GET`, Asset API).

    Multipart text fields count too (bulk import's `format`, `listId`, even `access_token`).
    """
    if not body or request.content_type not in {FORM, multipart.MULTIPART}:
        return request.query
    merged = MultiDict(request.query)
    if request.content_type == FORM:
        merged.extend(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return merged
    try:
        merged.extend(multipart.parse(request.headers.get("Content-Type", ""), body).fields())
    except ApiError:
        return request.query  # the route answers 613 when it parses the body itself
    return merged


def _method(request: web.Request, params: MultiMapping[str], asset: bool) -> str:
    override = params.get("_method")
    if override is None:
        return request.method
    # The Asset API stopped honouring _method in 2020 (its URI limit was raised instead).
    if asset or request.method != "POST":
        raise ApiError("605", "_method override is not supported here")
    return override.upper()


def _execute(route: Route, call: Call, body: bytes) -> Reply:
    """Parse the body the route expects (612/609/613) and run the handler."""
    parsed: object = None
    content_type_header = call.headers.get("Content-Type", "")
    content_type = content_type_header.partition(";")[0].strip().lower()
    if route.body is Body.MULTIPART or content_type == multipart.MULTIPART:
        if route.body is not Body.MULTIPART or content_type != multipart.MULTIPART:
            raise ApiError("612", "Invalid Content Type")
        parsed = multipart.parse(content_type_header, body)
    elif body and content_type == FORM:
        if route.body is Body.JSON:
            raise ApiError("612", "Invalid Content Type")
    elif body:
        if content_type != "application/json" or route.body is Body.FORM:
            raise ApiError("612", "Invalid Content Type")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError("609", "Invalid JSON") from exc
    return route.handler(replace(call, body=parsed))


def build_app(sandbox: Sandbox) -> web.Application:
    """The aiohttp application serving `sandbox` on every path."""
    app = web.Application(client_max_size=2 * bulk_import.MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", sandbox.handle)
    return app


def make_runner(app: web.Application) -> web.AppRunner:
    """An AppRunner whose parser accepts URIs past Marketo's limits, so 414 comes from us."""
    # aiohttp refuses request lines over 8190 bytes itself; no access log on the hot path.
    return web.AppRunner(
        app, max_line_size=MAX_ASSET_URI + 4096, max_field_size=16 * 1024, access_log=None
    )
