"""This replica's part of the group's Marketo call budget: window, calls in flight, daily quota.

Pure: stdlib only, time passed in as `now` (monotonic seconds, never decreasing); no asyncio,
no I/O, no wall clock (the edge computes quota days and midnights with the helpers at the end).

Group share (docs/guarantees.md, 4). Replicas do not talk to each other; each one spends `share =
assigned partitions / total partitions` of the window, the concurrency and the daily quota minus
reserve (floor, but at least one call while share > 0, so every partition makes progress). A
decrease applies at once; an increase applies `window_s + max_call_s` after it is requested:
the partitions' previous owner has decreased first (Kafka revokes before it assigns), and by
then each of its calls that Marketo may have counted has finished (a call lasts at most
`max_call_s`) and left Marketo's rolling window. So the share in force at `now` is the least
one requested during the last `window_s + max_call_s`; calls Marketo can count in one window
start less than that apart, so the shares that let them start are each at most the share
requested at one common moment, and those sum to at most 1. With at most one
replica below one call's worth of share the floors keep the sum within the limit; each further
such replica may add one call (keep replicas ≤ concurrency). Mid-day rebalances can make the
quota split inexact; `observe_usage` (the instance's own count) and 607 parking bound it.
What other API users spent today (`observe_usage`) comes off the quota before it is split
(worker.core.usage), so the reserve is left to them.

Window accounting is conservative: Marketo counts a call when it arrives, at some instant
between our start and our finish, so a call counts here from its start until `window_s` after
its finish, and every call we start counts (whatever its answer).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from zoneinfo import ZoneInfo

from worker.core.marketo_api import CONCURRENCY_LIMITED
from worker.core.usage import group_allowance

POLL_S = 0.05  # wait when only a finishing call can free room; the async edge wakes earlier
FIRST_615_BACKOFF_S = 1.0


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """The whole consumer group's budget (config `marketo.budget`), plus the longest call."""

    calls_per_window: int
    window_s: float
    concurrency: int
    daily_quota: int
    daily_reserve: int
    max_call_s: float = 60.0  # the limiter aborts longer calls; twice the client's 30 s timeout

    def __post_init__(self) -> None:
        if self.calls_per_window < 1 or self.concurrency < 1:
            raise ValueError("calls_per_window and concurrency must be at least 1")
        if self.window_s <= 0 or self.max_call_s <= 0:
            raise ValueError("window_s and max_call_s must be positive")
        if not 0 <= self.daily_reserve < self.daily_quota:
            raise ValueError("daily_reserve must be in [0, daily_quota)")


@dataclass(frozen=True, slots=True)
class CallTicket:
    """One started call; hand it back to `Budget.finish`."""

    seq: int
    started_at: float
    day: date
    strikes: int  # throttle reports seen before the call started


def portion(total: int, share: float) -> int:
    """This replica's part of `total`: the floor of share * total, but at least 1 if share > 0."""
    if share <= 0:
        return 0
    return max(1, math.floor(share * total))


class Budget:
    """One replica's view of the group budget; every method takes the monotonic `now`."""

    def __init__(self, limits: BudgetLimits, *, share: float = 1.0, now: float) -> None:
        _check_share(share)
        self.limits = limits
        # (requested at, share); the first entry is the share in force before the others
        self._requests: deque[tuple[float, float]] = deque([(now, share)])
        self._share = share
        self._finished: deque[float] = deque()  # finish times of calls still counted
        self._live: set[int] = set()
        self._seq = 0
        self._strikes = 0
        self._clean_finish = False
        self._blocked_until = -math.inf
        self._backoff_615_s = min(FIRST_615_BACKOFF_S, limits.window_s)
        self._parked_until = -math.inf
        self._probing = False
        self._day: date | None = None
        self._day_used = 0
        self._instance_used: tuple[date, int, int] | None = None  # day, all calls, others'

    # --- share ----------------------------------------------------------------------------

    @property
    def share(self) -> float:
        """The share in force as of the latest `now` seen."""
        return self._share

    @property
    def requested_share(self) -> float:
        """The share most recently asked for with `set_share`."""
        return self._requests[-1][1]

    @property
    def share_delay_s(self) -> float:
        """How long an increase of the share waits before it applies."""
        return self.limits.window_s + self.limits.max_call_s

    def set_share(self, share: float, now: float) -> None:
        """Spend `share` of the group budget: a decrease at once, an increase `share_delay_s` on."""
        _check_share(share)
        self._advance(now)
        if share != self._requests[-1][1]:
            self._requests.append((now, share))
            self._share = min(s for _, s in self._requests)

    @property
    def calls_limit(self) -> int:
        """Calls this replica may have counted in the window, at the share in force."""
        return portion(self.limits.calls_per_window, self._share)

    @property
    def concurrency_limit(self) -> int:
        """Calls this replica may have in flight, at the share in force."""
        return portion(self.limits.concurrency, self._share)

    # --- calls ----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Calls started and not yet finished."""
        return len(self._live)

    def calls_in_window(self, now: float) -> int:
        """Calls counted now: in flight, or finished less than `window_s` ago."""
        self._advance(now)
        return len(self._live) + len(self._finished)

    def leaving(self, now: float) -> tuple[float, ...]:
        """When each finished call still counted leaves the window, earliest first."""
        self._advance(now)
        window_s = self.limits.window_s
        return tuple(at + window_s for at in self._finished)

    def wait_s(self, now: float) -> float:
        """0.0 if a call may start now, else a time to check again (no later than the earliest).

        math.inf while the share is 0 and no increase is pending.
        """
        self._advance(now)
        hold_s = max(self._blocked_until - now, self._parked_until - now, 0.0)
        room_s = self._room_wait_s(now)
        if len(self._requests) > 1:  # the share changes then; look again
            room_s = min(room_s, self._requests[1][0] + self.share_delay_s - now)
        return max(hold_s, room_s, 0.0)

    def room(self, now: float, *, kept_free: int = 0) -> int:
        """How many calls may start at `now`, one after another, without waiting (0: none),
        leaving `kept_free` calls of the window unused (a backlog's, for the stream).

        The flusher takes a call only while there is room, so no call waits here for the window
        while a later one (a streamed change) could have gone first.
        """
        if self.wait_s(now) > 0:
            return 0
        if self._probing:  # after a 607: one call at a time, whichever lane asks (the probe)
            return 1
        in_flight = len(self._live)
        counted = in_flight + len(self._finished)
        window = self.calls_limit - counted - kept_free
        return max(0, min(self.concurrency_limit - in_flight, window))

    def start(self, now: float, *, day: date) -> CallTicket:
        """Record a call starting now, on quota day `day`; only when `wait_s(now)` is 0."""
        wait_s = self.wait_s(now)
        if wait_s > 0:
            raise RuntimeError(f"no call may start for {wait_s:.3f} s: check wait_s() first")
        if self.quota_remaining(day) <= 0:
            raise RuntimeError("this replica's daily quota is spent: park() until the reset")
        if self._clean_finish:  # a call ended and no throttle was reported for it
            self._clean_finish = False
            self._backoff_615_s = min(FIRST_615_BACKOFF_S, self.limits.window_s)
            self._probing = False
        if day != self._day:
            self._day, self._day_used = day, 0
        self._day_used += 1
        self._seq += 1
        self._live.add(self._seq)
        return CallTicket(self._seq, now, day, self._strikes)

    def finish(self, ticket: CallTicket, now: float) -> None:
        """Record that the call of `ticket` returned (or failed, or was cancelled) at `now`."""
        if ticket.seq not in self._live:
            raise RuntimeError("finish() of a call that is not in flight")
        self._advance(now)
        self._live.remove(ticket.seq)
        self._finished.append(now)
        # Confirmed at the next start: the client reports a throttle just after the call exits.
        self._clean_finish = ticket.strikes == self._strikes

    # --- Marketo's answers ----------------------------------------------------------------

    def rate_limited(self, code: str, now: float) -> None:
        """Back off after a throttle: 615 for 1 s doubling while repeated, else a whole window.

        606 (and any other code, e.g. HTTP 429) means the instance's window is full, maybe
        because of other integrations: after `window_s` every call counted in it has left.
        """
        self._advance(now)
        self._strikes += 1
        self._clean_finish = False
        if code == CONCURRENCY_LIMITED:
            until = now + self._backoff_615_s
            self._backoff_615_s = min(2 * self._backoff_615_s, self.limits.window_s)
        else:
            until = now + self.limits.window_s
        self._blocked_until = max(self._blocked_until, until)

    def quota_exhausted(self, now: float, resume_at: float) -> None:
        """Marketo said 607: park until `resume_at`, then probe with one call at a time."""
        self._advance(now)
        self._strikes += 1
        self._clean_finish = False
        self._probing = True
        self.park(until=resume_at)

    def park(self, *, until: float) -> None:
        """Start no call before `until` (the quota reset, or the next 607 probe)."""
        self._parked_until = max(self._parked_until, until)

    def parked_until(self, now: float) -> float | None:
        """When the quota park ends, or None if not parked at `now`."""
        return self._parked_until if self._parked_until > now else None

    # --- daily quota ----------------------------------------------------------------------

    def observe_usage(self, day: date, used_by_instance: int, used_by_others: int = 0) -> None:
        """Note the instance's own count of calls on `day` (all integrations), from stats/usage,
        and how many of them other API users made.

        At daily_quota - daily_reserve or more, this replica's quota counts as spent that day;
        the others' calls come off the quota before this replica's share of it is taken.
        """
        self._instance_used = (day, used_by_instance, used_by_others)

    def quota_allowed(self, day: date) -> int:
        """This replica's calls for `day`: its share of the group's allowance."""
        return math.floor(self._share * self.group_allowed(day))

    def group_allowed(self, day: date) -> int:
        """The group's calls for `day`: quota - reserve - what other API users spent (as last
        observed that day; nothing before the first reading of a day)."""
        instance = self._instance_used
        others = instance[2] if instance is not None and instance[0] == day else 0
        return group_allowance(self.limits.daily_quota, self.limits.daily_reserve, others)

    def quota_remaining(self, day: date) -> int:
        """Calls this replica may still make on `day`: its allowance, less its use."""
        usable = self.limits.daily_quota - self.limits.daily_reserve
        instance = self._instance_used
        if instance is not None and instance[0] == day and instance[1] >= usable:
            return 0
        return max(0, self.quota_allowed(day) - self.quota_used(day))

    def quota_used(self, day: date) -> int:
        """Calls this replica started on `day`."""
        return self._day_used if day == self._day else 0

    # --- internals ------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        # Same float expressions as in _room_wait_s and wait_s, so "left" and "wait 0" agree.
        window_s, finished = self.limits.window_s, self._finished
        while finished and finished[0] + window_s <= now:
            finished.popleft()
        requests, delay_s = self._requests, self.share_delay_s
        if len(requests) > 1:
            while len(requests) > 1 and requests[1][0] + delay_s <= now:
                requests.popleft()
            self._share = min(s for _, s in requests)

    def _room_wait_s(self, now: float) -> float:
        """Time until the window or the concurrency has room, at the share in force."""
        if self._share <= 0:
            return math.inf
        in_flight = len(self._live)
        if in_flight >= self.concurrency_limit or (self._probing and in_flight > 0):
            return POLL_S
        excess = in_flight + len(self._finished) - self.calls_limit + 1
        if excess <= 0:
            return 0.0
        if excess > len(self._finished):  # room frees only after calls in flight finish
            return POLL_S
        return self._finished[excess - 1] + self.limits.window_s - now


def _check_share(share: float) -> None:
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], not {share}")


def quota_day(wall: datetime, zone: ZoneInfo) -> date:
    """The Marketo quota day at aware wall-clock time `wall` (days turn at midnight in `zone`)."""
    _check_aware(wall)
    return wall.astimezone(zone).date()


def seconds_until_midnight(wall: datetime, zone: ZoneInfo) -> float:
    """Seconds from aware `wall` to the next midnight in `zone` (23 h or 25 h days included)."""
    _check_aware(wall)
    tomorrow = wall.astimezone(zone).date() + timedelta(days=1)
    midnight = datetime.combine(tomorrow, day_time(0), tzinfo=zone)
    # Subtract in UTC: aware datetimes sharing one tzinfo subtract as naive wall times.
    return (midnight.astimezone(UTC) - wall.astimezone(UTC)).total_seconds()


def _check_aware(wall: datetime) -> None:
    if wall.tzinfo is None or wall.utcoffset() is None:
        raise ValueError("wall-clock time must be timezone-aware")
