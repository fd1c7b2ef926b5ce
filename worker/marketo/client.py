"""MarketoClient: the Marketo REST endpoints the worker uses, as typed calls.

Builds each request and reads its answer into parsed values; worker/marketo/transport.py sends
it (token, limiter slots, local retries). Raises worker.errors.MarketoError subclasses on
request-level failure. Never logs the secret, the token or an email.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlencode

import msgspec
import structlog

from worker.core import marketo_api as codes
from worker.core.ids import LeadId, ListId
from worker.core.marketo_api import MAX_BATCH
from worker.core.usage import DailyUsage, daily_usage
from worker.errors import MarketoUnavailable, RequestRejected
from worker.marketo import responses as rs
from worker.marketo.bulk import BulkClient
from worker.marketo.responses import FieldInfo, FolderInfo, ListInfo, RecordResult
from worker.marketo.transport import FORM, Endpoint, Limiter, Observer, Query, Request, Transport

if TYPE_CHECKING:
    from worker.settings import MarketoSettings

_JSON = "application/json"
_MAX_URI_CHARS = 7 * 1024  # Lead DB GETs over 8 KB get HTTP 414; keep a margin
_LIST_FOLDER_TYPES = ("List", "Marketing Folder")

_log = structlog.get_logger(__name__)


def _check_batch(count: int, what: str) -> None:
    if count > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} {what} per call, got {count}")


def _ids_body(lead_ids: Sequence[LeadId]) -> bytes:
    return msgspec.json.encode({"input": [{"id": int(i)} for i in lead_ids]})


def connect(
    marketo: MarketoSettings,
    limiter: Limiter,
    *,
    observer: Observer | None = None,
    max_attempts: int = 6,
) -> MarketoClient:
    """A client for the configured instance: its URL, credentials, timeout and CA bundle."""
    transport = Transport(
        marketo.base_url,
        marketo.client_id,
        marketo.client_secret,
        limiter,
        timeout_s=marketo.request_timeout_s,
        max_attempts=max_attempts,
        ca_bundle=marketo.ca_bundle,
        observer=observer,
    )
    return MarketoClient(transport)


class MarketoClient:
    """Async Marketo REST client: each method one logical call, sent through `transport`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

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
        await self._transport.close()

    def bulk(self) -> BulkClient:
        """The bulk import and extract calls, over this client's transport (token, budget)."""
        return BulkClient(self._transport)

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
        request = Request("sync_leads", "POST", "/rest/v1/leads.json", (), body, _JSON)
        return await self._records(request, len(records))

    async def add_to_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[RecordResult]:
        """Add up to 300 leads to a static list (idempotent: members come back `added`);
        `still_wanted` is asked before each attempt (see transport.Request)."""
        _check_batch(len(lead_ids), "lead ids")
        if not lead_ids:
            return []
        path = f"/rest/v1/lists/{int(list_id)}/leads.json"
        body = _ids_body(lead_ids)
        request = Request("add_to_list", "POST", path, (), body, _JSON, still_wanted)
        return await self._records(request, len(lead_ids))

    async def remove_from_list(
        self,
        list_id: ListId,
        lead_ids: Sequence[LeadId],
        still_wanted: Callable[[], bool] | None = None,
    ) -> list[RecordResult]:
        """Remove up to 300 leads (non-members come back skipped 1015)."""
        _check_batch(len(lead_ids), "lead ids")
        if not lead_ids:
            return []
        # POST + _method=DELETE: some proxies strip DELETE bodies, silently emptying a removal.
        path = f"/rest/v1/lists/{int(list_id)}/leads.json"
        query = (("_method", "DELETE"),)
        body = _ids_body(lead_ids)
        request = Request("remove_from_list", "POST", path, query, body, _JSON, still_wanted)
        return await self._records(request, len(lead_ids))

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Callable[[], bool] | None = None
    ) -> list[RecordResult]:
        """Delete up to 300 persons (`deleted`; one Marketo no longer has is skipped 1004)."""
        _check_batch(len(lead_ids), "lead ids")
        if not lead_ids:
            return []
        body = _ids_body(lead_ids)
        path = "/rest/v1/leads/delete.json"
        request = Request("delete_leads", "POST", path, (), body, _JSON, still_wanted)
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
            reply = await self._transport.send(
                Request("describe", "GET", "/rest/v1/leads/describe2.json"), rs.DESCRIBE2
            )
            found = rs.fields_from_describe2(reply.result or [])
        except RequestRejected as error:
            _log.info("marketo.describe2_refused", code=error.code)
            found = []
        if found:
            return found
        reply1 = await self._transport.send(
            Request("describe", "GET", "/rest/v1/leads/describe.json"), rs.DESCRIBE
        )
        return rs.fields_from_describe(reply1.result or [])

    async def find_folder(self, name: str) -> FolderInfo | None:
        """The folder called `name`; of several, list-capable types first, then the lowest id."""
        query = (("name", name),)
        request = Request("assets", "GET", "/rest/asset/v1/folder/byName.json", query)
        folders = [
            rs.folder_info(f)
            for f in (await self._transport.send(request, rs.FOLDERS)).result or []
        ]
        return min(folders, key=_folder_rank, default=None)

    async def find_list_by_name(self, name: str) -> ListInfo | None:
        """The static list called `name` exactly, or None ("No assets found")."""
        query = (("name", name),)
        request = Request("assets", "GET", "/rest/asset/v1/staticList/byName.json", query)
        reply = await self._transport.send(request, rs.ASSET_LISTS)
        found = [rs.list_info(item) for item in reply.result or []]
        # byName is an exact match on Marketo's side; prefer an exact one should it ever relax.
        return next((i for i in found if i.name == name), found[0] if found else None)

    async def get_list(self, list_id: ListId) -> ListInfo | None:
        """The static list with this id, or None."""
        request = Request("assets", "GET", f"/rest/asset/v1/staticList/{int(list_id)}.json")
        try:
            reply = await self._transport.send(request, rs.ASSET_LISTS)
        except RequestRejected as error:
            if error.code in (codes.LIST_NOT_FOUND, codes.ASSET_NOT_FOUND):
                return None
            raise
        return rs.list_info(reply.result[0]) if reply.result else None

    async def create_list(self, name: str, folder_id: int, description: str) -> ListInfo:
        """Create a static list; if the name is taken (race, retried create), return that list."""
        folder = json.dumps({"id": folder_id, "type": "Folder"})
        body = urlencode({"name": name, "folder": folder, "description": description}).encode()
        request = Request("assets", "POST", "/rest/asset/v1/staticLists.json", (), body, FORM)
        try:
            reply = await self._transport.send(request, rs.ASSET_LISTS)
        except RequestRejected as error:
            existing = (
                await self.find_list_by_name(name) if error.code == codes.BLOCKED_BY_RULE else None
            )
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
        return (await self.usage()).total

    async def usage(self) -> DailyUsage:
        """Today's calls of the whole instance, and of this client's API user (one call)."""
        reply = await self._transport.send(
            Request("usage", "GET", "/rest/v1/stats/usage.json"), rs.USAGE
        )
        if not reply.result:
            return DailyUsage(0, 0)
        day = reply.result[0]
        users = [(user.user_id, user.count) for user in day.users]
        return daily_usage(day.total, users, self._transport.api_user)

    # ---- reading answers ---------------------------------------------------------------------

    async def _records(self, request: Request, expected: int) -> list[RecordResult]:
        reply = await self._transport.send(request, rs.RECORDS)
        results = rs.record_results(reply.result or [])
        if len(results) != expected:
            # Callers zip results with their input: a short answer would misattribute lead ids.
            # Not a refusal of the records: unknown what Marketo did, so the call is retried.
            raise MarketoUnavailable(
                "result_count", f"{len(results)} results for {expected} records"
            )
        for status, count in Counter(r.status for r in results).items():
            self._transport.observer.records(request.endpoint, status, count)
        return results

    async def _pages(
        self, endpoint: Endpoint, path: str, query: Query
    ) -> AsyncIterator[list[dict[str, object]]]:
        page_token: str | None = None
        while True:
            page_query = (*query, ("nextPageToken", page_token)) if page_token else query
            reply = await self._transport.send(_read_request(endpoint, path, page_query), rs.ROWS)
            rows = reply.result or []
            if rows:
                yield rows
            page_token = reply.next_page_token
            # Stop on no token OR an empty page (a token may come with the last page).
            if not rows or not page_token:
                return


def _read_request(endpoint: Endpoint, path: str, query: Query) -> Request:
    """A Lead DB read: GET, or POST ?_method=GET with a form body past the 8 KB URI limit."""
    if len(path) + 1 + len(urlencode(query)) <= _MAX_URI_CHARS:
        return Request(endpoint, "GET", path, query)
    return Request(endpoint, "POST", path, (("_method", "GET"),), urlencode(query).encode(), FORM)


def _folder_rank(folder: FolderInfo) -> tuple[int, int]:
    kind = folder.folder_type
    return (_LIST_FOLDER_TYPES.index(kind) if kind in _LIST_FOLDER_TYPES else 2, folder.id)
