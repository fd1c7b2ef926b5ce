"""The async gate before every Marketo call: waits until this replica's `Budget` allows one.

Owns the clocks (monotonic and wall), the quota-day arithmetic at the edge and the wake-ups;
the accounting itself is `worker.core.budget`. Never does HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from worker.core.budget import (
    Budget,
    BudgetLimits,
    CallTicket,
    quota_day,
    seconds_until_midnight,
)
from worker.core.buffers import Lane
from worker.core.stream_reserve import StreamReserve

if TYPE_CHECKING:
    from worker.settings import MarketoSettings

QUOTA_ZONE = "America/Chicago"  # Marketo resets the daily quota at midnight "CST" (Adobe's docs)
MAX_NAP_S = 1.0  # look again at least this often: wall-clock days and shares move on their own


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Limiter:
    """`async with limiter.call(): ...` around each Marketo HTTP request (the transport's port)."""

    def __init__(
        self,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        quota_zone: ZoneInfo | None = None,
        quota_probe_s: float = 600.0,
        on_wait: Callable[[float], None] | None = None,
        on_delay: Callable[[float], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._budget = budget
        self._clock = clock
        self._wall_clock = wall_clock
        self._zone = quota_zone if quota_zone is not None else ZoneInfo(QUOTA_ZONE)
        self._quota_probe_s = quota_probe_s
        self._on_wait = on_wait  # after a wait: the seconds waited
        self._on_delay = on_delay  # before a wait: the seconds the budget names (start-up logs it)
        self._sleep = sleep
        # Set (and replaced) whenever room may have freed: a call finished or the share changed.
        self._changed = asyncio.Event()
        self._waiting = 0  # calls in `_acquire` that found no room and wait for it
        self._reserve = StreamReserve(budget.limits.window_s)

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Wait for the budget, hold one call slot for the body, release it however it ends.

        A body running past `max_call_s` is cancelled (TimeoutError): the group's accounting
        assumes no call lasts longer.
        """
        ticket = await self._acquire()
        try:
            async with asyncio.timeout(self._budget.limits.max_call_s):
                yield
        finally:
            self._budget.finish(ticket, self._clock())
            self._wake()

    def rate_limited(self, code: str) -> None:
        """Marketo answered 606 or 615: back off (core/budget.py has the policy)."""
        self._budget.rate_limited(code, self._clock())

    def quota_exhausted(self) -> None:
        """Marketo answered 607: park until midnight in the quota zone or the next probe."""
        now = self._clock()
        until_reset_s = seconds_until_midnight(self._wall_clock(), self._zone)
        self._budget.quota_exhausted(now, now + min(until_reset_s, self._quota_probe_s))

    def observe_usage(self, used: int, others: int = 0) -> None:
        """Note the instance's calls today (stats/usage.json), `others` of them by other API
        users (they shrink this replica's part of the day); park if the usable quota is spent."""
        self._budget.observe_usage(quota_day(self._wall_clock(), self._zone), used, others)
        self._wake()

    def quota_allowed(self) -> int:
        """This replica's calls for today: its share of quota - reserve - others' calls."""
        return self._budget.quota_allowed(quota_day(self._wall_clock(), self._zone))

    def group_allowed(self) -> int:
        """The group's calls for today: quota - reserve - others' calls."""
        return self._budget.group_allowed(quota_day(self._wall_clock(), self._zone))

    def set_share(self, share: float) -> None:
        """Spend `share` (assigned / total partitions) of the group budget."""
        self._budget.set_share(share, self._clock())
        self._wake()

    def room(self, lane: Lane = Lane.STREAM) -> int:
        """Calls of `lane` that could start now beyond those already waiting here (0 while the
        budget, a throttle or the daily quota holds them): the flusher takes a call only then.
        A backlog's leave free the calls the stream is expected to need (StreamReserve)."""
        now, wall = self._clock(), self._wall_clock()
        if self._spent_until(now, wall) is not None:
            return 0
        budget = self._budget
        kept_free = 0
        if lane is Lane.BACKLOG:
            kept_free = self._reserve.kept_free(now, budget.calls_limit, budget.leaving(now))
        free = min(
            budget.room(now, kept_free=kept_free),
            budget.quota_remaining(quota_day(wall, self._zone)),
        )
        return max(0, free - self._waiting)

    def taken(self, lane: Lane) -> None:
        """A call of `lane` was taken to start now (the reserve reads the lanes' needs so)."""
        if lane is Lane.STREAM:
            self._reserve.stream_started(self._clock())
        else:
            self._reserve.backlog_started(self._clock())

    def quota_remaining(self) -> int:
        """This replica's calls left today (its share of the daily quota minus the reserve)."""
        return self._budget.quota_remaining(quota_day(self._wall_clock(), self._zone))

    def quota_parked_until(self) -> float | None:
        """Monotonic time the quota park ends (a 607, or this replica's part of the day spent),
        or None: the loop pauses partitions meanwhile."""
        now = self._clock()
        parked = self._budget.parked_until(now)
        spent_until = self._spent_until(now, self._wall_clock())
        if spent_until is None:
            return parked
        return spent_until if parked is None else max(parked, spent_until)

    async def _acquire(self) -> CallTicket:
        waited_s, delayed = 0.0, False
        while True:
            now, wall = self._clock(), self._wall_clock()
            wait_s = self._budget.wait_s(now)  # first: it brings a due share change into force
            # Looked at afresh each time, not parked on: a larger share (a rebalance) or a new
            # day gives calls back at once.
            spent_until = self._spent_until(now, wall)
            if spent_until is not None:
                wait_s = max(wait_s, spent_until - now)
            if wait_s <= 0:
                break
            if not delayed and self._on_delay is not None:
                self._on_delay(wait_s)
            delayed = True
            self._waiting += 1
            try:
                await self._nap(min(wait_s, MAX_NAP_S), self._changed)
            finally:
                self._waiting -= 1
            waited_s += self._clock() - now
        # No await since the checks: no other task can take the room or the quota first.
        ticket = self._budget.start(now, day=quota_day(wall, self._zone))
        if waited_s > 0 and self._on_wait is not None:
            self._on_wait(waited_s)
        return ticket

    def _spent_until(self, now: float, wall: datetime) -> float | None:
        """The reset (midnight in the quota zone) while this replica's part of today is spent."""
        budget = self._budget
        if budget.share > 0 and budget.quota_remaining(quota_day(wall, self._zone)) <= 0:
            return now + seconds_until_midnight(wall, self._zone)
        return None

    async def _nap(self, delay_s: float, changed: asyncio.Event) -> None:
        """Sleep `delay_s`, or less if `changed` is set meanwhile."""
        sleeper = asyncio.ensure_future(self._sleep(delay_s))
        waker = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


def limiter_for(
    marketo: MarketoSettings,
    *,
    initial_share: float = 0.0,
    on_wait: Callable[[float], None] | None = None,
    on_delay: Callable[[float], None] | None = None,
) -> Limiter:
    """The configured instance's call budget, spending `initial_share` of the group's at once.

    Later increases wait `window_s + max_call_s` (core/budget.py), so that a rebalance never
    lets the group exceed the budget. The worker starts with one partition's share, without
    waiting: start-up calls (usage, lists) and the first assignment need it, and the overshoot
    it risks while a previous owner's calls are still in Marketo's window is bounded by one
    partition's share of one window.
    """
    budget = marketo.budget
    limits = BudgetLimits(
        calls_per_window=budget.calls_per_window,
        window_s=budget.window_s,
        concurrency=budget.concurrency,
        daily_quota=budget.daily_quota,
        daily_reserve=budget.daily_reserve,
        # a call counts until it ends: the client's timeout bounds it (plus a margin)
        max_call_s=marketo.request_timeout_s + 1.0,
    )
    return Limiter(
        Budget(limits, share=initial_share, now=time.monotonic()),
        quota_zone=ZoneInfo(budget.quota_timezone),
        quota_probe_s=budget.quota_probe_s,
        on_wait=on_wait,
        on_delay=on_delay,
    )
