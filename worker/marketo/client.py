"""MarketoClient: the only importer of aiohttp. Owns the token, limiter slots and local retries.

Returns parsed values; raises worker.errors.MarketoError subclasses on request-level failure.
Never logs the secret, the token or an email.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self, TypeVar
from urllib.parse import urlencode

import aiohttp
import msgspec
import structlog
from pydantic import SecretStr

from worker.core.ids import LeadId, ListId
from worker.errors import (
    MarketoError,
    MarketoUnavailable,
    QuotaExhausted,
    RateLimited,
    RequestRejected,
    TokenExpired,
)
from worker.marketo import responses as rs
from worker.marketo.responses import FieldInfo, FolderInfo, ListInfo, RecordResult

T = TypeVar("T")
Endpoint = Literal[
    "sync_leads",
    "add_to_list",
    "remove_from_list",
    "find_leads",
    "list_members",
    "describe",
    "assets",
    "usage",
    "identity",
]
Query = tuple[tuple[str, str], ...]

MAX_BATCH = 300  # API.md §6: records, ids and filter values per call
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_MAX_URI_CHARS = 7 * 1024  # Lead DB GETs over 8 KB get HTTP 414 (API.md §1.2); keep a margin
_RENEW_BEFORE_S = 60.0  # refresh when less than this remains (API.md §2.5)
_EXPIRY_SLACK_S = 1.0  # expires_in is whole seconds, so the real expiry may be this much later
_MAX_TOKEN_WAIT_S = 60.0
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0
_LIST_FOLDER_TYPES = ("List", "Marketing Folder")
_OUTCOMES: dict[type[MarketoError], str] = {
    TokenExpired: "token_expired",
    RateLimited: "rate_limited",
    QuotaExhausted: "quota_exhausted",
    MarketoUnavailable: "unavailable",
    RequestRejected: "rejected",
}

_log = structlog.get_logger(__name__)


class Limiter(Protocol):
    """The call budget: one `call()` slot per HTTP request, told about 606/615 and 607."""

    def call(self) -> AbstractAsyncContextManager[None]: ...
    def rate_limited(self, code: str) -> None: ...
    def quota_exhausted(self) -> None: ...


class Observer(Protocol):
    """Metrics hook: `endpoint` is an `Endpoint`; `outcome` is "ok", "error" or in `_OUTCOMES`."""

    def request(self, endpoint: str, outcome: str, duration_s: float) -> None: ...
    def records(self, endpoint: str, status: str, count: int) -> None: ...


class _NoObserver:
    def request(self, endpoint: str, outcome: str, duration_s: float) -> None:
        """Ignore the request."""

    def records(self, endpoint: str, status: str, count: int) -> None:
        """Ignore the records."""


@dataclass(frozen=True, slots=True)
class _Request:
    endpoint: Endpoint
    method: str
    path: str
    query: Query = ()
    body: bytes | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at_s: float
    renew_at_s: float


def _check_batch(count: int, what: str) -> None:
    if count > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} {what} per call, got {count}")


def _ids_body(lead_ids: Sequence[LeadId]) -> bytes:
    return msgspec.json.encode({"input": [{"id": int(i)} for i in lead_ids]})


class MarketoClient:
    """Async Marketo REST client over one aiohttp session (owned unless `session` is given)."""

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
        self._observer: Observer = observer or _NoObserver()
        self._session = session
        self._owns_session = session is None
        self._rng = rng or random.Random()
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        # A later call opens (and then owns) a fresh session rather than reusing a closed one.
        self._session, self._owns_session = None, True

    # ---- endpoints -------------------------------------------------------------------------

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[RecordResult]:
        """Create/update up to 300 leads; one result per record, in input order."""
        _check_batch(len(records), "records")
        if not records:
            return []
        payload = {
            "action": action,
            "lookupField": lookup_field,
            "input": [dict(r) for r in records],
        }
        body = msgspec.json.encode(payload)
        request = _Request("sync_leads", "POST", "/rest/v1/leads.json", (), body, _JSON)
        return await self._records(request, len(records))

    async def add_to_list(self, list_id: ListId, lead_ids: Sequence[LeadId]) -> list[RecordResult]:
        """Add up to 300 leads to a static list (idempotent: members come back `added`)."""
        _check_batch(len(lead_ids), "lead ids")
        if not lead_ids:
            return []
        path = f"/rest/v1/lists/{int(list_id)}/leads.json"
        request = _Request("add_to_list", "POST", path, (), _ids_body(lead_ids), _JSON)
        return await self._records(request, len(lead_ids))

    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId]
    ) -> list[RecordResult]:
        """Remove up to 300 leads (non-members come back skipped 1015)."""
        _check_batch(len(lead_ids), "lead ids")
        if not lead_ids:
            return []
        # POST + _method=DELETE: some proxies strip DELETE bodies, silently emptying a removal.
        path = f"/rest/v1/lists/{int(list_id)}/leads.json"
        query = (("_method", "DELETE"),)
        request = _Request("remove_from_list", "POST", path, query, _ids_body(lead_ids), _JSON)
        return await self._records(request, len(lead_ids))

    async def find_leads(
        self, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[dict[str, object]]:
        """Every lead whose `field` is one of up to 300 `values` (several per value possible)."""
        _check_batch(len(values), "filter values")
        if any("," in value for value in values):
            raise ValueError("filter values cannot contain a comma (Marketo splits on it)")
        if not values:
            return []
        query: Query = (("filterType", field), ("filterValues", ",".join(values)))
        query += (("fields", ",".join(fields)),) if fields else ()
        rows: list[dict[str, object]] = []
        async for page in self._pages("find_leads", "/rest/v1/leads.json", query):
            rows.extend(page)
        return rows

    def list_members(
        self, list_id: ListId, fields: Sequence[str]
    ) -> AsyncIterator[list[dict[str, object]]]:
        """Members of a static list, 300 per page."""
        query: Query = (("batchSize", str(MAX_BATCH)),)
        query += (("fields", ",".join(fields)),) if fields else ()
        return self._pages("list_members", f"/rest/v1/lists/{int(list_id)}/leads.json", query)

    async def describe_fields(self) -> list[FieldInfo]:
        """Lead fields from describe2, falling back to describe.json when it is refused or empty."""
        try:
            reply = await self._send(
                _Request("describe", "GET", "/rest/v1/leads/describe2.json"), rs.DESCRIBE2
            )
            found = rs.fields_from_describe2(reply.result or [])
        except RequestRejected as error:
            _log.info("marketo.describe2_refused", code=error.code)
            found = []
        if found:
            return found
        reply1 = await self._send(
            _Request("describe", "GET", "/rest/v1/leads/describe.json"), rs.DESCRIBE
        )
        return rs.fields_from_describe(reply1.result or [])

    async def find_folder(self, name: str) -> FolderInfo | None:
        """The folder called `name`; of several, list-capable types first, then the lowest id."""
        query = (("name", name),)
        request = _Request("assets", "GET", "/rest/asset/v1/folder/byName.json", query)
        folders = [rs.folder_info(f) for f in (await self._send(request, rs.FOLDERS)).result or []]
        return min(folders, key=_folder_rank, default=None)

    async def find_list_by_name(self, name: str) -> ListInfo | None:
        """The static list called `name` exactly, or None ("No assets found")."""
        query = (("name", name),)
        request = _Request("assets", "GET", "/rest/asset/v1/staticList/byName.json", query)
        reply = await self._send(request, rs.ASSET_LISTS)
        found = [rs.list_info(item) for item in reply.result or []]
        # byName is an exact match on Marketo's side; prefer an exact one should it ever relax.
        return next((i for i in found if i.name == name), found[0] if found else None)

    async def get_list(self, list_id: ListId) -> ListInfo | None:
        """The static list with this id, or None."""
        request = _Request("assets", "GET", f"/rest/asset/v1/staticList/{int(list_id)}.json")
        try:
            reply = await self._send(request, rs.ASSET_LISTS)
        except RequestRejected as error:
            if error.code in ("1013", "702"):
                return None
            raise
        return rs.list_info(reply.result[0]) if reply.result else None

    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo:
        """Create a static list; if the name is taken (race, retried create), return that list."""
        folder = json.dumps({"id": folder_id, "type": "Folder"})
        body = urlencode({"name": name, "folder": folder, "description": description}).encode()
        request = _Request("assets", "POST", "/rest/asset/v1/staticLists.json", (), body, _FORM)
        try:
            reply = await self._send(request, rs.ASSET_LISTS)
        except RequestRejected as error:
            existing = await self.find_list_by_name(name) if error.code == "709" else None
            if existing is None:
                raise
            return existing
        if not reply.result:
            raise RequestRejected("unexpected_result", "create answered without the new list")
        created = rs.list_info(reply.result[0])
        _log.info("marketo.list_created", list_id=created.id, folder_id=folder_id)
        return created

    async def usage_today(self) -> int:
        """Calls counted against today's quota (0 when Marketo reports none)."""
        reply = await self._send(_Request("usage", "GET", "/rest/v1/stats/usage.json"), rs.USAGE)
        return reply.result[0].total if reply.result else 0

    # ---- transport -------------------------------------------------------------------------

    async def _records(self, request: _Request, expected: int) -> list[RecordResult]:
        reply = await self._send(request, rs.RECORDS)
        results = rs.record_results(reply.result or [])
        if len(results) != expected:
            # Callers zip results with their input: a short answer would misattribute lead ids.
            raise RequestRejected("result_count", f"{len(results)} results for {expected} records")
        for status, count in Counter(r.status for r in results).items():
            self._observer.records(request.endpoint, status, count)
        return results

    async def _pages(
        self, endpoint: Endpoint, path: str, query: Query
    ) -> AsyncIterator[list[dict[str, object]]]:
        page_token: str | None = None
        while True:
            page_query = (*query, ("nextPageToken", page_token)) if page_token else query
            reply = await self._send(_read_request(endpoint, path, page_query), rs.ROWS)
            rows = reply.result or []
            if rows:
                yield rows
            page_token = reply.next_page_token
            # API.md §3: stop on no token OR an empty page (a token may come with the last page).
            if not rows or not page_token:
                return

    async def _send(
        self, request: _Request, decoder: msgspec.json.Decoder[rs.Envelope[T]]
    ) -> rs.Envelope[T]:
        """Run one logical call: local retries for transient errors, token renewal, limiter."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._authorized(request, decoder)
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

    async def _authorized(
        self, request: _Request, decoder: msgspec.json.Decoder[rs.Envelope[T]]
    ) -> rs.Envelope[T]:
        """Send with the current token; on 601/602 renew it and retry once (twice on 602, 602)."""
        failures: list[str] = []
        while True:
            token = await self._current_token()
            try:
                return await self._attempt(request, decoder, token.value)
            except TokenExpired as error:
                failures.append(error.code)
                _log.info("marketo.token_rejected", code=error.code, failures=len(failures))
                if len(failures) > 2 or (len(failures) == 2 and failures != ["602", "602"]):
                    raise
                if len(failures) == 2:
                    await self._wait_for_expiry(token)
                await self._renew(token)

    async def _attempt(
        self, request: _Request, decoder: msgspec.json.Decoder[rs.Envelope[T]], token: str
    ) -> rs.Envelope[T]:
        headers = {"Authorization": f"Bearer {token}"}
        if request.content_type is not None:
            headers["Content-Type"] = request.content_type
        url = self._base_url + request.path
        with self._observe(request.endpoint):
            try:
                async with self._limiter.call():
                    status, body = await self._http(
                        request.method, url, request.query, request.body, headers
                    )
            except TimeoutError as exc:
                # The limiter may bound a slot's time itself (asyncio.timeout around the body).
                raise MarketoUnavailable("timeout", "call slot timed out") from exc
            reply = rs.parse(decoder, status, body)
            if isinstance(reply, rs.Failure):
                error = reply.error
                _log.info(
                    "marketo.request_failed",
                    endpoint=request.endpoint,
                    code=error.code,
                    request_id=reply.request_id,
                    retriable=error.retriable,
                )
                raise error
            return reply

    async def _http(
        self, method: str, url: str, query: Query, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
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
                return response.status, await response.read()
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
    def _observe(self, endpoint: Endpoint) -> Iterator[None]:
        started_s = self._clock()
        outcome = "error"  # e.g. cancelled: neither a success nor a Marketo answer
        try:
            yield
            outcome = "ok"
        except MarketoError as error:
            outcome = _OUTCOMES.get(type(error), "error")
            raise
        finally:
            self._observer.request(endpoint, outcome, self._clock() - started_s)

    # ---- token (API.md §2.5) ---------------------------------------------------------------

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
        headers = {"Content-Type": _FORM}
        with self._observe("identity"):
            status, body = await self._http("POST", url, (), urlencode(form).encode(), headers)
            reply = _token_reply(status, body)
        now_s = self._clock()
        expires_at_s = now_s + reply.expires_in
        reused = previous is not None and previous.value == reply.access_token
        # Marketo hands back the same token until it expires (API.md §2.2): asking again early
        # would only loop, so a reused token is kept until its expiry.
        renew_at_s = expires_at_s + _EXPIRY_SLACK_S if reused else expires_at_s - _RENEW_BEFORE_S
        _log.info("marketo.token_refreshed", expires_in_s=reply.expires_in, reused=reused)
        return _Token(reply.access_token, expires_at_s, renew_at_s)


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


def _read_request(endpoint: Endpoint, path: str, query: Query) -> _Request:
    """A Lead DB read: GET, or POST ?_method=GET with a form body past the 8 KB URI limit."""
    if len(path) + 1 + len(urlencode(query)) <= _MAX_URI_CHARS:
        return _Request(endpoint, "GET", path, query)
    return _Request(endpoint, "POST", path, (("_method", "GET"),), urlencode(query).encode(), _FORM)


def _folder_rank(folder: FolderInfo) -> tuple[int, int]:
    kind = folder.folder_type
    return (_LIST_FOLDER_TYPES.index(kind) if kind in _LIST_FOLDER_TYPES else 2, folder.id)
