"""The flusher takes a call only when the budget has room for it to start at once, and a backlog's
only while the window keeps free what the stream is expected to need, so a streamed change never
queues behind backlog calls waiting for the window (fake clock, real limiter)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.fakes import FakeClock, Result
from tests.unit.conftest import MakeCore, MakeFlusher
from tests.unit.test_fair_share import LINGER_S, LISTS, A, B, queue
from worker.core.budget import Budget, BudgetLimits
from worker.core.ids import LeadId, ListId
from worker.flusher import Flusher, Wanted
from worker.marketo.limiter import Limiter

CALL_S = 0.5
WINDOW_S = 20.0
STEP_S = 0.05


@dataclass
class Ticks:
    """The fake clock, and sleeps that end when `advance` moves it past their end."""

    clock: FakeClock
    sleeping: list[tuple[float, asyncio.Event]] = field(default_factory=list)

    async def sleep(self, delay_s: float) -> None:
        woken = asyncio.Event()
        self.sleeping.append((self.clock.now + delay_s, woken))
        await woken.wait()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for until, woken in self.sleeping:
            if until <= self.clock.now:
                woken.set()
        self.sleeping = [(until, woken) for until, woken in self.sleeping if not woken.is_set()]


@dataclass
class LimitedWriter:
    """Marketo behind the limiter: each call holds a slot for `CALL_S` of the fake clock; it
    records when each call started."""

    ticks: Ticks
    limiter: Limiter
    calls: list[tuple[float, ListId]] = field(default_factory=list)

    async def _call(self, target: ListId) -> None:
        async with self.limiter.call():
            self.calls.append((self.ticks.clock.now, target))
            await self.ticks.sleep(CALL_S)

    async def sync_leads(
        self, records: Sequence[Mapping[str, object]], *, action: str, lookup_field: str
    ) -> list[Result]:
        raise AssertionError("every person here is known to Marketo")

    async def add_to_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        await self._call(list_id)
        return [Result("added") for _ in lead_ids]

    async def remove_from_list(
        self, list_id: ListId, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        raise AssertionError("nothing is removed here")

    async def delete_leads(
        self, lead_ids: Sequence[LeadId], still_wanted: Wanted = None
    ) -> list[Result]:
        raise AssertionError("no person is deleted here")


def limited_flusher(
    make_core: MakeCore, make_flusher: MakeFlusher, ticks: Ticks
) -> tuple[Flusher, LimitedWriter]:
    """A flusher for lists A and B, ten calls at once, behind a budget of 10 calls a window."""
    limits = BudgetLimits(10, WINDOW_S, 10, 1_000_000, 0, max_call_s=30.0)
    clock = ticks.clock
    limiter = Limiter(Budget(limits, now=clock.now), clock=clock.monotonic, sleep=ticks.sleep)
    writer = LimitedWriter(ticks, limiter)
    core = make_core([A, B], linger_s=LINGER_S)
    core.store.assign(0)
    core.ledger.assign(0, 1)
    flusher = make_flusher(core, list_ids=LISTS, max_in_flight=10)
    flusher.writer = writer
    flusher.room = limiter
    return flusher, writer


async def after_a_window(flusher: Flusher, ticks: Ticks) -> None:
    """Let a whole window pass with no call: the stream is seen to need nothing."""
    await run_for(flusher, ticks, WINDOW_S)


async def run_for(flusher: Flusher, ticks: Ticks, seconds: float) -> None:
    """Start due calls, let every task run, and move the clock, until `seconds` have passed."""
    end = ticks.clock.now + seconds
    while ticks.clock.now < end:
        flusher.start_due(ticks.clock.now)
        for _ in range(5):
            await asyncio.sleep(0)  # one turn of the loop for each task, not a wait for time
        ticks.advance(STEP_S)


async def test_no_call_is_taken_while_the_window_is_full(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """A backlog of 30 calls' worth against 10 calls a window, no stream: the backlog starts 9
    (one call of the window kept free, the spare), the rest stay buffered, no task waiting in
    the limiter."""
    ticks = Ticks(clock)
    flusher, writer = limited_flusher(make_core, make_flusher, ticks)
    await after_a_window(flusher, ticks)
    queue(flusher, A, 9000, offset=None)
    await run_for(flusher, ticks, 10.0)
    assert len(writer.calls) == 9
    assert not flusher.tasks
    assert flusher.outbox.size() == 9000 - 9 * 300


async def test_a_backlog_leaves_a_stream_not_seen_yet_half_the_window_at_first(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """Before any call of the stream has shown its need, a backlog uses half of the window for
    its first two seconds, then all but the spare."""
    ticks = Ticks(clock)
    flusher, writer = limited_flusher(make_core, make_flusher, ticks)
    queue(flusher, A, 9000, offset=None)
    await run_for(flusher, ticks, 1.9)
    assert len(writer.calls) == 5
    await run_for(flusher, ticks, 8.1)
    assert len(writer.calls) == 9


async def test_a_streamed_add_starts_within_the_linger_while_a_backlog_fills_the_window(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """The backlog's part of the window spent, a streamed add to B starts once its linger has
    passed, in the room the backlog left, not a window later."""
    ticks = Ticks(clock)
    flusher, writer = limited_flusher(make_core, make_flusher, ticks)
    await after_a_window(flusher, ticks)
    queue(flusher, A, 9000, offset=None)
    await run_for(flusher, ticks, 2.0)
    queued_at = clock.now
    queue(flusher, B, 1, offset=0, first=50_000)
    await run_for(flusher, ticks, 5.0)
    (b_call,) = [at for at, target in writer.calls if target == LISTS[B]]
    assert b_call <= queued_at + LINGER_S + 2 * STEP_S


async def test_a_streamed_add_waiting_for_the_window_starts_when_it_frees(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """The window spent (the backlog's half, and five streamed adds in the rest), a sixth
    streamed add starts as soon as the window has room again, behind one backlog call at most
    (the lanes take turns), not behind the ten the window frees for."""
    ticks = Ticks(clock)
    flusher, writer = limited_flusher(make_core, make_flusher, ticks)
    await after_a_window(flusher, ticks)
    queue(flusher, A, 9000, offset=None)
    for change in range(6):
        queue(flusher, B, 1, offset=change, first=50_000 + 1000 * change)
        await run_for(flusher, ticks, LINGER_S + 0.5)
    backlog_at = min(at for at, target in writer.calls if target == LISTS[A])
    freed_at = backlog_at + CALL_S + WINDOW_S
    b_calls = [at for at, target in writer.calls if target == LISTS[B]]
    assert len(b_calls) == 5  # the sixth waits: the window is full
    await run_for(flusher, ticks, WINDOW_S)
    b_calls = [at for at, target in writer.calls if target == LISTS[B]]
    ahead = [at for at, target in writer.calls if freed_at <= at < b_calls[5]]
    assert b_calls[5] <= freed_at + 2 * STEP_S
    assert len(ahead) <= 1


async def test_a_shutdown_drain_takes_calls_without_room(
    make_core: MakeCore, make_flusher: MakeFlusher, clock: FakeClock
) -> None:
    """Forced (the drain at shutdown), the flusher takes calls though the window is full: they
    wait in the limiter, so the drain's deadline covers them."""
    ticks = Ticks(clock)
    flusher, _writer = limited_flusher(make_core, make_flusher, ticks)
    queue(flusher, A, 9000, offset=None)
    await run_for(flusher, ticks, 10.0)
    assert flusher.start_due(clock.now, force=True) == 10
