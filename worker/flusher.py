"""Turn due buffers into Marketo calls, and Marketo's answers into state and rejections.

At most `max_in_flight` calls run at once; each new one is taken from the outbox only when a
slot is free and the budget has room for it to start at once (`room`, the limiter's), so
entries keep coalescing while they wait, budget goes to the fullest buffers first (the most
records per call), and no call taken early waits for the window ahead of a later, more urgent
one (a streamed change behind a backlog). A backlog's call also leaves free the part of the
window the stream is expected to need (worker.core.stream_reserve). A shutdown's drain
takes calls regardless. A call
that still fails after the client's retries is put back (its offsets stay held); one Marketo
refuses for good becomes rejections. The outbox keeps the offset holds: a call is only ever
handed back to it, settled or not.

Each call is asked of one lane, the stream's or the backlog's, in the order the outbox's
`Turns` gives (docs/message-flow.md, fair share): a backlog of thousands never holds back a
streamed change by more than one call, and the backlog gets at least half while both have work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from worker.bulk_lane import DEFAULT_SLOTS, BulkLane, BulkWriter
from worker.core.buffers import Lane
from worker.core.fields import Converter
from worker.core.ids import AudienceId, LeadId, ListId, Op, ProfileId
from worker.core.outbox import (
    BulkJob,
    Call,
    EraseCall,
    LeadSyncCall,
    ListCall,
    Outbox,
    Rejection,
    Settled,
    Turns,
)
from worker.core.profile import Outcome, ProfileState, Unmatched
from worker.core.store import StateStore
from worker.errors import CallAbandoned, MarketoError, QuotaExhausted, RequestRejected
from worker.telemetry.metrics import Metrics
from worker.telemetry.observer import BulkMetrics

log = structlog.get_logger("worker.flusher")


class RecordResult(Protocol):
    """One record's outcome in a Marketo answer (worker.marketo.responses.RecordResult)."""

    @property
    def status(self) -> str: ...
    @property
    def lead_id(self) -> LeadId | None: ...
    @property
    def reasons(self) -> Sequence[tuple[str, str]]: ...


Wanted = Callable[[], bool] | None  # asked before each attempt: False abandons the call


class ListWriter(Protocol):
    """The Marketo calls the flusher makes (implemented by worker.marketo.client)."""

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> Sequence[RecordResult]: ...
    async def add_to_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> Sequence[RecordResult]: ...
    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> Sequence[RecordResult]: ...
    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> Sequence[RecordResult]: ...


class CallRoom(Protocol):
    """The budget's room for a lane's next call (implemented by worker.marketo.limiter)."""

    def room(self, lane: Lane) -> int: ...
    def taken(self, lane: Lane) -> None: ...


class RejectionSink(Protocol):
    """Where refused changes are published (the rejections topic, in its wire format)."""

    def rejection(
        self, rejection: Rejection, list_ids: Mapping[AudienceId, ListId], rejected_at_ms: int
    ) -> None: ...


INVALID_VALUE = "invalid_value"  # a mapped value Marketo would refuse (1003); never sent
TOO_LARGE = "http_413"  # the body is over Marketo's 1 MB: split the call (HTTP 413)
# A whole call refused (credentials, permissions, a deleted list, a bug): no record in it was
# judged, so none becomes a rejection; the call waits this long and its offsets stay held.
REFUSED_BACKOFF_S = 60.0
ERASING = AudienceId("")  # the refusal key of the person deletions (no audience id is empty)

SyncRow = tuple[str, LeadId | None, str, str]  # status, lead id, reason code, reason message


@dataclass(frozen=True, slots=True)
class LeadFields:
    """How a profile becomes a Marketo person record: the match key and converted fields."""

    lookup_field: str
    converter: Converter
    match_only: bool

    def record(
        self, email: str, state: ProfileState | None
    ) -> tuple[dict[str, object], list[tuple[str, str]]]:
        """Return the sync-leads input record for one email, and the (field, reason) refused."""
        if state is None:
            return {self.lookup_field: email}, []
        identities = {"email": state.email, "ecid": state.ecid}
        fields, refusals = self.converter.convert(state.attributes, identities)
        # the lookup value last: check_mapping allows only identities.email into that field
        return {**fields, self.lookup_field: email}, refusals


def _refused_row(refusals: Sequence[tuple[str, str]]) -> SyncRow:
    message = "; ".join(f"{field}: {reason}" for field, reason in refusals)
    return ("skipped", None, INVALID_VALUE, message)


class Flusher:
    """Runs the outbox's due calls as asyncio tasks."""

    def __init__(
        self,
        outbox: Outbox,
        writer: ListWriter,
        store: StateStore,
        sink: RejectionSink,
        metrics: Metrics,
        list_ids: Mapping[AudienceId, ListId],
        fields: LeadFields,
        max_in_flight: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        parked_until: Callable[[], float | None] = lambda: None,
        room: CallRoom | None = None,
        bulk: BulkWriter | None = None,
        bulk_slots: Callable[[], int] = lambda: DEFAULT_SLOTS,  # imports in Marketo's queue
    ) -> None:
        self.outbox = outbox
        self.writer = writer
        self.store = store
        self.sink = sink
        self.metrics = metrics
        self.list_ids = list_ids
        self.fields = fields
        self.max_in_flight = max_in_flight
        self.clock = clock  # the loop's: every wait decided here is on the same clock as `now`
        self.wall = wall  # epoch seconds, for latencies and the rejections' time
        self.parked_until = parked_until  # the budget parked on the daily quota (607), on `clock`
        # calls the budget lets start now, beyond those waiting for it; None: no budget here
        self.room = room
        self.tasks: set[asyncio.Task[None]] = set()
        # spawned, not yet run: not waiting in the limiter yet, so `room` cannot count them
        self.unstarted: set[asyncio.Task[None]] = set()
        self.backpressure_until = 0.0  # on `clock`; set when Marketo keeps refusing work for now
        # a list (None: the lead syncs) whose last call was refused as a whole waits alone,
        # so a deleted list or a missing permission never holds back the other lists
        self.refused_until: dict[AudienceId | None, float] = {}
        self.turns = Turns()
        # the bulk lane's jobs (worker.bulk_lane); None: no bulk client, the outbox makes no job
        self.bulk = (
            None
            if bulk is None
            else BulkLane(
                outbox,
                bulk,
                store,
                fields,
                list_ids,
                clock,
                self._spawn_step,
                self._apply,
                slots=bulk_slots,
                watch=BulkMetrics(metrics),
            )
        )

    def blocked(self, now: float) -> bool:
        """Tell whether Marketo takes no new work at `now` (a backoff, or the quota parked)."""
        return self.backpressure_until > now or (self.parked_until() or 0.0) > now

    def start_due(self, now: float, force: bool = False) -> int:
        """Start calls for due buffers while slots are free; return how many started."""
        started = 0
        if now < self.backpressure_until and not force:
            return 0
        if self.bulk is not None:
            self.bulk.start_due(now)  # a job's next step, when its wait is over
        while len(self.tasks) < self.max_in_flight:
            call = self._next_call(now, force)
            if call is None:
                break
            self._spawn(call)
            started += 1
        return started

    def _spawn(self, call: Call) -> None:
        if isinstance(call, BulkJob):
            assert self.bulk is not None  # the outbox makes jobs only with a bulk client
            self.bulk.begin(call)  # its steps run as tasks of their own, each when due
            return
        task = asyncio.create_task(self._run(call))
        self.tasks.add(task)
        self.unstarted.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(self.unstarted.discard)

    def _next_call(self, now: float, force: bool) -> Call | None:
        # refusals are waited out even when forced (a shutdown's drain): they would not pass
        refused = {key for key, until in self.refused_until.items() if until > now}
        for lane in self.turns.order():
            if not force and not self._has_room(lane):
                continue
            call = self._next_in(lane, now, force, refused)
            if call is not None:
                self.turns.served(lane)
                if self.room is not None:
                    self.room.taken(lane)
                return call
        return None

    def _has_room(self, lane: Lane) -> bool:
        """Tell whether a call of `lane` could start at once, after those spawned not yet run."""
        return self.room is None or self.room.room(lane) > len(self.unstarted)

    def _spawn_step(self, step: Coroutine[Any, Any, None]) -> None:
        """Run a bulk job's step as a task, seen by the drain as any call is."""
        task = asyncio.create_task(step)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _next_in(
        self, lane: Lane, now: float, force: bool, refused: set[AudienceId | None]
    ) -> Call | None:
        """The lane's next call: for the backlog, a bulk job first (it takes the adds that
        would otherwise need lead syncs); a lead sync (list entries wait for its lead ids),
        then a list call, then a person deletion."""
        # not in a shutdown's drain (`force`): a job takes minutes, the drain seconds
        if lane is Lane.BACKLOG and self.bulk is not None and not force:
            job = self.outbox.next_bulk_job(skip=self.bulk.paused(now) | refused)
            if job is not None:
                return job
        if None not in refused:
            lead_sync = self.outbox.next_lead_sync(now, force, lane)
            if lead_sync is not None:
                return lead_sync
        lists = {key for key in refused if key is not None}
        list_call = self.outbox.next_list_call(now, force, skip=lists, lane=lane)
        if list_call is not None or ERASING in refused:
            return list_call
        return self.outbox.next_erase(now, force, lane)

    async def _run(self, call: Call) -> None:
        self.unstarted.discard(asyncio.current_task())
        try:
            settled = await self._send(call)
        except QuotaExhausted as exc:
            self._retry_later(call, exc, backoff_s=5.0)
            return
        except CallAbandoned:
            # a partition of this call was revoked while it waited: the others go back
            self.outbox.retry_later(call)
            log.info("flush.call_abandoned", records=len(call.taken))
            return
        except RequestRejected as exc:
            if exc.code != TOO_LARGE:
                self._refused(call, exc)
                return
            if len(call.taken) > 1:
                for half in _halves(call):
                    self._spawn(half)
                return
            settled = self.outbox.reject_call(call, exc.code, str(exc))  # one record too large
        except (MarketoError, OSError, TimeoutError) as exc:
            self._retry_later(call, exc, backoff_s=1.0)
            return
        except Exception as exc:  # a bug must not strand the call: its entries would stay in flight
            log.exception("flush.call_failed", records=len(call.taken))
            self._retry_later(call, exc, backoff_s=5.0)
            return
        self._apply(settled)

    def _retry_later(self, call: Call, exc: Exception, backoff_s: float) -> None:
        self.outbox.retry_later(call)
        # a longer wait already decided (a 607) is not cut short by another call's failure
        self.backpressure_until = max(self.backpressure_until, self.clock() + backoff_s)
        log.warning("flush.retry_later", error=str(exc), records=len(call.taken))

    def _refused(self, call: Call, exc: RequestRejected) -> None:
        self.outbox.retry_later(call)
        key = call.audience if isinstance(call, ListCall | BulkJob) else _refusal_key(call)
        self.refused_until[key] = self.clock() + REFUSED_BACKOFF_S
        log.error("flush.call_refused", code=exc.code, audience=key, records=len(call.taken))

    async def _send(self, call: Call) -> Settled:
        if isinstance(call, LeadSyncCall):
            return await self._sync_leads(call)
        if isinstance(call, EraseCall):
            return await self._erase(call)
        assert not isinstance(call, BulkJob)  # a job runs in the bulk lane, never here
        list_id = self.list_ids[call.audience]
        send = self.writer.add_to_list if call.op is Op.ADD else self.writer.remove_from_list
        # not sent once any change in it is not ours: its partition's new owner sends it, and
        # ours could land after theirs
        results = await send(list_id, call.lead_ids, lambda: self.outbox.still_ours(call))
        rows3 = [(r.status, *_first_reason(r)) for r in results]
        return self.outbox.settle_list_call(call, rows3)

    async def _erase(self, call: EraseCall) -> Settled:
        """Delete the persons of deleted profiles; not sent once a change in it is not ours."""
        results = await self.writer.delete_leads(
            call.lead_ids, lambda: self.outbox.still_ours(call)
        )
        rows = [(r.status, *_first_reason(r)) for r in results]
        return self.outbox.settle_erase(call, rows)

    async def _sync_leads(self, call: LeadSyncCall) -> Settled:
        """Send the records Marketo can take; one with a refused value becomes a rejection."""
        built = [
            self.fields.record(item.key, self._first_state(item.entry.value)) for item in call.taken
        ]
        sendable = [record for record, refusals in built if not refusals]
        answers: Iterator[SyncRow] = iter(())
        if sendable:
            action = "updateOnly" if self.fields.match_only else "createOrUpdate"
            results = await self.writer.sync_leads(
                sendable, action=action, lookup_field=self.fields.lookup_field
            )
            answers = iter([(r.status, r.lead_id, *_first_reason(r)) for r in results])
        rows = [_refused_row(refusals) if refusals else next(answers) for _, refusals in built]
        return self.outbox.settle_lead_sync(call, rows, self.fields.match_only)

    def _first_state(self, profiles: frozenset[ProfileId]) -> ProfileState | None:
        for profile in profiles:
            state = self.store.get(profile)
            if state is not None:
                return state
        return None

    def _apply(self, settled: Settled) -> None:
        now = self.wall()
        for profile in settled.changed:
            state = self.store.get(profile)
            if state is not None:
                self.metrics.end_to_end_latency.observe(max(0.0, now - state.ts_ms / 1000))
        for rejection in settled.rejections:
            self._publish(rejection)
        if settled.unmatched:
            self.metrics.events.labels(Outcome.UNMATCHED).inc(settled.unmatched)
            self.metrics.unmatched.labels(Unmatched.NOT_IN_MARKETO).inc(settled.unmatched)

    def _publish(self, rejection: Rejection) -> None:
        self.metrics.rejections.labels(rejection.code).inc()
        self.sink.rejection(rejection, self.list_ids, int(self.wall() * 1000))
        log.warning("marketo.record_rejected", code=rejection.code, op=rejection.op)

    async def drain(self, deadline_s: float) -> bool:
        """Flush everything buffered (shutdown); return True if all of it was sent in time."""
        end = self.clock() + deadline_s
        while (now := self.clock()) < end:
            self.start_due(now, force=True)
            if not self.tasks:
                # a bulk job still waiting for Marketo is left: its states are written
                # unacknowledged, so the next restore sends them again
                return self.outbox.size() == 0 and not (self.bulk and self.bulk.running)
            await asyncio.wait(self.tasks, timeout=max(0.0, end - now))
        return False


def _first_reason(result: RecordResult) -> tuple[str, str]:
    if not result.reasons:
        return ("", "")
    code, message = result.reasons[0]
    return (code, message)


def _refusal_key(call: LeadSyncCall | EraseCall) -> AudienceId | None:
    return ERASING if isinstance(call, EraseCall) else None


def _halves(call: Call) -> list[Call]:
    """The call as two calls of half its records each."""
    cut = len(call.taken) // 2
    if isinstance(call, LeadSyncCall):
        return [LeadSyncCall(call.taken[:cut]), LeadSyncCall(call.taken[cut:])]
    if isinstance(call, EraseCall):
        return [EraseCall(call.taken[:cut]), EraseCall(call.taken[cut:])]
    assert isinstance(call, ListCall)  # a bulk job's files are split when written
    return [
        ListCall(call.audience, call.op, call.taken[:cut], call.lead_ids[:cut]),
        ListCall(call.audience, call.op, call.taken[cut:], call.lead_ids[cut:]),
    ]
