"""Marketo's JSON envelope: defensive msgspec models, per-record results, error classification.

Pure: no aiohttp, no I/O. Fields the live API omits (errors, warnings, result) default to empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

import msgspec

from worker.core import marketo_api as codes
from worker.core.ids import LeadId, ListId
from worker.errors import (
    ExportLimited,
    ImportQueueFull,
    MarketoError,
    MarketoUnavailable,
    QuotaExhausted,
    RateLimited,
    RequestRejected,
    TokenExpired,
)

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class Problem(msgspec.Struct, frozen=True):
    """An `errors[]` or `reasons[]` item; Marketo quotes codes, but an int is tolerated."""

    code: str | int = ""
    message: str = ""


class LeadDbWarning(msgspec.Struct, frozen=True):
    """A Lead Database warning; Asset API warnings are plain strings instead."""

    code: str | int | None = None
    message: str = ""


class Envelope(msgspec.Struct, Generic[T], rename="camel"):
    """The response envelope; `result` is None when absent."""

    request_id: str | None = None
    success: bool = False
    errors: list[Problem] = []
    warnings: list[str | LeadDbWarning] = []
    result: list[T] | None = None
    next_page_token: str | None = None
    more_result: bool = False


class RecordItem(msgspec.Struct, frozen=True):
    """A per-record result of sync leads and list membership calls."""

    id: int | None = None
    status: str = ""
    reasons: list[Problem] = []


class FolderRef(msgspec.Struct, frozen=True):
    """`{"id": 12, "type": "Folder"}` as the Asset API writes folder references."""

    id: int
    type: str = "Folder"


class AssetList(msgspec.Struct, frozen=True):
    """A static list as the Asset API renders it."""

    id: int
    name: str = ""
    description: str | None = None
    folder: FolderRef | None = None


class AssetFolder(msgspec.Struct, frozen=True, rename="camel"):
    """A folder as `folder/byName.json` renders it."""

    id: int
    name: str = ""
    folder_type: str = ""
    path: str = ""
    is_system: bool = False
    folder_id: FolderRef | None = None


class Describe2Field(msgspec.Struct, frozen=True, rename="camel"):
    """One field of describe2's `API Lead` object."""

    name: str
    data_type: str = ""
    length: int | None = None
    updateable: bool = False


class Describe2(msgspec.Struct, frozen=True, rename="camel"):
    """describe2's single `result[0]`."""

    name: str = ""
    searchable_fields: list[list[str]] = []
    fields: list[Describe2Field] = []


class RestName(msgspec.Struct, frozen=True, rename="camel"):
    """describe's `rest` block: present only for fields usable over REST."""

    name: str
    read_only: bool = False


class DescribeAttribute(msgspec.Struct, frozen=True, rename="camel"):
    """One `LeadAttribute` of the superseded describe.json."""

    data_type: str = ""
    length: int | None = None
    rest: RestName | None = None


class UsageUser(msgspec.Struct, frozen=True, rename="camel"):
    """One API user's calls in a day of `/rest/v1/stats/usage.json`."""

    user_id: str = ""
    count: int = 0


class UsageDay(msgspec.Struct, frozen=True):
    """One day of `/rest/v1/stats/usage.json`: the instance's calls, and each API user's."""

    date: str = ""
    total: int = 0
    users: list[UsageUser] = []


class TokenReply(msgspec.Struct, frozen=True):
    """The identity endpoint's answer; `expires_in` is the remaining lifetime."""

    access_token: str
    expires_in: float = 0.0
    scope: str = ""  # the API-only user that owns the custom service


class _Head(msgspec.Struct, rename="camel"):
    """Just enough of any envelope to classify it; `result` is skipped unread."""

    request_id: str | None = None
    success: bool = False
    errors: list[Problem] = []


RECORDS = msgspec.json.Decoder(Envelope[RecordItem])
ROWS = msgspec.json.Decoder(Envelope[dict[str, object]])
ASSET_LISTS = msgspec.json.Decoder(Envelope[AssetList])
FOLDERS = msgspec.json.Decoder(Envelope[AssetFolder])
DESCRIBE2 = msgspec.json.Decoder(Envelope[Describe2])
DESCRIBE = msgspec.json.Decoder(Envelope[DescribeAttribute])
USAGE = msgspec.json.Decoder(Envelope[UsageDay])
TOKEN = msgspec.json.Decoder(TokenReply)
_HEAD = msgspec.json.Decoder(_Head)


@dataclass(frozen=True, slots=True)
class RecordResult:
    """One record's outcome: created/updated/added/removed/skipped/memberof/notmemberof/deleted."""

    status: str
    lead_id: LeadId | None
    reasons: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A lead field from describe: REST name, Marketo data type, length, whether writable."""

    name: str
    data_type: str
    length: int | None
    updateable: bool


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """An asset folder; `ref_type` ("Folder" or "Program") is what a folder reference needs."""

    id: int
    name: str
    folder_type: str
    path: str
    is_system: bool
    ref_type: str = "Folder"


@dataclass(frozen=True, slots=True)
class ListInfo:
    """A static list object."""

    id: ListId
    name: str
    folder_id: int | None
    description: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A request-level failure and the requestId to quote to Marketo support."""

    error: MarketoError
    request_id: str | None


def _code(raw: str | int) -> str:
    return str(raw)


def classify_status(http_status: int) -> MarketoError | None:
    """Classify the HTTP status alone; None when the body decides (2xx)."""
    code = f"http_{http_status}"
    if 200 <= http_status < 300:
        return None
    if http_status == 429:
        # Marketo throttles with 606, but a proxy may send 429.
        return RateLimited(code, "HTTP 429 Too Many Requests")
    if http_status >= 500 or http_status == 408:
        return MarketoUnavailable(code, f"HTTP {http_status}")
    if http_status in (413, 414):
        # The caller must split the batch (413) or the client must use _method=GET (414).
        return RequestRejected(code, f"HTTP {http_status}: request too large, split it")
    if 300 <= http_status < 400:
        # Redirects are not followed: the Authorization header must not travel elsewhere.
        return RequestRejected(code, f"HTTP {http_status}: redirected, check base_url")
    if http_status == 401:
        return RequestRejected(code, "HTTP 401: credentials refused")
    if 400 <= http_status < 500:
        return RequestRejected(code, f"HTTP {http_status}")
    return MarketoUnavailable(code, f"unexpected HTTP {http_status}")


def classify_code(code: str, message: str) -> MarketoError:
    """Map one request-level `errors[]` code to the error the client acts on."""
    if code in codes.TOKEN_REJECTED:
        return TokenExpired(code, message)
    if code in codes.THROTTLED:
        return RateLimited(code, message)
    if code in codes.QUOTA_EXHAUSTED:
        return QuotaExhausted(code, message)
    if code in codes.UNAVAILABLE:
        return MarketoUnavailable(code, message)
    if code == codes.IMPORT_QUEUE_FULL:
        return ImportQueueFull(code, message)
    if code == codes.EXPORT_LIMITED:
        return ExportLimited(code, message)
    return RequestRejected(code, message)


def _classify_failure(errors: list[Problem]) -> MarketoError:
    if not errors:
        # success:false without a code is not in any doc; retrying an idempotent call is safe.
        return MarketoUnavailable("unknown", "success false without an error code")
    first = errors[0]  # Marketo sends one error per failed request; the first decides.
    return classify_code(_code(first.code), first.message)


def classify(http_status: int, body: bytes) -> MarketoError | None:
    """Return the error a reply stands for, or None when the request succeeded."""
    error = classify_status(http_status)
    if error is not None:
        return error
    try:
        head = _HEAD.decode(body)
    except msgspec.DecodeError:
        return MarketoUnavailable("http_200", "response is not a Marketo envelope")
    return None if head.success else _classify_failure(head.errors)


def parse(
    decoder: msgspec.json.Decoder[Envelope[T]], http_status: int, body: bytes
) -> Envelope[T] | Failure:
    """Decode a successful reply with `decoder`, or say why the request failed."""
    error = classify_status(http_status)
    if error is not None:
        return Failure(error, None)
    try:
        envelope = decoder.decode(body)
    except msgspec.DecodeError:
        return _undecodable(body)
    if not envelope.success:
        return Failure(_classify_failure(envelope.errors), envelope.request_id)
    return envelope


def _undecodable(body: bytes) -> Failure:
    """A 200 whose body does not fit: a proxy page (retry) or a result of an unknown shape."""
    try:
        head = _HEAD.decode(body)
    except msgspec.DecodeError:
        return Failure(MarketoUnavailable("http_200", "response is not a Marketo envelope"), None)
    if not head.success:
        return Failure(_classify_failure(head.errors), head.request_id)
    # Deterministic: the same request would get the same shape, so retrying cannot help.
    error = RequestRejected("unexpected_result", "result does not match the documented shape")
    return Failure(error, head.request_id)


def record_results(items: list[RecordItem]) -> list[RecordResult]:
    """Per-record outcomes, in input order."""
    return [
        RecordResult(
            item.status,
            None if item.id is None else LeadId(item.id),
            tuple([(_code(r.code), r.message) for r in item.reasons]) if item.reasons else (),
        )
        for item in items
    ]


def has_no_assets_warning(envelope: Envelope[T]) -> bool:
    """Whether an Asset search answered "No assets found" (a success without `result`)."""
    return any(isinstance(w, str) and w.startswith("No assets found") for w in envelope.warnings)


def list_info(item: AssetList) -> ListInfo:
    """A static list's value object."""
    folder_id = None if item.folder is None else item.folder.id
    return ListInfo(ListId(item.id), item.name, folder_id, item.description or "")


def folder_info(item: AssetFolder) -> FolderInfo:
    """A folder's value object."""
    ref_type = "Folder" if item.folder_id is None else item.folder_id.type
    return FolderInfo(item.id, item.name, item.folder_type, item.path, item.is_system, ref_type)


def fields_from_describe2(items: list[Describe2]) -> list[FieldInfo]:
    """Fields from describe2 (empty when the result is empty)."""
    fields = items[0].fields if items else []
    return [FieldInfo(f.name, f.data_type, f.length, f.updateable) for f in fields]


def fields_from_describe(items: list[DescribeAttribute]) -> list[FieldInfo]:
    """Fields from describe.json: only those with a `rest` name; read-only means not updateable."""
    return [
        FieldInfo(a.rest.name, a.data_type, a.length, not a.rest.read_only)
        for a in items
        if a.rest is not None
    ]


# ---- bulk lead import and extract ----------------------------------------------------------


class ImportState(StrEnum):
    """A bulk import batch's status, as Marketo spells it."""

    QUEUED = "Queued"
    IMPORTING = "Importing"
    COMPLETE = "Complete"
    FAILED = "Failed"


class ExportState(StrEnum):
    """A bulk extract job's status; Marketo spells the last one both ways, read as CANCELLED."""

    CREATED = "Created"
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


_EXPORT_STATES = {s.value: s for s in ExportState} | {"Canceled": ExportState.CANCELLED}


class ImportBatch(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One `result[]` item of the import create and status calls."""

    batch_id: int
    status: ImportState
    # The documented create answer has no counters; the status answer has them "so far".
    num_of_leads_processed: int = 0
    num_of_rows_failed: int = 0
    num_of_rows_with_warning: int = 0
    message: str | None = None


class ExportJob(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One `result[]` item of the export create, enqueue, status and cancel calls."""

    export_id: str
    status: str  # mapped through _EXPORT_STATES: "Canceled" and "Cancelled" are one state
    format: str = ""
    created_at: str | None = None
    queued_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    number_of_records: int | None = None
    file_size: int | None = None
    file_checksum: str | None = None
    error_msg: str | None = None


RAW_ROWS = msgspec.json.Decoder(Envelope[msgspec.Raw])


@dataclass(frozen=True, slots=True)
class ImportStatus:
    """A bulk import batch: its status and counters (processed excludes the failed rows)."""

    batch_id: int
    status: ImportState
    leads_processed: int
    rows_failed: int
    rows_warned: int
    message: str | None


@dataclass(frozen=True, slots=True)
class ExportStatus:
    """A bulk extract job; the file's figures are set only once it is `Completed`."""

    export_id: str
    status: ExportState
    format: str
    created_at: str | None
    queued_at: str | None
    started_at: str | None
    finished_at: str | None
    number_of_records: int | None
    file_size: int | None
    file_checksum: str | None
    error_msg: str | None


def _only_item(call: str, envelope: Envelope[msgspec.Raw], shape: type[S]) -> S:
    """The one `result[]` item of a bulk answer, decoded as `shape`; a clear error naming the
    call when it is missing or does not fit (unknown fields are ignored)."""
    if not envelope.result:
        raise RequestRejected("unexpected_result", f"{call}: the answer has no result")
    try:
        return msgspec.json.decode(envelope.result[0], type=shape)
    except msgspec.ValidationError as exc:
        raise RequestRejected("unexpected_result", f"{call}: {exc}") from exc


def import_status(call: str, envelope: Envelope[msgspec.Raw]) -> ImportStatus:
    """The import batch a create or status call answered."""
    item = _only_item(call, envelope, ImportBatch)
    return ImportStatus(
        item.batch_id,
        item.status,
        item.num_of_leads_processed,
        item.num_of_rows_failed,
        item.num_of_rows_with_warning,
        item.message,
    )


def export_status(call: str, envelope: Envelope[msgspec.Raw]) -> ExportStatus:
    """The export job a create, enqueue, status or cancel call answered."""
    return _export(call, _only_item(call, envelope, ExportJob))


def export_jobs(call: str, envelope: Envelope[msgspec.Raw]) -> list[ExportStatus]:
    """Every export job a Get Export Jobs call answered (none: an empty list)."""
    try:
        items = [msgspec.json.decode(raw, type=ExportJob) for raw in envelope.result or []]
    except msgspec.ValidationError as exc:
        raise RequestRejected("unexpected_result", f"{call}: {exc}") from exc
    return [_export(call, item) for item in items]


def _export(call: str, item: ExportJob) -> ExportStatus:
    state = _EXPORT_STATES.get(item.status)
    if state is None:
        raise RequestRejected("unexpected_result", f"{call}: unknown job status {item.status!r}")
    return ExportStatus(
        item.export_id,
        state,
        item.format,
        item.created_at,
        item.queued_at,
        item.started_at,
        item.finished_at,
        item.number_of_records,
        item.file_size,
        item.file_checksum,
        item.error_msg,
    )
