"""The bulk lane's shell: a `BulkJob` the outbox hands out, run as Marketo bulk imports.

A job is one more call (worker.core.outbox): its entries are in flight from the moment it is
taken until it comes back whole. Here it is built into import files (worker.core.bulk_csv, the
records the REST path's `LeadFields.record` makes), and then run step by step, one HTTP request
at a time, each step a task of the flusher started when the injected clock says it is due: so a
job waiting minutes for Marketo holds no slot and no task, and the stream's calls never queue
behind it. The files of one job go one after the other (one import per list in flight).

Steps: submit a file (1016, the instance's import queue full: wait, longer each time, and submit
again, never fail) -> poll its status with a growing interval -> Complete: read the failures
(and warnings) file when the counters say there is one -> the next file, or the job settles: each
failed row a rejection with Marketo's reason, every other entry an acknowledged member. Failed,
or vanished (1013 on the status), or refused as a whole: the job is put back and the list's bulk
lane waits. A transport error or a retriable Marketo error repeats the step after a backoff.

Queue headroom: Marketo's import queue (2 importing, 10 in all) is the instance's, shared with
every other integration. A file is submitted only while this replica has fewer imports there
than `slots()` (its partitions' share of `marketo.budget.bulk_imports`, at least one, as the
budget splits calls); the other jobs wait their turn here, holding no call. One 1016 holds back
every job's submit.

Nothing is written about a job beyond the states the outbox settles: a crash or a stop during
one leaves its memberships unacknowledged, so the partition's next restore sends them again,
by bulk import again (an upsert and a list add are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from worker.core.bulk_csv import ImportFile, import_files, read_failures, read_warnings
from worker.core.ids import AudienceId, ListId
from worker.core.outbox import BulkJob, Outbox, Settled
from worker.core.profile import ProfileState
from worker.core.store import StateStore
from worker.errors import BatchNotFound, ImportQueueFull, MarketoError, RequestRejected

log = structlog.get_logger("worker.bulk_lane")

# 1016: others' imports must finish first (Marketo's take minutes): a submit is tried again
# after this, doubling up to the most, so a long-full queue costs a call a minute
QUEUE_FULL_FIRST_S = 5.0
QUEUE_FULL_MAX_S = 60.0
POLL_FIRST_S = 2.0  # the first status poll after a submit ...
POLL_MAX_S = 30.0  # ... doubling up to this: a long import costs a poll per half minute
RETRY_FIRST_S = 1.0  # a step that failed in transit is sent again after this, doubling ...
RETRY_MAX_S = 60.0  # ... up to this
DEFAULT_SLOTS = 3  # the default of marketo.budget.bulk_imports
PAUSE_S = 60.0  # a list whose job failed or was refused sends no job for this long (REST does)
FAILED_ROW = "bulk_import_failure"  # the rejection code of a row in the failures file

Row = tuple[str, str, str]  # status, reason code, reason message (a list call's result row)
ADDED: Row = ("added", "", "")


class ImportProgress(Protocol):
    """A bulk import's status (worker.marketo.responses.ImportStatus)."""

    @property
    def status(self) -> str: ...
    @property
    def rows_failed(self) -> int: ...
    @property
    def rows_warned(self) -> int: ...
    @property
    def message(self) -> str | None: ...


class BulkWriter(Protocol):
    """Marketo's bulk import calls (implemented by worker.marketo.bulk.BulkClient)."""

    async def import_leads(
        self, csv: bytes, *, lookup_field: str, list_id: ListId | None = None
    ) -> int: ...
    async def import_status(self, batch_id: int) -> ImportProgress: ...
    async def import_failures(self, batch_id: int) -> bytes | None: ...
    async def import_warnings(self, batch_id: int) -> bytes | None: ...


class JobWatch(Protocol):
    """Where the lane reports its jobs (worker.telemetry.observer.BulkMetrics)."""

    def job_moved(self, before: str | None, after: str) -> None: ...
    def rows(self, imported: int, failed: int, warned: int) -> None: ...


class _Unwatched:
    def job_moved(self, before: str | None, after: str) -> None:
        """Report nothing."""

    def rows(self, imported: int, failed: int, warned: int) -> None:
        """Report nothing."""


class Fields(Protocol):
    """How a profile becomes a person record (worker.flusher.LeadFields)."""

    @property
    def lookup_field(self) -> str: ...
    def record(
        self, email: str, state: ProfileState | None
    ) -> tuple[dict[str, object], list[tuple[str, str]]]: ...


@dataclass(slots=True)
class _Run:
    """A job in flight: its files, where it is, and each entry's result so far."""

    job: BulkJob
    files: list[ImportFile]
    owners: list[int]  # per record written, the index of its entry in job.taken
    results: list[Row]
    started: float
    file: int = 0
    batch: int | None = None  # the batch of the current file, once submitted
    due: float = 0.0  # when the next step may start, on the flusher's clock
    poll_s: float = POLL_FIRST_S
    retry_s: float = RETRY_FIRST_S
    busy: bool = False  # a step's request is out
    warned: int = 0
    polls: int = 0
    calls: int = 0
    state: str | None = None  # queued, importing (as the metrics name it), once reported


@dataclass(slots=True)
class BulkLane:
    """The jobs in flight, one per list, and what each step does to them."""

    outbox: Outbox
    writer: BulkWriter
    store: StateStore
    fields: Fields
    list_ids: Mapping[AudienceId, ListId]
    clock: Callable[[], float]
    spawn: Callable[[Coroutine[Any, Any, None]], None]  # runs a step as one of the flusher's tasks
    apply: Callable[[Settled], None]
    # how many imports this replica may have in Marketo's queue now (module docstring)
    slots: Callable[[], int] = lambda: DEFAULT_SLOTS
    runs: dict[AudienceId, _Run] = field(default_factory=dict)
    paused_until: dict[AudienceId, float] = field(default_factory=dict)
    queue_full_until: float = 0.0  # after a 1016, no submit before this (on the clock)
    queue_full_s: float = QUEUE_FULL_FIRST_S  # the wait after the next 1016
    watch: JobWatch = field(default_factory=_Unwatched)

    def paused(self, now: float) -> set[AudienceId]:
        """The lists that send no new job now: one in flight, or a recent one failed."""
        waiting = {a for a, until in self.paused_until.items() if until > now}
        return waiting | set(self.runs)

    def begin(self, job: BulkJob) -> None:
        """Build the job's files and start its first step; a job with no row settles at once."""
        rows: list[Row] = [ADDED] * len(job.taken)
        records: list[Mapping[str, object]] = []
        owners: list[int] = []
        for index, item in enumerate(job.taken):
            state = self.store.get(item.key)
            if state is None or state.email is None:
                continue  # nothing of it to settle: dropped with its partition, or no person
            record, refusals = self.fields.record(state.email, state)
            if refusals:  # as the REST path: a value Marketo would refuse is never sent
                message = "; ".join(f"{name}: {reason}" for name, reason in refusals)
                rows[index] = ("skipped", "invalid_value", message)
                continue
            records.append(record)
            owners.append(index)
        files = import_files(records, lookup_field=self.fields.lookup_field)
        run = _Run(job, files, owners, rows, started=self.clock())
        if not files:
            self._finish(run)
            return
        self.runs[job.audience] = run
        self._move(run, "queued")
        log.info("bulk.job_queued", audience=job.audience, rows=len(records), files=len(files))
        self.start_due(self.clock())

    @property
    def running(self) -> bool:
        """Tell whether a job is in flight."""
        return bool(self.runs)

    def in_queue(self) -> int:
        """This replica's imports in Marketo's queue, or being submitted there."""
        return sum(1 for run in self.runs.values() if run.batch is not None or run.busy)

    def start_due(self, now: float) -> None:
        """Start the next step of every job whose step is due and not already out; a submit
        only while the queue has room for this replica (oldest job first)."""
        slots = self.slots()
        free = slots - self.in_queue()
        for run in list(self.runs.values()):
            if run.busy or run.due > now:
                continue
            # a submit: within the headroom, and not just refused. No slot at all: no partition
            # left, so the submit only finds the job abandoned and puts it back, with no call
            if run.batch is None and slots > 0:
                if free <= 0 or now < self.queue_full_until:
                    continue
                free -= 1
            run.busy = True
            self.spawn(self._step(run))

    async def _step(self, run: _Run) -> None:
        try:
            if run.batch is None:
                await self._submit(run)
            else:
                await self._poll(run)
        except ImportQueueFull:  # never a failure: every job submits again later
            wait_s = self.queue_full_s
            self.queue_full_until = max(self.queue_full_until, self.clock() + wait_s)
            self.queue_full_s = min(2 * wait_s, QUEUE_FULL_MAX_S)
            log.info("bulk.queue_full", audience=run.job.audience, wait_s=wait_s)
        except (BatchNotFound, RequestRejected) as exc:
            self._put_back(run, str(exc))
        except (MarketoError, OSError, TimeoutError) as exc:
            run.due, run.retry_s = self.clock() + run.retry_s, min(2 * run.retry_s, RETRY_MAX_S)
            log.warning("bulk.step_retry", audience=run.job.audience, error=str(exc))
        except Exception:  # a bug must not strand the job: its entries would stay in flight
            log.exception("bulk.step_failed", audience=run.job.audience)
            self._put_back(run, "internal error")
        finally:
            run.busy = False

    async def _submit(self, run: _Run) -> None:
        if not self.outbox.still_ours(run.job):
            # a partition of it was revoked: its new owner sends those, the rest go back
            self._put_back(run, "abandoned: a partition was revoked")
            return
        audience = run.job.audience
        run.calls += 1
        run.batch = await self.writer.import_leads(
            run.files[run.file].data,
            lookup_field=self.fields.lookup_field,
            list_id=self.list_ids[audience],
        )
        run.due, run.poll_s, run.retry_s = self.clock() + POLL_FIRST_S, POLL_FIRST_S, RETRY_FIRST_S
        self.queue_full_s = QUEUE_FULL_FIRST_S  # the queue had room: the next 1016 waits short

    async def _poll(self, run: _Run) -> None:
        assert run.batch is not None
        run.calls += 1
        run.polls += 1
        status = await self.writer.import_status(run.batch)
        run.retry_s = RETRY_FIRST_S
        if status.status == "Failed":
            self._put_back(run, status.message or "the import failed")
            return
        if status.status != "Complete":
            self._move(run, "importing" if status.status == "Importing" else "queued")
            run.poll_s = min(2 * run.poll_s, POLL_MAX_S)
            run.due = self.clock() + run.poll_s
            return
        if status.rows_failed:
            run.calls += 1
            self._failed_rows(run, await self.writer.import_failures(run.batch))
        if status.rows_warned:  # imported all the same: counted and logged, never a rejection
            run.calls += 1
            warnings = await self.writer.import_warnings(run.batch)
            lookup = self.fields.lookup_field
            run.warned += len(read_warnings(warnings, lookup_field=lookup)) if warnings else 0
        run.file, run.batch = run.file + 1, None
        if run.file == len(run.files):
            del self.runs[run.job.audience]
            self._finish(run)
        else:
            run.due = self.clock()

    def _failed_rows(self, run: _Run, data: bytes | None) -> None:
        """Each row of the failures file a rejection of every entry written under its value."""
        if data is None:
            return
        written = run.files[run.file].rows
        folded = {value.lower(): records for value, records in written.items()}
        for value, reason in read_failures(data, lookup_field=self.fields.lookup_field):
            records = written.get(value) or folded.get(value.lower(), ())
            for record in records:
                run.results[run.owners[record]] = ("skipped", FAILED_ROW, reason)

    def _move(self, run: _Run, state: str) -> None:
        # forward only: the next file of a job queued again does not count the job twice
        if state != run.state and not (state == "queued" and run.state == "importing"):
            self.watch.job_moved(run.state, state)
            run.state = state

    def _finish(self, run: _Run) -> None:
        settled = self.outbox.settle_bulk_job(run.job, run.results)
        failed = sum(1 for status, _, _ in run.results if status != "added")
        if run.files:  # a job none of whose rows could be written was never Marketo's
            self._move(run, "complete")
            self.watch.rows(len(run.results) - failed, failed, run.warned)
        log.info(
            "bulk.job_completed",
            audience=run.job.audience,
            rows=len(run.results),
            failed=failed,
            warned=run.warned,
            calls=run.calls,
            polls=run.polls,
            seconds=round(self.clock() - run.started, 1),
        )
        self.apply(settled)

    def _put_back(self, run: _Run, reason: str) -> None:
        audience = run.job.audience
        self.runs.pop(audience, None)
        self.outbox.retry_later(run.job)
        self.paused_until[audience] = self.clock() + PAUSE_S
        self._move(run, "failed")
        seconds = round(self.clock() - run.started, 1)
        log.warning(
            "bulk.job_failed",
            audience=audience,
            rows=len(run.job.taken),
            reason=reason,
            seconds=seconds,
        )
