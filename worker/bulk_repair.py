"""A repair's large add set as bulk imports run to completion, for `resync`.

A list whose persons to add reach `flush.bulk_threshold` gets them as import files with the
list's id (worker/core/bulk_csv.py, the records a lead sync would send) instead of lead syncs
and list adds: a handful of calls per 10 MB file whatever its rows, against 2 per 300 persons.
Files go one after the other (one import per list in flight). 1016 (Marketo's import queue full,
shared with every other integration) is waited out, longer each time, never a failure; the
status is polled with a growing interval; a failed row is a refusal with Marketo's reason; a
Failed or vanished import stops the run (running again is safe: an upsert and a list add are
idempotent). `sleep` and `clock` are injected for tests.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog

from worker.bulk_lane import (
    FAILED_ROW,
    POLL_FIRST_S,
    POLL_MAX_S,
    QUEUE_FULL_FIRST_S,
    QUEUE_FULL_MAX_S,
    BulkWriter,
    Fields,
)
from worker.core import drift
from worker.core.bulk_csv import ImportFile, import_files, read_failures
from worker.core.ids import ListId
from worker.core.profile import ProfileState
from worker.errors import ImportQueueFull, MarketoError
from worker.telemetry.logging import email_hash

log = structlog.get_logger("worker.resync")
Sleep = Callable[[float], Awaitable[None]]


class BulkRepair:
    """Adds persons to a list by bulk import; counts `added` and `refused` in a tally."""

    def __init__(
        self,
        writer: BulkWriter,
        fields: Fields,
        states: Mapping[str, ProfileState],
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.writer = writer
        self.fields = fields
        self.states = states
        self.sleep = sleep
        self.clock = clock

    async def add(
        self, list_id: ListId, wanted: Sequence[drift.Wanted], tally: Counter[str]
    ) -> None:
        """Import every wanted person into the list; a mapped value Marketo would refuse is
        never sent (refused, as the REST repair does)."""
        records: list[Mapping[str, object]] = []
        for person in wanted:
            record, refusals = self.fields.record(person.email, self.states.get(person.email))
            if refusals:
                tally["refused"] += 1
                log.warning(
                    "resync.sync_refused", code="invalid_value", email=email_hash(person.email)
                )
                continue
            records.append(record)
        started = self.clock()
        files = import_files(records, lookup_field=self.fields.lookup_field)
        for file in files:
            failed = await self._import(list_id, file)
            written = sum(len(indexes) for indexes in file.rows.values())
            tally["added"] += written - failed
            if failed:
                tally["refused"] += failed
        log.info(
            "resync.list_imported",
            list_id=list_id,
            rows=len(records),
            files=len(files),
            seconds=round(self.clock() - started, 1),
        )

    async def _import(self, list_id: ListId, file: ImportFile) -> int:
        """Run one file's import to its end; return how many records its failed rows carry."""
        batch = await self._submit(list_id, file)
        wait_s = POLL_FIRST_S
        while True:
            await self.sleep(wait_s)
            status = await self.writer.import_status(batch)
            if status.status == "Failed":
                raise MarketoError("import_failed", f"import {batch}: {status.message}")
            if status.status == "Complete":
                break
            wait_s = min(2 * wait_s, POLL_MAX_S)
        if not status.rows_failed:
            return 0
        data = await self.writer.import_failures(batch)
        return self._failed(file, data) if data else 0

    async def _submit(self, list_id: ListId, file: ImportFile) -> int:
        wait_s = QUEUE_FULL_FIRST_S
        while True:
            try:
                return await self.writer.import_leads(
                    file.data, lookup_field=self.fields.lookup_field, list_id=list_id
                )
            except ImportQueueFull:  # others' imports fill Marketo's queue: wait, never fail
                log.info("resync.import_queue_full", list_id=list_id, wait_s=wait_s)
                await self.sleep(wait_s)
                wait_s = min(2 * wait_s, QUEUE_FULL_MAX_S)

    def _failed(self, file: ImportFile, data: bytes) -> int:
        """Log each failed row's reason; return how many records they carry."""
        folded = {value.lower(): indexes for value, indexes in file.rows.items()}
        failed = 0
        for value, reason in read_failures(data, lookup_field=self.fields.lookup_field):
            indexes = file.rows.get(value) or folded.get(value.lower(), ())
            failed += len(indexes)
            log.warning("resync.refused", op="add", code=FAILED_ROW, reason=reason)
        return failed
