"""The async limiter: slots handed over on exit, window and quota waits, throttle answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import pytest

from worker.core.budget import Budget, BudgetLimits
from worker.core.buffers import Lane
from worker.marketo.limiter import Limiter

CHICAGO = ZoneInfo("America/Chicago")
LATE_EVENING = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)  # 23:00 in Chicago: 1 h to the reset


class MarketoLimiter(Protocol):
    """The port the transport declares (worker/marketo/transport.py)."""

    def call(self) -> AbstractAsyncContextManager[None]: ...
    def rate_limited(self, code: str) -> None: ...
    def quota_exhausted(self) -> None: ...


class VirtualTime:
    """A monotonic clock, a wall clock and a sleep that all move only when the test says."""

    def __init__(self, wall: datetime = LATE_EVENING) -> None:
        self.now = 0.0
        self.wall_start = wall
        self._wakeups: list[tuple[float, asyncio.Event]] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.wall_start + timedelta(seconds=self.now)

    async def sleep(self, delay_s: float) -> None:
        wakeup = (self.now + delay_s, asyncio.Event())
        self._wakeups.append(wakeup)
        try:
            await wakeup[1].wait()
        finally:
            self._wakeups.remove(wakeup)

    def settled(self) -> bool:
        """One task is asleep and not yet due: it has seen the latest time and decided to wait."""
        return len(self._wakeups) == 1 and self._wakeups[0][0] > self.now

    def advance(self, delta_s: float) -> None:
        self.now += delta_s
        for due_at, event in self._wakeups:
            if due_at <= self.now:
                event.set()


async def eventually(condition: Callable[[], bool], deadline_s: float = 2.0) -> None:
    """Let other tasks run until `condition` holds; fail after `deadline_s` of loop time."""
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + deadline_s
    while not condition():
        assert loop.time() < give_up_at, "condition not reached"
        await asyncio.sleep(0)


def build(
    vt: VirtualTime,
    *,
    calls: int = 100,
    window_s: float = 20.0,
    concurrency: int = 10,
    quota: int = 50_000,
    reserve: int = 0,
    share: float = 1.0,
    on_wait: Callable[[float], None] | None = None,
    on_delay: Callable[[float], None] | None = None,
) -> tuple[Limiter, Budget]:
    limits = BudgetLimits(calls, window_s, concurrency, quota, reserve, max_call_s=30.0)
    budget = Budget(limits, share=share, now=vt.now)
    limiter = Limiter(
        budget,
        clock=vt.clock,
        wall_clock=vt.wall,
        quota_zone=CHICAGO,
        quota_probe_s=600.0,
        on_wait=on_wait,
        on_delay=on_delay,
        sleep=vt.sleep,
    )
    return limiter, budget


class Caller:
    """A task that enters `limiter.call()` and stays inside until released."""

    def __init__(self, limiter: Limiter) -> None:
        self.entered = False
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(limiter))

    async def _run(self, limiter: Limiter) -> None:
        async with limiter.call():
            self.entered = True
            await self.release.wait()

    async def finish(self) -> None:
        self.release.set()
        await self.task


async def quick_calls(limiter: Limiter, count: int) -> None:
    for _ in range(count):
        async with limiter.call():
            pass


def test_limiter_implements_the_client_port() -> None:
    """MarketoClient can take a Limiter as its limiter port."""
    port: MarketoLimiter = build(VirtualTime())[0]
    assert callable(port.call)


async def test_free_slot_is_handed_to_a_waiter_as_soon_as_a_call_exits() -> None:
    """With concurrency full, a waiter enters when a call exits, without time passing."""
    vt = VirtualTime()
    limiter, budget = build(vt, concurrency=1)
    first = Caller(limiter)
    await eventually(lambda: first.entered)
    second = Caller(limiter)
    await eventually(vt.settled)
    assert not second.entered
    first.release.set()
    await eventually(lambda: second.entered)
    assert vt.now == 0.0
    assert budget.in_flight == 1
    await second.finish()


async def test_call_beyond_the_window_waits_until_the_oldest_call_leaves() -> None:
    """The third call of a 2-per-window budget enters only window_s after the first finished."""
    vt = VirtualTime()
    limiter, _ = build(vt, calls=2, window_s=10.0)
    await quick_calls(limiter, 2)
    third = Caller(limiter)
    await eventually(vt.settled)
    vt.advance(9.5)
    await eventually(vt.settled)
    assert not third.entered
    vt.advance(0.5)
    await eventually(lambda: third.entered)
    await third.finish()


async def test_waiting_time_is_reported_to_the_hook() -> None:
    """on_wait receives the seconds a call waited for the budget (budget_wait_seconds_total)."""
    vt = VirtualTime()
    waits: list[float] = []
    limiter, _ = build(vt, calls=1, window_s=4.0, on_wait=waits.append)
    await quick_calls(limiter, 1)
    second = Caller(limiter)
    await eventually(vt.settled)
    vt.advance(4.0)
    await eventually(lambda: second.entered)
    assert waits == [4.0]
    await second.finish()


async def test_a_wait_is_announced_once_before_it_starts() -> None:
    """on_delay hears, once and before waiting, the seconds the budget names for a call."""
    vt = VirtualTime()
    delays: list[float] = []
    limiter, _ = build(vt, calls=1, window_s=4.0, on_delay=delays.append)
    await quick_calls(limiter, 1)
    second = Caller(limiter)
    await eventually(vt.settled)
    assert delays == [4.0]
    for _ in range(3):  # the limiter naps a second at a time: one announcement still
        vt.advance(1.0)
        await eventually(vt.settled)
    vt.advance(1.0)
    await eventually(lambda: second.entered)
    assert delays == [4.0]
    await second.finish()


async def test_slot_is_released_when_the_body_raises() -> None:
    """A failing request still frees its slot."""
    vt = VirtualTime()
    limiter, budget = build(vt, concurrency=1)
    with pytest.raises(ValueError, match="boom"):
        async with limiter.call():
            raise ValueError("boom")
    assert budget.in_flight == 0


async def test_slot_is_released_when_the_caller_is_cancelled() -> None:
    """A cancelled request frees its slot."""
    vt = VirtualTime()
    limiter, budget = build(vt, concurrency=1)
    caller = Caller(limiter)
    await eventually(lambda: caller.entered)
    caller.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller.task
    assert budget.in_flight == 0


async def test_spent_quota_share_parks_until_midnight_in_chicago() -> None:
    """Once this replica's quota part is spent, calls wait for the reset at local midnight."""
    vt = VirtualTime()
    limiter, _ = build(vt, quota=3, reserve=1)
    await quick_calls(limiter, 2)
    third = Caller(limiter)
    await eventually(vt.settled)
    assert limiter.quota_parked_until() == 3600.0
    vt.advance(3599.0)
    await eventually(vt.settled)
    assert not third.entered
    vt.advance(1.0)
    await eventually(lambda: third.entered)
    assert limiter.quota_parked_until() is None
    await third.finish()


async def test_607_parks_until_the_sooner_of_probe_and_midnight() -> None:
    """A 607 parks for quota_probe_s, or less when midnight comes first."""
    vt = VirtualTime(wall=LATE_EVENING)
    limiter, _ = build(vt)
    limiter.quota_exhausted()
    assert limiter.quota_parked_until() == 600.0
    vt.advance(3300.0)  # 23:55 in Chicago
    limiter.quota_exhausted()
    assert limiter.quota_parked_until() == 3600.0


async def test_instance_usage_at_usable_quota_parks_until_midnight() -> None:
    """stats/usage showing quota - reserve used by the instance parks this replica."""
    vt = VirtualTime()
    limiter, _ = build(vt, quota=1000, reserve=100)
    limiter.observe_usage(899)
    assert limiter.quota_parked_until() is None
    limiter.observe_usage(900)
    assert limiter.quota_parked_until() == 3600.0


async def test_others_calls_spending_the_usable_quota_park_until_midnight() -> None:
    """Other API users having spent quota - reserve leave this replica nothing: it parks."""
    vt = VirtualTime()
    limiter, _ = build(vt, quota=1000, reserve=100)
    limiter.observe_usage(900, others=900)
    assert (limiter.quota_allowed(), limiter.quota_parked_until()) == (0, 3600.0)


async def test_others_calls_shrink_this_replicas_calls_today() -> None:
    """300 calls of others leave this replica quota - reserve - 300 of the day."""
    vt = VirtualTime()
    limiter, _ = build(vt, quota=1000, reserve=100)
    limiter.observe_usage(300, others=300)
    assert (limiter.group_allowed(), limiter.quota_remaining()) == (600, 600)


async def test_a_larger_share_gives_back_the_calls_a_spent_quota_held() -> None:
    """A replica that spent its part of the day calls again once a rebalance raises its
    share, long before midnight."""
    vt = VirtualTime()
    limiter, budget = build(vt, quota=100, share=0.1)
    await quick_calls(limiter, 10)
    caller = Caller(limiter)
    await eventually(vt.settled)
    limiter.set_share(1.0)
    while not caller.entered:
        assert vt.now <= budget.share_delay_s
        vt.advance(1.0)
        await eventually(lambda: caller.entered or vt.settled())
    assert limiter.quota_parked_until() is None
    await caller.finish()


async def test_a_share_raised_from_zero_with_the_day_spent_waits_for_the_reset() -> None:
    """Given partitions on a day the instance has spent, a call waits for midnight (no
    error escapes the limiter)."""
    vt = VirtualTime()
    limiter, budget = build(vt, quota=1000, reserve=100, share=0.0)
    limiter.observe_usage(900)
    limiter.set_share(0.5)
    caller = Caller(limiter)
    vt.advance(budget.share_delay_s)
    await eventually(vt.settled)
    assert (caller.entered, caller.task.done(), limiter.quota_parked_until()) == (
        False,
        False,
        3600.0,
    )
    caller.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller.task


async def test_606_delays_the_next_call_by_a_window() -> None:
    """After a 606 the next call waits a whole window."""
    vt = VirtualTime()
    limiter, _ = build(vt, window_s=20.0)
    limiter.rate_limited("606")
    caller = Caller(limiter)
    await eventually(vt.settled)
    vt.advance(19.0)
    await eventually(vt.settled)
    assert not caller.entered
    vt.advance(1.0)
    await eventually(lambda: caller.entered)
    await caller.finish()


async def test_room_leaves_out_the_calls_already_waiting() -> None:
    """With the window full, a waiting call takes the first room that frees: room stays 0."""
    vt = VirtualTime()
    limiter, _ = build(vt, calls=1, window_s=20.0)
    await quick_calls(limiter, 1)
    caller = Caller(limiter)
    await eventually(vt.settled)
    vt.advance(20.0)
    assert limiter.room() == 0  # the window has room for one, and the caller waits for it
    await eventually(lambda: caller.entered)
    await caller.finish()


def test_a_backlog_call_leaves_the_stream_its_reserve() -> None:
    """The backlog leaves a stream not seen yet half the window at first; once the stream has
    taken a call (one a second, read over a second), a window's worth of such calls and the
    spare (one in fifty)."""
    limiter, _ = build(VirtualTime(), calls=100, window_s=20.0, concurrency=100)
    assert (limiter.room(Lane.BACKLOG), limiter.room(Lane.STREAM)) == (50, 100)
    limiter.taken(Lane.STREAM)
    assert limiter.room(Lane.BACKLOG) == 100 - (20 + 2)


async def test_share_raised_from_zero_lets_a_waiter_in_after_the_delay() -> None:
    """A replica without partitions waits; given some, it calls once the increase applies."""
    vt = VirtualTime()
    limiter, budget = build(vt, share=0.0)
    caller = Caller(limiter)
    await eventually(vt.settled)
    limiter.set_share(0.5)
    await eventually(vt.settled)
    while not caller.entered:
        assert vt.now < budget.share_delay_s
        vt.advance(1.0)
        await eventually(lambda: caller.entered or vt.settled())
    assert vt.now == budget.share_delay_s
    await caller.finish()


async def test_body_running_past_max_call_s_is_cancelled() -> None:
    """The accounting assumes no call outlives max_call_s, so the limiter enforces it."""
    limits = BudgetLimits(10, 20.0, 2, 1000, 0, max_call_s=0.005)
    budget = Budget(limits, now=0.0)
    limiter = Limiter(budget, quota_zone=CHICAGO)
    with pytest.raises(TimeoutError):
        async with limiter.call():
            await asyncio.Event().wait()
    assert budget.in_flight == 0
