"""The fair share between the stream and a backlog: a streamed change of another audience goes
out within the linger and a call or two, while the backlog keeps draining (fake clock)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.fakes import FakeClock, Result
from tests.unit.conftest import MakeCore, MakeFlusher
from worker.core.ids import AudienceId, LeadId, ListId, ProfileId
from worker.core.profile import ProfileState
from worker.flusher import Flusher, Wanted

A, B = AudienceId("a"), AudienceId("b")
LISTS = {A: ListId(1), B: ListId(2)}
LINGER_S, CALL_S = 1.0, 0.5
SYNC = ListId(0)  # the `list` a lead sync is recorded under


@dataclass
class TimedWriter:
    """Marketo answering each call `CALL_S` after it starts (the fake clock moves), every
    person synced getting a lead id of its own; it records when each call started."""

    clock: FakeClock
    calls: list[tuple[float, ListId, int]] = field(default_factory=list)

    async def _call(self, target: ListId, records: int) -> None:
        self.calls.append((self.clock.now, target, records))
        await asyncio.sleep(0)
        self.clock.advance(CALL_S)

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        await self._call(SYNC, len(records))
        return [Result("created", LeadId(100_000 + hash(r["email"]) % 10**9)) for r in records]

    async def add_to_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self._call(list_id, len(lead_ids))
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self._call(list_id, len(lead_ids))
        return [Result("removed") for _ in lead_ids]

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        raise AssertionError("no person is deleted here")


def queue(
    flusher: Flusher,
    audience: AudienceId,
    count: int,
    *,
    offset: int | None,
    new_persons: int = 0,
    first: int = 0,
) -> None:
    """Queue `count` adds to `audience` at the clock's now: a backlog's (no offset, as a restore
    or an activation queues them) or the stream's (one record each from `offset` on); the first
    `new_persons` of them need a lead sync."""
    outbox, store = flusher.outbox, flusher.store
    for i in range(first, first + count):
        profile = ProfileId(f"{audience}{i}")
        lead = None if i - first < new_persons else LeadId(i + 1)
        at = None if offset is None else offset + i - first
        state = ProfileState(
            ts_ms=1,
            offset=at or 0,
            email=f"{profile}@x.io",
            lead_id=lead,
            desired=frozenset({audience}),
        )
        store.put(0, profile, state)
        if at is not None:
            outbox.ledger.read(0, at)
        outbox.enqueue(profile, state, {audience: True}, 0, at, flusher.clock())


def fair_flusher(make_core: MakeCore, make_flusher: MakeFlusher, writer: TimedWriter) -> Flusher:
    """A flusher for lists A and B, one call at a time, writing to `writer`."""
    core = make_core([A, B], linger_s=LINGER_S)
    core.store.assign(0)
    core.ledger.assign(0, 1)
    flusher = make_flusher(core, list_ids=LISTS)
    flusher.writer = writer
    return flusher


async def run_for(flusher: Flusher, clock: FakeClock, seconds: float) -> None:
    """Start due calls and let them answer until `seconds` have passed (idle time ticks by)."""
    end = clock.now + seconds
    while clock.now < end:
        flusher.start_due(clock.now)
        if flusher.tasks:
            await asyncio.gather(*flusher.tasks)
        else:
            clock.advance(0.05)


def starts(writer: TimedWriter, target: ListId) -> list[float]:
    """When each call to `target` started."""
    return [at for at, called, _ in writer.calls if called == target]


async def test_a_streamed_add_of_another_list_goes_out_within_the_linger_and_one_call(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """3,000 backlog adds to A (known persons) draining, one streamed add to B at t=2: B's call
    starts by t=2 + linger + one call, and A's calls go on before and after it."""
    writer = TimedWriter(clock)
    flusher = fair_flusher(make_core, make_flusher, writer)
    queue(flusher, A, 3000, offset=None)
    await run_for(flusher, clock, 2.0)
    queue(flusher, B, 1, offset=0, first=5000)
    await run_for(flusher, clock, 10.0)
    (b_call,) = starts(writer, LISTS[B])
    assert b_call <= 2.0 + LINGER_S + CALL_S
    a_calls = starts(writer, LISTS[A])
    assert min(a_calls) < b_call < max(a_calls)
    assert sum(n for _, called, n in writer.calls if called == LISTS[A]) == 3000


async def test_a_streamed_new_person_is_synced_before_the_backlogs_new_persons(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """3,000 backlog adds to A, all new persons waiting for lead syncs, and a streamed new
    person for B at t=2: its lead sync starts by linger + one call, syncing it alone of the
    stream, and its add by linger + three calls (a backlog call between)."""
    writer = TimedWriter(clock)
    flusher = fair_flusher(make_core, make_flusher, writer)
    queue(flusher, A, 3000, offset=None, new_persons=3000)
    await run_for(flusher, clock, 2.0)
    queue(flusher, B, 1, offset=0, new_persons=1, first=5000)
    synced_before = len(starts(writer, SYNC))
    await run_for(flusher, clock, 4.0)
    b_sync = next(at for at in starts(writer, SYNC)[synced_before:] if at >= 2.0 + LINGER_S)
    assert b_sync <= 2.0 + LINGER_S + CALL_S
    (b_call,) = starts(writer, LISTS[B])
    assert b_call <= 2.0 + LINGER_S + 3 * CALL_S


async def test_the_backlog_gets_half_of_the_calls_while_the_stream_is_busy(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """3,000 backlog adds to A and 3,000 streamed adds to B, all due: the calls alternate, so
    neither waits more than one call for its turn."""
    writer = TimedWriter(clock)
    flusher = fair_flusher(make_core, make_flusher, writer)
    queue(flusher, A, 3000, offset=None)
    queue(flusher, B, 3000, offset=0)
    await run_for(flusher, clock, 10.0)
    targets = [called for _, called, _ in writer.calls]
    assert targets == [LISTS[B], LISTS[A]] * 10
