"""Bulk Lead Import (`/bulk/v1/leads.json`): the FIFO job queue, row processing, status and files.

Time is the sandbox's injected clock: `advance(now)` brings every job to where it would be by
`now` at `rows_per_s` rows a second per running job, so nothing sleeps and fake time drives it.
docs/marketo-facts.md ("Bulk Lead Import") lists the Marketo behaviour emulated here.
"""

import csv
import io
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from worker.sandbox import sync
from worker.sandbox.catalogue import BY_NAME, SEARCHABLE, coerce
from worker.sandbox.envelope import ApiError, Reply, http_error, lead_db_ok
from worker.sandbox.multipart import Form
from worker.sandbox.params import Call
from worker.sandbox.routes import Body
from worker.sandbox.store import Store

PATH = "/bulk/v1/leads.json"
MAX_BODY_BYTES = 10_000_000  # "less than 10 MB": 10,000,000 bytes or more gets HTTP 413
MAX_RUNNING = 2
MAX_QUEUED = 10  # including the running ones; the next import gets 1016
BATCH_TTL_S = 7 * 86_400.0  # "the batchId remains valid for seven days"
# Adobe publishes no speed; a peer reports under 10,000 contacts in 15-30 minutes.
DEFAULT_ROWS_PER_S = 10.0
FAILURE_COLUMN = "Import Failure Reason"
WARNING_COLUMN = "Import Warning Reason"
FILE_CONTENT_TYPE = "text/csv;charset=UTF-8"
DELIMITERS = {"csv": ",", "tsv": "\t", "ssv": ";"}  # ssv is semicolon on the import pages
DEFAULT_PARTITION = "Default"
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


class Status(StrEnum):
    """A batch's status, as Marketo spells it."""

    QUEUED = "Queued"
    IMPORTING = "Importing"
    COMPLETE = "Complete"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """What one create call asked for."""

    format: str
    lookup: str
    list_id: int | None
    partition: str | None


@dataclass(slots=True)
class Job:
    """One import batch and its progress."""

    batch_id: int
    spec: ImportSpec
    header: list[str]
    rows: list[list[str]]
    queued_s: float
    status: Status = Status.QUEUED
    started_s: float | None = None
    finished_s: float | None = None
    done: int = 0  # rows handled, imported or failed
    imported: int = 0
    failures: list[tuple[list[str], str]] = field(default_factory=list)
    warnings: list[tuple[list[str], str]] = field(default_factory=list)
    message: str | None = None

    def result(self) -> dict[str, object]:
        """The status `result[0]`: counters so far and, once finished, the message."""
        out: dict[str, object] = {
            "batchId": self.batch_id,
            "importId": str(self.batch_id),
            "status": str(self.status),
            # Adobe's example: 2 imported and 1 failed gives numOfLeadsProcessed 2.
            "numOfLeadsProcessed": self.imported,
            "numOfRowsFailed": len(self.failures),
            "numOfRowsWithWarning": len(self.warnings),
        }
        if self.message is not None:
            out["message"] = self.message
        return out

    def as_json(self) -> dict[str, object]:
        """The job for `/_sandbox/state`."""
        return {
            **self.result(),
            "format": self.spec.format,
            "lookupField": self.spec.lookup,
            "listId": self.spec.list_id,
            "partitionName": self.spec.partition,
            "rows": len(self.rows),
            "queuedAt": self.queued_s,
            "startedAt": self.started_s,
            "finishedAt": self.finished_s,
        }


class BulkImports:
    """Every import batch of the instance: at most 2 importing, at most 10 unfinished."""

    def __init__(
        self, store: Store, clock: Callable[[], float], rows_per_s: float = DEFAULT_ROWS_PER_S
    ) -> None:
        if rows_per_s <= 0:
            raise ValueError("rows_per_s must be positive")
        self.store = store
        self.clock = clock  # the sandbox's monotonic clock: queueing and progress run on it
        self.rows_per_s = rows_per_s
        self.jobs: dict[int, Job] = {}
        self.waiting: deque[Job] = deque()
        self.running: list[Job] = []
        self._freed_s = [float("-inf")] * MAX_RUNNING  # when each free slot became free
        self.next_batch_id = 1

    def unfinished(self) -> int:
        """Jobs queued or importing (what the 10-job limit counts)."""
        return len(self.waiting) + len(self.running)

    def submit(self, spec: ImportSpec, header: list[str], rows: list[list[str]]) -> Job:
        """Queue a new job now (the caller has checked the queue has room)."""
        job = Job(self.next_batch_id, spec, header, rows, self.clock())
        self.next_batch_id += 1
        self.jobs[job.batch_id] = job
        self.waiting.append(job)
        return job

    def reject(self, spec: ImportSpec, message: str) -> Job:
        """Record a job that fails at creation (its target does not exist): never queued."""
        now_s = self.clock()
        job = Job(self.next_batch_id, spec, [], [], now_s, Status.FAILED, now_s, now_s)
        job.message = message
        self.next_batch_id += 1
        self.jobs[job.batch_id] = job
        return job

    def advance(self, now_s: float, wall_s: float) -> None:
        """Process every job as far as `now_s`, starting waiting jobs as slots free."""
        if not self.running and not self.waiting:
            self._expire(now_s)
            return
        while True:
            self._start_waiting()
            finished = [job for job in self.running if self._process(job, now_s, wall_s)]
            if not finished:
                break
            for job in finished:
                self.running.remove(job)
                self._freed_s.append(job.finished_s if job.finished_s is not None else now_s)
        self._expire(now_s)

    def _start_waiting(self) -> None:
        while self.waiting and self._freed_s:
            freed = min(self._freed_s)
            self._freed_s.remove(freed)
            job = self.waiting.popleft()
            job.status, job.started_s = Status.IMPORTING, max(freed, job.queued_s)
            self.running.append(job)

    def _process(self, job: Job, now_s: float, wall_s: float) -> bool:
        """Handle the rows due by `now_s`; True when the job has finished."""
        started = job.started_s if job.started_s is not None else now_s
        total = len(job.rows)
        end_s = started + total / self.rows_per_s
        due = total if now_s >= end_s else min(total, int((now_s - started) * self.rows_per_s))
        while job.done < due:
            if job.spec.list_id is not None and job.spec.list_id not in self.store.lists:
                job.finished_s = started + job.done / self.rows_per_s
                job.status, job.message = Status.FAILED, "Import failed: static list not found"
                return True
            self._row(job, job.rows[job.done], wall_s)
            job.done += 1
        if job.done < total:
            return False
        job.status, job.finished_s, job.message = Status.COMPLETE, end_s, _summary(job)
        return True

    def _row(self, job: Job, row: list[str], wall_s: float) -> None:
        reason = _row_problem(job.header, row)
        if reason is not None:
            job.failures.append((row, reason))
            return
        record: dict[str, object] = {k: v for k, v in zip(job.header, row, strict=True) if v}
        action = "updateOnly" if job.spec.lookup == "id" else "createOrUpdate"
        outcome = sync.sync_one(self.store, record, action, job.spec.lookup, wall_s)
        lead_id = outcome.get("id")
        if not isinstance(lead_id, int):
            reasons = outcome.get("reasons")
            first = reasons[0] if isinstance(reasons, list) and reasons else {}
            job.failures.append((row, str(first.get("message", "Import failed"))))
            return
        job.imported += 1
        if job.spec.list_id is not None:
            self.store.members[job.spec.list_id][lead_id] = None
        email = record.get("email")
        if isinstance(email, str) and not _EMAIL_SHAPE.match(email.strip()):
            job.warnings.append((row, "Invalid email address"))

    def _expire(self, now_s: float) -> None:
        # Jobs are in creation order, so only the oldest need looking at (this runs every call).
        while self.jobs:
            job = next(iter(self.jobs.values()))
            if job.finished_s is None or now_s - job.queued_s <= BATCH_TTL_S:
                return
            del self.jobs[job.batch_id]

    def as_json(self) -> list[dict[str, object]]:
        """Every job, oldest first, for `/_sandbox/state`."""
        return [job.as_json() for job in self.jobs.values()]


def _summary(job: Job) -> str:
    # Adobe's examples; "(N members)" is undocumented and always equals the imported count there.
    imported = f"{job.imported} records imported ({job.imported} members)"
    if job.failures:
        return f"Import completed with errors, {imported}, {len(job.failures)} failed"
    return f"Import succeeded, {imported}"


def _row_problem(header: list[str], row: list[str]) -> str | None:
    """Why a row cannot be imported before any lookup: its shape or a value's data type."""
    if len(row) != len(header):
        return f"Invalid row: {len(row)} values for {len(header)} columns"
    for name, value in zip(header, row, strict=True):
        definition = BY_NAME[name]
        if value and not coerce(definition, value)[0]:
            return f"Invalid data type in field {definition.display_name}"
    return None


def _param(call: Call, name: str) -> str | None:
    # From the query string or a multipart form field: production clients use both.
    found = call.params.get(name)
    return found if found else None


def _spec(call: Call) -> ImportSpec:
    fmt = (_param(call, "format") or "csv").lower()
    if fmt not in DELIMITERS:
        raise ApiError("1003", f"Invalid format '{fmt}': csv, tsv or ssv")
    lookup = _param(call, "lookupField") or "email"
    if lookup not in SEARCHABLE:
        raise ApiError("1011", f"Field '{lookup}' not supported for lookup")
    raw_list = _param(call, "listId")
    list_id = None
    if raw_list is not None:
        if not raw_list.strip().isdigit():
            raise ApiError("1001", f"Invalid value '{raw_list}'. Required of type 'Integer'")
        list_id = int(raw_list)
    return ImportSpec(fmt, lookup, list_id, _param(call, "partitionName"))


def read_file(data: bytes, spec: ImportSpec) -> tuple[list[str], list[list[str]]]:
    """Parse an import file (RFC 4180 quoting, UTF-8): its checked header and its rows."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError("1003", "Invalid file: not UTF-8") from exc
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[spec.format])
    try:
        lines = [line for line in reader if line]
    except csv.Error as exc:
        raise ApiError("1003", f"Invalid file: {exc}") from exc
    if not lines:
        raise ApiError("1003", "Invalid file: no header row")
    header = [name.strip() for name in lines[0]]
    _check_header(header, spec)
    return header, lines[1:]


def _check_header(header: list[str], spec: ImportSpec) -> None:
    if len(set(header)) != len(header):
        raise ApiError("1003", "Invalid file: a column appears twice")
    for name in header:
        definition = BY_NAME.get(name)
        if definition is None:
            raise ApiError("1006", f"Field '{name}' not found")
        if name == "id" and spec.lookup != "id":
            raise ApiError("1003", "Field 'id' is allowed only with lookupField 'id'")
        if definition.read_only:
            raise ApiError("1003", f"Field '{name}' is read-only")


def create(imports: BulkImports, call: Call) -> Reply:
    """`POST /bulk/v1/leads.json`: queue an import (1016 when 10 are unfinished)."""
    spec = _spec(call)
    form = call.body if isinstance(call.body, Form) else Form()
    part = form.file("file")
    if part is None:
        raise ApiError("701", "file cannot be blank")
    if imports.unfinished() >= MAX_QUEUED:
        raise ApiError("1016", "Too many imports")
    header, rows = read_file(part.data, spec)
    store = imports.store
    if spec.list_id is not None and spec.list_id not in store.lists:
        job = imports.reject(spec, "Import failed: static list not found")
    elif spec.partition not in (None, DEFAULT_PARTITION):
        job = imports.reject(spec, f"Import failed: partition '{spec.partition}' not found")
    else:
        job = imports.submit(spec, header, rows)
    created = {"batchId": job.batch_id, "importId": str(job.batch_id), "status": str(job.status)}
    if job.message is not None:
        created["message"] = job.message
    return lead_db_ok(call.rid, [created])


def _job(imports: BulkImports, call: Call) -> Job | None:
    return imports.jobs.get(call.path_id)


def status(imports: BulkImports, call: Call) -> Reply:
    """`GET /bulk/v1/leads/batch/{id}.json`: the status and the running counters."""
    job = _job(imports, call)
    if job is None:
        raise ApiError("1013", "Import batch not found")
    return lead_db_ok(call.rid, [job.result()])


def _file(job: Job | None, warnings: bool) -> Reply:
    rows = (job.warnings if warnings else job.failures) if job is not None else []
    if job is None or not rows:
        return http_error(404, "Not Found")
    out = io.StringIO()
    writer = csv.writer(out, delimiter=DELIMITERS[job.spec.format])
    writer.writerow([*job.header, WARNING_COLUMN if warnings else FAILURE_COLUMN])
    for row, reason in rows:
        writer.writerow([*row, reason])
    return Reply(200, out.getvalue().encode(), "ok", FILE_CONTENT_TYPE)


def failures(imports: BulkImports, call: Call) -> Reply:
    """`GET …/batch/{id}/failures.json`: failed rows plus their reason; 404 when there are none."""
    return _file(_job(imports, call), warnings=False)


def warnings(imports: BulkImports, call: Call) -> Reply:
    """`GET …/batch/{id}/warnings.json`: warned rows plus their reason; 404 when there are none."""
    return _file(_job(imports, call), warnings=True)


ROUTES = (
    ("POST", PATH, "importLeads", create, Body.MULTIPART),
    ("GET", "/bulk/v1/leads/batch/{id}.json", "importLeadStatus", status, Body.QUERY),
    ("GET", "/bulk/v1/leads/batch/{id}/failures.json", "importLeadFailures", failures, Body.QUERY),
    ("GET", "/bulk/v1/leads/batch/{id}/warnings.json", "importLeadWarnings", warnings, Body.QUERY),
)
