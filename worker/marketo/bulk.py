"""BulkClient: Marketo's Bulk Lead Import and Bulk Lead Extract, as typed calls.

Shares the REST client's Transport (token, session, limiter): every bulk HTTP request, each
status poll and file download included, takes a budget slot like a REST call. Builds the
requests and reads the answers; the CSV files themselves are worker/core/bulk_csv.py's. Raises
worker.errors.MarketoError subclasses: ImportQueueFull (1016) and ExportLimited (1029) mean wait,
ImportTooLarge (413) and BatchNotFound (1013) do not heal by waiting. Never logs an email.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from worker.core import marketo_api as codes
from worker.core.bulk_csv import MAX_IMPORT_BYTES
from worker.core.ids import ListId
from worker.errors import (
    BatchNotFound,
    ExportFileMissing,
    ExportLimited,
    ImportTooLarge,
    RequestRejected,
)
from worker.marketo import responses as rs
from worker.marketo.responses import ExportStatus, ImportStatus
from worker.marketo.transport import Endpoint, FileReply, Query, Request, Transport, multipart

IMPORT_PATH = "/bulk/v1/leads.json"
EXPORT_PATH = "/bulk/v1/leads/export"
FILE_CONTENT_TYPE = "text/csv;charset=UTF-8"
_JSON = "application/json"
_TOO_LARGE = "http_413"
ByteRange = tuple[int, int | None]  # first and last byte, inclusive; None: to the end


class BulkClient:
    """Async Marketo bulk client: each method one HTTP request, sent through `transport`."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    # ---- bulk lead import ---------------------------------------------------------------------

    async def import_leads(
        self,
        csv: bytes,
        *,
        lookup_field: str,
        list_id: ListId | None = None,
        partition: str | None = None,
    ) -> int:
        """Queue an import of a CSV file (insert or update by `lookup_field`, every imported row a
        member of `list_id` when given); the batch id. A create retried after a lost answer may
        queue the file twice: harmless, an import is an idempotent upsert."""
        query: Query = (("format", "csv"), ("lookupField", lookup_field))
        query += (("listId", str(int(list_id))),) if list_id is not None else ()
        query += (("partitionName", partition),) if partition is not None else ()
        body, content_type = multipart((), "file", "leads.csv", csv, FILE_CONTENT_TYPE)
        if len(body) >= MAX_IMPORT_BYTES:
            # Marketo would answer 413 for it: refuse before spending a call.
            raise ImportTooLarge(_TOO_LARGE, _too_large(len(body)))
        request = Request("bulk_import", "POST", IMPORT_PATH, query, body, content_type)
        try:
            reply = await self._transport.send(request, rs.RAW_ROWS)
        except RequestRejected as error:
            if error.code == _TOO_LARGE:
                raise ImportTooLarge(_TOO_LARGE, _too_large(len(body))) from error
            raise
        return rs.import_status("bulk_import", reply).batch_id

    async def import_status(self, batch_id: int) -> ImportStatus:
        """The batch's status and its counters so far; BatchNotFound when Marketo knows none."""
        path = f"/bulk/v1/leads/batch/{int(batch_id)}.json"
        try:
            reply = await self._transport.send(
                Request("bulk_import_status", "GET", path), rs.RAW_ROWS
            )
        except RequestRejected as error:
            if error.code == codes.LIST_NOT_FOUND:  # 1013 is also "no such batch"
                raise BatchNotFound(error.code, f"no import batch {int(batch_id)}") from error
            raise
        return rs.import_status("bulk_import_status", reply)

    async def import_failures(self, batch_id: int) -> bytes | None:
        """The failures file (each failed row as sent plus `Import Failure Reason`), or None
        when there is none (Marketo's 404)."""
        return await self._report("bulk_import_failures", batch_id, "failures")

    async def import_warnings(self, batch_id: int) -> bytes | None:
        """The warnings file (each warned row plus `Import Warning Reason`), or None."""
        return await self._report("bulk_import_warnings", batch_id, "warnings")

    async def _report(self, endpoint: Endpoint, batch_id: int, kind: str) -> bytes | None:
        path = f"/bulk/v1/leads/batch/{int(batch_id)}/{kind}.json"
        reply = await self._transport.fetch_file(Request(endpoint, "GET", path))
        return None if reply is None else reply.body

    # ---- bulk lead extract --------------------------------------------------------------------

    async def export_create(
        self,
        fields: Sequence[str],
        *,
        static_list_id: ListId | None = None,
        static_list_name: str | None = None,
        format: str = "CSV",
    ) -> str:
        """Create (not yet enqueue) an extract of a static list's members; the export id."""
        if (static_list_id is None) == (static_list_name is None):
            raise ValueError("give exactly one of static_list_id and static_list_name")
        if not fields:
            raise ValueError("an export needs at least one field")
        list_filter: dict[str, object] = (
            {"staticListId": int(static_list_id)}
            if static_list_id is not None
            else {"staticListName": static_list_name}
        )
        payload = {"fields": list(fields), "format": format, "filter": list_filter}
        path = f"{EXPORT_PATH}/create.json"
        body = msgspec.json.encode(payload)
        request = Request("bulk_export_create", "POST", path, (), body, _JSON)
        reply = await self._transport.send(request, rs.RAW_ROWS)
        return rs.export_status("bulk_export_create", reply).export_id

    async def export_enqueue(self, export_id: str) -> ExportStatus:
        """Queue a created job. An enqueue retried after a lost answer gets 1029 "already
        queued": that job is queued, so its status is the answer."""
        try:
            return await self._job("bulk_export_enqueue", "POST", export_id, "enqueue")
        except ExportLimited as limited:
            if limited.reason != "already_queued":
                raise
        return await self.export_status(export_id)

    async def export_status(self, export_id: str) -> ExportStatus:
        """The job as Marketo last refreshed it (at most once a minute)."""
        return await self._job("bulk_export_status", "GET", export_id, "status")

    async def export_cancel(self, export_id: str) -> ExportStatus:
        """Cancel a created, queued or processing job."""
        return await self._job("bulk_export_cancel", "POST", export_id, "cancel")

    async def export_file(self, export_id: str, byte_range: ByteRange | None = None) -> bytes:
        """A completed job's file, whole or the bytes of `byte_range`; ExportFileMissing when
        Marketo has none (the job not completed, unknown, or its file past 7 days)."""
        headers = () if byte_range is None else (("Range", _range_header(byte_range)),)
        path = f"{EXPORT_PATH}/{_job_id(export_id)}/file.json"
        request = Request("bulk_export_file", "GET", path, headers=headers)
        reply = await self._transport.fetch_file(request)
        if reply is None:
            raise ExportFileMissing("http_404", f"no file for export {_job_id(export_id)}")
        return _ranged(reply, byte_range)

    async def export_jobs(self, status: str = "Completed") -> list[ExportStatus]:
        """The export jobs of the past 7 days in `status` (the first page: up to 300 jobs)."""
        query: Query = (("status", status), ("batchSize", "300"))
        request = Request("bulk_export_jobs", "GET", f"{EXPORT_PATH}.json", query)
        reply = await self._transport.send(request, rs.RAW_ROWS)
        return rs.export_jobs("bulk_export_jobs", reply)

    async def _job(
        self, endpoint: Endpoint, method: str, export_id: str, verb: str
    ) -> ExportStatus:
        path = f"{EXPORT_PATH}/{_job_id(export_id)}/{verb}.json"
        reply = await self._transport.send(Request(endpoint, method, path), rs.RAW_ROWS)
        return rs.export_status(endpoint, reply)


def _too_large(size: int) -> str:
    return f"an import body of {size} bytes; Marketo takes under {MAX_IMPORT_BYTES}: split the file"


def _job_id(export_id: str) -> str:
    # The id goes into the path: refuse anything that could change the path's meaning.
    if not export_id or any(c in export_id for c in "/?#%") or not export_id.isascii():
        raise ValueError(f"not an export id: {export_id!r}")
    return export_id


def _range_header(byte_range: ByteRange) -> str:
    first, last = byte_range
    if first < 0 or (last is not None and last < first):
        raise ValueError(f"not a byte range: {byte_range}")
    return f"bytes={first}-{'' if last is None else last}"


def _ranged(reply: FileReply, byte_range: ByteRange | None) -> bytes:
    """The bytes asked for: a server may ignore `Range` and send the whole file with 200."""
    if byte_range is None or reply.status == 206:
        return reply.body
    first, last = byte_range
    return reply.body[first : None if last is None else last + 1]
