"""Bulk Lead Extract: export jobs over a static list's members, their queue, status and file.

Jobs move lazily on the sandbox's injected clocks: every API call first brings them up to "now"
(`advance`), so fake clocks drive them in tests and nothing runs in the background. The
behaviour and its sources: docs/marketo-facts.md, "Bulk Lead Extract".
"""

import csv
import hashlib
import io
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from worker.sandbox import catalogue
from worker.sandbox.envelope import ApiError, Reply, lead_db_date, lead_db_ok
from worker.sandbox.leads import project
from worker.sandbox.limits import QuotaDay
from worker.sandbox.params import Call, int_param, page, values
from worker.sandbox.routes import Body, Route, Router
from worker.sandbox.store import Store

MB = 1_000_000
DAY_S = 86_400.0
LIST_WINDOW_S = 7 * DAY_S  # Get Export Jobs returns the jobs of the past seven days
FILE_RETENTION_S = 7 * DAY_S  # Adobe's page says 7 days in its limits, 10 further down
STATUS_RETENTION_S = 30 * DAY_S  # status stays readable 30 days after a job ends
MAX_LIST_BATCH = 300
CSV_CONTENT_TYPE = "text/csv;charset=UTF-8"
TEXT_CONTENT_TYPE = "text/plain;charset=UTF-8"
# SSV is "semi-colon" on the Bulk Extract page and "space" on Bulk Lead Extract: semicolon here.
DELIMITERS = {"CSV": ",", "TSV": "\t", "SSV": ";"}
LIST_FILTERS = ("staticListId", "staticListName")
OTHER_FILTERS = frozenset({"createdAt", "updatedAt", "smartListId", "smartListName"})
_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")


class Status(StrEnum):
    """A job's status; the spec's enum spells "Canceled", Adobe's cancel example "Cancelled"."""

    CREATED = "Created"
    QUEUED = "Queued"
    PROCESSING = "Processing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


_STATUS_NAMES = {s.value.lower(): s for s in Status} | {"canceled": Status.CANCELLED}
_CANCELLABLE = frozenset({Status.CREATED, Status.QUEUED, Status.PROCESSING})


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """Bulk extract settings; `rows_per_s` 0 finishes a job the moment it starts."""

    # Adobe's largest example job: 122,323 records started 11:51:30, finished 12:59:30.
    rows_per_s: float = 30.0
    # "A job status does not update more frequently than once every 60 seconds"; 0 = live.
    status_interval_s: float = 60.0
    daily_bytes: int = 500 * MB  # 0 = no daily allocation
    max_running: int = 2
    max_queued: int = 10  # including the running ones


Moment = tuple[float, float]  # (monotonic, wall) seconds


@dataclass(slots=True)
class Job:
    """One export job; a moment is set when the job reached that point (or will, `finished`)."""

    export_id: str
    fields: tuple[str, ...]
    headers: tuple[str, ...]
    format: str
    list_id: int
    created: Moment
    touched_s: float  # monotonic time of the last create/enqueue/cancel: shown at once
    queued: Moment | None = None
    started: Moment | None = None
    finished: Moment | None = None  # set at start: when processing will end
    cancelled: Moment | None = None
    error: str | None = None
    file: bytes = b""
    records: int = 0

    def status_at(self, t: float) -> Status:
        """The job's status as it was at monotonic time `t`."""
        if self.cancelled is not None and self.cancelled[0] <= t:
            return Status.CANCELLED
        if self.finished is not None and self.finished[0] <= t:
            return Status.FAILED if self.error is not None else Status.COMPLETED
        if self.started is not None and self.started[0] <= t:
            return Status.PROCESSING
        if self.queued is not None and self.queued[0] <= t:
            return Status.QUEUED
        return Status.CREATED

    def ended_s(self) -> float:
        """When the job stopped holding a processing slot (infinity if it never will)."""
        ends = [m[0] for m in (self.finished, self.cancelled) if m is not None]
        return min(ends, default=math.inf)

    def view(self, t: float) -> dict[str, object]:
        """The job as the status endpoints show it at monotonic time `t` (`ExportResponse`)."""
        status = self.status_at(t)
        out: dict[str, object] = {"exportId": self.export_id, "format": self.format}
        out["status"] = status.value
        out["createdAt"] = lead_db_date(self.created[1])
        for key, moment in (("queuedAt", self.queued), ("startedAt", self.started)):
            if moment is not None and moment[0] <= t:
                out[key] = lead_db_date(moment[1])
        if status in {Status.COMPLETED, Status.FAILED} and self.finished is not None:
            out["finishedAt"] = lead_db_date(self.finished[1])
        if status is Status.COMPLETED:
            out["numberOfRecords"] = self.records
            out["fileSize"] = len(self.file)
            out["fileChecksum"] = "sha256:" + hashlib.sha256(self.file).hexdigest()
        if status is Status.FAILED:
            out["errorMsg"] = self.error
        return out


def _cell(value: object) -> str:
    # An empty field is written as the literal `null` (Adobe's Bulk Lead Extract example).
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(rows: list[list[object]], headers: tuple[str, ...], fmt: str) -> bytes:
    """The export file: a header line, one line per row, RFC 4180 quoting, UTF-8, CRLF."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITERS[fmt], lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a `Range` header asks for; None for the whole file.

    A header that is not one `bytes=a-b` range is ignored (RFC 7233); raise ValueError when the
    range starts past the end of the file (416).
    """
    match = _RANGE.match(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # a suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise ValueError(f"bytes */{size}")
    return start, end


class BulkExports:
    """Every export job of the instance, the shared queue and the daily file allocation."""

    def __init__(
        self,
        config: ExportConfig,
        store: Store,
        quota_day: QuotaDay,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.quota_day = quota_day
        self.clock = clock
        self.wall_clock = wall_clock
        self.origin_s = clock()  # status refreshes happen at origin + k * interval
        self.jobs: dict[str, Job] = {}
        self._last_start_s = -math.inf

    # --- time --------------------------------------------------------------------------

    def _now(self) -> Moment:
        return self.clock(), self.wall_clock()

    def _at(self, t: float, now: Moment) -> Moment:
        return t, now[1] + (t - now[0])

    def _tick_at_or_before(self, t: float) -> float:
        step = self.config.status_interval_s
        return t if step <= 0 else self.origin_s + math.floor((t - self.origin_s) / step) * step

    def _tick_at_or_after(self, t: float) -> float:
        step = self.config.status_interval_s
        return t if step <= 0 else self.origin_s + math.ceil((t - self.origin_s) / step) * step

    def _tick_after(self, t: float) -> float:
        step = self.config.status_interval_s
        return t if step <= 0 else self._tick_at_or_before(t) + step

    def _shown_s(self, job: Job, now_s: float) -> float:
        """The time whose state a status read shows: the last refresh, or the client's action."""
        return max(self._tick_at_or_before(now_s), job.touched_s)

    # --- processing ----------------------------------------------------------------------

    def advance(self) -> None:
        """Start and finish jobs up to now; called before every API call is answered.

        Queued jobs start, first queued first, at the first refresh after their enqueue that
        finds one of the processing slots free (Adobe's example: queued 23:14:02, started
        23:15:19), so a job shows `Queued` before `Processing`.
        """
        now = self._now()
        while True:
            waiting = [
                j for j in self.jobs.values() if j.queued and not j.started and not j.cancelled
            ]
            head = min(waiting, key=_queued_s, default=None)
            if head is None or head.queued is None:
                return
            start_s = self._slot_time(max(self._tick_after(head.queued[0]), self._last_start_s))
            if start_s > now[0]:
                return
            self._start(head, self._at(start_s, now))

    def _slot_time(self, t: float) -> float:
        """The first refresh at or after `t` when fewer than `max_running` jobs are processing."""
        while True:
            ends = [
                j.ended_s()
                for j in self.jobs.values()
                if j.started is not None and j.started[0] <= t < j.ended_s()
            ]
            if len(ends) < self.config.max_running:
                return t
            # max(): a rounding tick just below the end would find the same job running forever
            first_end = min(ends)
            t = max(self._tick_at_or_after(first_end), first_end)

    def _start(self, job: Job, at: Moment) -> None:
        """Snapshot the list's members now ("when the job begins processing") and write the file."""
        self._last_start_s = at[0]
        job.started = at
        members = self.store.members.get(job.list_id)
        if members is None:
            job.finished, job.error = at, f"Static list {job.list_id} not found"
            return
        leads = self.store.leads
        rows = []
        for lead_id in members:
            projected = project(leads[lead_id], job.fields)
            rows.append([projected.get(name) for name in job.fields])
        job.records = len(rows)
        job.file = render(rows, job.headers, job.format)
        rate = self.config.rows_per_s
        duration_s = job.records / rate if rate > 0 else 0.0
        job.finished = at[0] + duration_s, at[1] + duration_s

    def bytes_today(self, wall_s: float) -> int:
        """File bytes of the jobs completed in the current quota day (the daily allocation)."""
        now_s, key = self.clock(), self.quota_day.key(wall_s)
        return sum(
            len(j.file)
            for j in self.jobs.values()
            if j.status_at(now_s) is Status.COMPLETED
            and j.finished is not None
            and self.quota_day.key(j.finished[1]) == key
        )

    def _check_allocation(self, wall_s: float) -> None:
        limit = self.config.daily_bytes
        if limit > 0 and self.bytes_today(wall_s) >= limit:
            raise ApiError("1029", "Export daily quota exceeded")

    def _job(self, call: Call) -> Job:
        job = self.jobs.get(str(uuid.UUID(int=call.path_id)))
        now_s = self.clock()
        if job is None or now_s - job.ended_s() > STATUS_RETENTION_S:
            # Undocumented code; 1003 is the sandbox's "invalid data" for an unknown id.
            raise ApiError("1003", "Export job not found")
        return job

    # --- endpoints -----------------------------------------------------------------------

    def create(self, call: Call) -> Reply:
        """`POST /bulk/v1/leads/export/create.json`: validate the request, a `Created` job."""
        body = call.body if isinstance(call.body, dict) else {}
        fields = _fields(body.get("fields"))
        fmt = body.get("format") or "CSV"
        if not isinstance(fmt, str) or fmt.upper() not in DELIMITERS:
            raise ApiError("1003", f"Invalid format '{fmt}': one of CSV, TSV, SSV")
        headers = _headers(body.get("columnHeaderNames"), fields)
        list_id = self._filter(body.get("filter"))
        now = self._now()
        self._check_allocation(now[1])
        export_id = str(uuid.uuid4())
        job = Job(export_id, fields, headers, fmt.upper(), list_id, now, now[0])
        self.jobs[export_id] = job
        return lead_db_ok(call.rid, [job.view(now[0])])

    def _filter(self, raw: object) -> int:
        if not isinstance(raw, dict) or not raw:
            raise ApiError("701", "filter cannot be blank")
        if len(raw) > 1:
            raise ApiError("1003", "Only one filter type may be specified per export job")
        ((kind, value),) = raw.items()
        if kind in OTHER_FILTERS:
            raise ApiError(
                "1035",
                f"Unsupported filter type for target subscription: '{kind}' (the sandbox "
                "supports staticListId and staticListName)",
            )
        if kind == "staticListId":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ApiError("1001", f"Invalid value '{value}'. Required of type 'Integer'")
            found = self.store.lists.get(value)
        elif kind == "staticListName":
            found = self.store.list_by_name(value) if isinstance(value, str) else None
        else:
            raise ApiError("1003", f"Invalid filter type '{kind}'")
        if found is None:
            # Undocumented; the code Get List by Id answers for an unknown list.
            raise ApiError("1013", f"Static list not found: {value}")
        return found.id

    def enqueue(self, call: Call) -> Reply:
        """`POST .../{exportId}/enqueue.json`: `Created` → `Queued`, or 1029."""
        job = self._job(call)
        now = self._now()
        if job.status_at(now[0]) is not Status.CREATED:
            raise ApiError("1029", "Job already queued")
        waiting = sum(
            1
            for j in self.jobs.values()
            if j.status_at(now[0]) in {Status.QUEUED, Status.PROCESSING}
        )
        if waiting >= self.config.max_queued:
            raise ApiError("1029", "Too many jobs in queue")
        self._check_allocation(now[1])
        job.queued, job.touched_s = now, now[0]
        return lead_db_ok(call.rid, [job.view(now[0])])

    def status(self, call: Call) -> Reply:
        """`GET .../{exportId}/status.json`: the job as the last status refresh saw it."""
        job = self._job(call)
        return lead_db_ok(call.rid, [job.view(self._shown_s(job, self.clock()))])

    def cancel(self, call: Call) -> Reply:
        """`POST .../{exportId}/cancel.json`: a job not yet ended becomes `Cancelled`."""
        job = self._job(call)
        now = self._now()
        status = job.status_at(now[0])
        if status not in _CANCELLABLE:
            raise ApiError("1003", f"Export job is {status.value}; it cannot be cancelled")
        job.cancelled, job.touched_s = now, now[0]
        return lead_db_ok(call.rid, [job.view(now[0])])

    def file(self, call: Call) -> Reply:
        """`GET .../{exportId}/file.json`: the file of a completed job, whole or a `Range`."""
        job = self.jobs.get(str(uuid.UUID(int=call.path_id)))
        now_s = self.clock()
        if job is None or now_s - job.ended_s() > FILE_RETENTION_S:
            return _not_found("Export job not found")
        if job.status_at(now_s) is not Status.COMPLETED:
            return _not_found(f"Export job {job.export_id} is not completed")
        size = len(job.file)
        try:
            wanted = byte_range(call.headers.get("Range"), size)
        except ValueError as unsatisfiable:
            refused = (("Content-Range", str(unsatisfiable)),)
            body = b"Requested range not satisfiable"
            return Reply(416, body, "http416", TEXT_CONTENT_TYPE, refused)
        if wanted is None:
            return Reply(200, job.file, "ok", CSV_CONTENT_TYPE, (("Accept-Ranges", "bytes"),))
        start, end = wanted
        headers = (("Accept-Ranges", "bytes"), ("Content-Range", f"bytes {start}-{end}/{size}"))
        return Reply(206, job.file[start : end + 1], "ok", CSV_CONTENT_TYPE, headers)

    def list_jobs(self, call: Call) -> Reply:
        """`GET /bulk/v1/leads/export.json`: the past seven days' jobs, by `status`, paged."""
        now_s = self.clock()
        wanted = set()
        for name in values(call, "status"):
            status = _STATUS_NAMES.get(name.lower())
            if status is None:
                raise ApiError("1003", f"Invalid status '{name}'")
            wanted.add(status)
        batch_size = int_param(call, "batchSize", MAX_LIST_BATCH, MAX_LIST_BATCH)
        found = []
        for job in self.jobs.values():
            if now_s - job.created[0] > LIST_WINDOW_S:
                continue
            shown = self._shown_s(job, now_s)
            if not wanted or job.status_at(shown) in wanted:
                found.append(job.view(shown))
        chunk, extra = page(found, call, batch_size)
        return lead_db_ok(call.rid, list(chunk), **extra)

    # --- inspection ----------------------------------------------------------------------

    def state(self) -> dict[str, object]:
        """The jobs as they really are (not as the last refresh showed them), for tests."""
        self.advance()
        now_s, wall_s = self._now()
        jobs = []
        for job in self.jobs.values():
            moments = {
                "createdAt": job.created,
                "queuedAt": job.queued,
                "startedAt": job.started,
                "finishedAt": job.finished,
                "cancelledAt": job.cancelled,
            }
            entry: dict[str, object] = {
                "exportId": job.export_id,
                "status": job.status_at(now_s).value,
                "shownStatus": job.status_at(self._shown_s(job, now_s)).value,
                "fields": list(job.fields),
                "format": job.format,
                "staticListId": job.list_id,
                "numberOfRecords": job.records,
                "fileSize": len(job.file),
                "errorMsg": job.error,
            }
            entry |= {k: None if m is None else m[1] for k, m in moments.items()}
            jobs.append(entry)
        return {"exports": jobs, "exportBytesToday": self.bytes_today(wall_s)}


def _queued_s(job: Job) -> float:
    return math.inf if job.queued is None else job.queued[0]


def _not_found(message: str) -> Reply:
    """The file endpoints' 404: a plain-text message, not Marketo's JSON envelope."""
    return Reply(404, message.encode(), "http404", TEXT_CONTENT_TYPE)


def _fields(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ApiError("701", "fields cannot be blank")
    for name in raw:
        if not isinstance(name, str) or name not in catalogue.BY_NAME:
            raise ApiError("1006", f"Field '{name}' not found")
    return tuple(raw)


def _headers(raw: object, fields: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return fields
    if not isinstance(raw, Mapping) or not all(isinstance(v, str) for v in raw.values()):
        raise ApiError("1003", "columnHeaderNames must map field names to header names")
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise ApiError("1003", f"columnHeaderNames names a field not exported: '{unknown[0]}'")
    return tuple(raw.get(name, name) for name in fields)


def register(router: Router, exports: BulkExports) -> None:
    """Add the Bulk Lead Extract endpoints (named after the spec's operation ids)."""
    job = "/bulk/v1/leads/export/{uuid}"
    table = (
        ("POST", "/bulk/v1/leads/export/create.json", "createExportLeads", exports.create),
        ("POST", f"{job}/enqueue.json", "enqueueExportLeads", exports.enqueue),
        ("GET", f"{job}/status.json", "getExportLeadsStatus", exports.status),
        ("GET", f"{job}/file.json", "getExportLeadsFile", exports.file),
        ("POST", f"{job}/cancel.json", "cancelExportLeads", exports.cancel),
        ("GET", "/bulk/v1/leads/export.json", "getExportLeads", exports.list_jobs),
    )
    for method, path, name, handler in table:
        router.add(method, path, Route(name, handler, Body.QUERY if method == "GET" else Body.JSON))
