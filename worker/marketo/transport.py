"""Transport: the only importer of aiohttp. One session to one Marketo instance, its access
token, the limiter's slots, local retries of transient errors, and each request's metrics.

Raises worker.errors.MarketoError subclasses on request-level failure; worker/marketo/client.py
and worker/marketo/bulk.py build the requests and read the answers. Most answers are Marketo's
JSON envelope (`send`); the bulk files are not (`fetch_file`). Never logs the secret, the token or
an email.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
import structlog
from pydantic import SecretStr

from worker.core import marketo_api as codes
from worker.errors import (
    CallAbandoned,
    ExportLimited,
    ImportQueueFull,
    MarketoError,
    MarketoUnavailable,
    QuotaExhausted,
    RateLimited,
    RequestRejected,
    TokenExpired,
)
from worker.marketo import responses as rs

T = TypeVar("T")
Endpoint = Literal[
    "sync_leads",
    "add_to_list",
    "remove_from_list",
    "delete_leads",
    "find_leads",
    "list_members",
    "describe",
    "assets",
    "usage",
    "identity",
    # bulk lead import and extract: every one is an HTTP request the budget counts like REST
    "bulk_import",
    "bulk_import_status",
    "bulk_import_failures",
    "bulk_import_warnings",
    "bulk_export_create",
    "bulk_export_enqueue",
    "bulk_export_status",
    "bulk_export_file",
    "bulk_export_cancel",
    "bulk_export_jobs",
]
Query = tuple[tuple[str, str], ...]
Headers = tuple[tuple[str, str], ...]
# status, body and media type (without parameters) -> the value, or raises a MarketoError
Reader = Callable[[int, bytes, str], T]

FORM = "application/x-www-form-urlencoded"
_JSON_MEDIA = "application/json"
_RENEW_BEFORE_S = 60.0  # refresh when less than this remains
_EXPIRY_SLACK_S = 1.0  # expires_in is whole seconds, so the real expiry may be this much later
_MAX_TOKEN_WAIT_S = 60.0
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0
_OUTCOMES: dict[type[MarketoError], str] = {
    TokenExpired: "token_expired",
    RateLimited: "rate_limited",
    QuotaExhausted: "quota_exhausted",
    MarketoUnavailable: "unavailable",
    RequestRejected: "rejected",
    # the bulk queues are full (1016, 1029): the caller waits, nothing is wrong
    ImportQueueFull: "queue_full",
    ExportLimited: "queue_full",
}

_log = structlog.get_logger(__name__)


class Limiter(Protocol):
    """The call budget: one `call()` slot per HTTP request, told about 606/615 and 607."""

    def call(self) -> AbstractAsyncContextManager[None]: ...
    def rate_limited(self, code: str) -> None: ...
    def quota_exhausted(self) -> None: ...


class Observer(Protocol):
    """Metrics hook: `endpoint` is an `Endpoint`; `outcome` is "ok", "error", "abandoned" or in
    `_OUTCOMES`; `duration_s` is the HTTP request's alone (never the wait for a budget slot),
    None when the call was never sent."""

    def request(self, endpoint: str, outcome: str, duration_s: float | None) -> None: ...
    def records(self, endpoint: str, status: str, count: int) -> None: ...


class _NoObserver:
    def request(self, endpoint: str, outcome: str, duration_s: float | None) -> None:
        """Ignore the request."""

    def records(self, endpoint: str, status: str, count: int) -> None:
        """Ignore the records."""


@dataclass(frozen=True, slots=True)
class Request:
    """One logical API call: retried, authorized and counted as a whole."""

    endpoint: Endpoint
    method: str
    path: str
    query: Query = ()
    body: bytes | None = None
    content_type: str | None = None
    # asked before every attempt, once the call holds its budget slot: False abandons the call
    # unsent (CallAbandoned). A slot can take a whole window to come, far longer than the
    # handover a new owner of the partition waits (flush.handover_s), so the check is here.
    still_wanted: Callable[[], bool] | None = None
    headers: Headers = ()  # extra request headers, e.g. `Range` for an export file


@dataclass(frozen=True, slots=True)
class FileReply:
    """A bulk file as Marketo sent it: 200 with the whole file, 206 with the range asked for."""

    status: int
    body: bytes


def multipart(
    fields: Sequence[tuple[str, str]], name: str, filename: str, data: bytes, content_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578): the form `fields`, then the file part `name`;
    returns the body and its Content-Type (with the boundary)."""
    boundary = secrets.token_hex(16)
    while boundary.encode() in data:  # 2^-128 per position; the check costs one scan
        boundary = secrets.token_hex(16)
    parts: list[bytes] = []
    for field, value in fields:
        parts.append(_part_head(boundary, f'form-data; name="{_quoted(field)}"'))
        parts.append(value.encode() + b"\r\n")
    disposition = f'form-data; name="{_quoted(name)}"; filename="{_quoted(filename)}"'
    parts.append(_part_head(boundary, disposition, content_type))
    parts.append(data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _part_head(boundary: str, disposition: str, content_type: str | None = None) -> bytes:
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode()


def _quoted(text: str) -> str:
    # As browsers do (WHATWG's form encoding): a quote or a line break would end the header
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class _Stopwatch:
    """Time spent inside `running()`; None until it has run (the call was never sent)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.elapsed_s: float | None = None

    @contextmanager
    def running(self) -> Iterator[None]:
        started_s = self._clock()
        try:
            yield
        finally:
            self.elapsed_s = (self.elapsed_s or 0.0) + self._clock() - started_s


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at_s: float
    renew_at_s: float


class Transport:
    """Sends requests over one aiohttp session (owned unless `session` is given)."""

    def __init__(
        self,
        base_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        limiter: Limiter,
        *,
        timeout_s: float = 30.0,
        max_attempts: int = 6,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        ca_bundle: Path | None = None,
        observer: Observer | None = None,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if session is not None and ca_bundle is not None:
            raise ValueError("give either a session or a ca_bundle, not both")
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_attempts = max(1, max_attempts)
        self._clock = clock
        self._sleep = sleep
        self._ca_bundle = ca_bundle
        self.observer: Observer = observer or _NoObserver()
        self._session = session
        self._owns_session = session is None
        self._rng = rng or random.Random()
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()
        # The API user the identity answer named (`scope`): whose line of the usage stats is
        # ours. None until a token is fetched, or when Marketo names none.
        self.api_user: str | None = None

    async def close(self) -> None:
        """Close the session if this transport opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        # A later call opens (and then owns) a fresh session rather than reusing a closed one.
        self._session, self._owns_session = None, True

    async def send(
        self, request: Request, decoder: msgspec.json.Decoder[rs.Envelope[T]]
    ) -> rs.Envelope[T]:
        """Run one logical call: local retries for transient errors, token renewal, limiter."""
        return await self._run(request, _envelope_reader(request.endpoint, decoder))

    async def fetch_file(self, request: Request) -> FileReply | None:
        """Run one call whose success is a file, not the envelope (bulk failures, warnings and
        export files); None when Marketo answers 404 (there is no such file)."""
        return await self._run(request, _file_reader(request.endpoint))

    async def _run(self, request: Request, read: Reader[T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._authorized(request, read)
            except QuotaExhausted:
                self._limiter.quota_exhausted()
                _log.warning("marketo.quota_exhausted", endpoint=request.endpoint)
                raise
            except (MarketoUnavailable, RateLimited) as error:
                if isinstance(error, RateLimited):
                    self._limiter.rate_limited(error.code)  # also on the last attempt
                if attempt >= self._max_attempts:
                    raise
                await self._backoff(request.endpoint, attempt, error)

    async def _backoff(self, endpoint: Endpoint, attempt: int, error: MarketoError) -> None:
        # Full jitter (stamina style): uniform in [0, min(cap, base * 2^(attempt-1))].
        delay_s = self._rng.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** (attempt - 1)))
        _log.info(
            "marketo.retry_scheduled",
            endpoint=endpoint,
            attempt=attempt,
            code=error.code,
            delay_s=round(delay_s, 3),
        )
        await self._sleep(delay_s)

    async def _authorized(self, request: Request, read: Reader[T]) -> T:
        """Send with the current token; on 601/602 renew it and retry once (twice on 602, 602)."""
        failures: list[str] = []
        while True:
            token = await self._current_token()
            try:
                return await self._attempt(request, read, token.value)
            except TokenExpired as error:
                failures.append(error.code)
                _log.info("marketo.token_rejected", code=error.code, failures=len(failures))
                if len(failures) > 2 or (
                    len(failures) == 2 and failures != [codes.ACCESS_EXPIRED] * 2
                ):
                    raise
                if len(failures) == 2:
                    await self._wait_for_expiry(token)
                await self._renew(token)

    async def _attempt(self, request: Request, read: Reader[T], token: str) -> T:
        headers = {"Authorization": f"Bearer {token}"}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        headers.update(request.headers)
        url = self._base_url + request.path
        with self._observe(request.endpoint) as watch:
            try:
                async with self._limiter.call():
                    if request.still_wanted is not None and not request.still_wanted():
                        raise CallAbandoned(
                            f"{request.endpoint}: its changes are not ours any more"
                        )
                    # timed alone, without the wait for the slot: a slow Marketo shows as
                    # such, apart from a full budget (budget_wait_seconds)
                    with watch.running():
                        status, body, media = await self._http(
                            request.method, url, request.query, request.body, headers
                        )
            except TimeoutError as exc:
                # The limiter may bound a slot's time itself (asyncio.timeout around the body).
                raise MarketoUnavailable("timeout", "call slot timed out") from exc
            return read(status, body, media)

    async def _http(
        self, method: str, url: str, query: Query, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        session = self._open_session()
        try:
            async with session.request(
                method,
                url,
                params=query,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,  # also when the session was given to us
            ) as response:
                return response.status, await response.read(), response.content_type
        except TimeoutError as exc:
            # The request may have been applied; our writes are idempotent, so a retry is safe.
            raise MarketoUnavailable("timeout", "no answer in time") from exc
        except aiohttp.ClientError as exc:
            raise MarketoUnavailable("connection", type(exc).__name__) from exc

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # TLS verification is always on; a CA bundle is added to the default trust.
            context = ssl.create_default_context()
            if self._ca_bundle is not None:
                context.load_verify_locations(cafile=self._ca_bundle)
            connector = aiohttp.TCPConnector(ssl=context)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    @contextmanager
    def _observe(self, endpoint: Endpoint) -> Iterator[_Stopwatch]:
        """Report the call's outcome, with the time the stopwatch ran (its HTTP request)."""
        watch = _Stopwatch(self._clock)
        outcome = "error"  # e.g. cancelled: neither a success nor a Marketo answer
        try:
            yield watch
            outcome = "ok"
        except MarketoError as error:
            outcome = _OUTCOMES.get(type(error), "error")
            raise
        except CallAbandoned:
            outcome = "abandoned"
            raise
        finally:
            self.observer.request(endpoint, outcome, watch.elapsed_s)

    # ---- token ---------------------------------------------------------------------------

    async def _current_token(self) -> _Token:
        token = self._token
        if token is not None and self._clock() < token.renew_at_s:
            return token
        return await self._renew(token)

    async def _renew(self, stale: _Token | None) -> _Token:
        """Fetch a token unless another task already replaced `stale`."""
        async with self._token_lock:
            current = self._token
            if current is None or current is stale or self._clock() >= current.renew_at_s:
                current = self._token = await self._fetch_token(stale)
            return current

    async def _wait_for_expiry(self, token: _Token) -> None:
        # A second 602 in a row: identity handed back the expired token; wait it out (bounded).
        wait_s = min(
            _MAX_TOKEN_WAIT_S, max(0.0, token.expires_at_s + _EXPIRY_SLACK_S - self._clock())
        )
        _log.info("marketo.token_wait", wait_s=round(wait_s, 3))
        await self._sleep(wait_s)

    async def _fetch_token(self, previous: _Token | None) -> _Token:
        # POST with a form body keeps the secret out of URLs that proxies log.
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id.get_secret_value(),
            "client_secret": self._client_secret.get_secret_value(),
        }
        url = self._base_url + "/identity/oauth/token"
        headers = {"Content-Type": FORM}
        with self._observe("identity") as watch:
            with watch.running():
                status, body, _ = await self._http(
                    "POST", url, (), urlencode(form).encode(), headers
                )
            reply = _token_reply(status, body)
        now_s = self._clock()
        expires_at_s = now_s + reply.expires_in
        reused = previous is not None and previous.value == reply.access_token
        # Marketo hands back the same token until it expires: asking again early
        # would only loop, so a reused token is kept until its expiry.
        renew_at_s = expires_at_s + _EXPIRY_SLACK_S if reused else expires_at_s - _RENEW_BEFORE_S
        _log.info("marketo.token_refreshed", expires_in_s=reply.expires_in, reused=reused)
        self.api_user = reply.scope or None
        return _Token(reply.access_token, expires_at_s, renew_at_s)


def _refused(endpoint: Endpoint, error: MarketoError, request_id: str | None) -> MarketoError:
    _log.info(
        "marketo.request_failed",
        endpoint=endpoint,
        code=error.code,
        request_id=request_id,
        retriable=error.retriable,
    )
    return error


def _envelope_reader(
    endpoint: Endpoint, decoder: msgspec.json.Decoder[rs.Envelope[T]]
) -> Reader[rs.Envelope[T]]:
    def read(status: int, body: bytes, _media: str) -> rs.Envelope[T]:
        reply = rs.parse(decoder, status, body)
        if isinstance(reply, rs.Failure):
            raise _refused(endpoint, reply.error, reply.request_id)
        return reply

    return read


def _file_reader(endpoint: Endpoint) -> Reader[FileReply | None]:
    def read(status: int, body: bytes, media: str) -> FileReply | None:
        if status == 404:
            return None  # the file endpoints' "no such file", a plain-text page, not an error
        # A file's first line is a header of field names; an envelope is a JSON object (its
        # media type is not trusted alone: a proxy may relabel it).
        if status in (200, 206) and media != _JSON_MEDIA and not body.lstrip().startswith(b"{"):
            return FileReply(status, body)
        # Errors (606, 615, 607, 601/602, ...) still come in the JSON envelope, as on REST.
        error = rs.classify(status, body) or RequestRejected(
            "unexpected_result", "a JSON success where a file was expected"
        )
        raise _refused(endpoint, error, None)

    return read


def _token_reply(status: int, body: bytes) -> rs.TokenReply:
    if status == 401:
        raise RequestRejected(
            "http_401", "Marketo refused the client credentials (client id/secret)"
        )
    error = rs.classify_status(status)
    if error is not None:
        raise error
    try:
        return rs.TOKEN.decode(body)
    except msgspec.DecodeError as exc:
        raise MarketoUnavailable("http_200", "identity answered without an access token") from exc
