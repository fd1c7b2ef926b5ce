"""The call budget (docs/guarantees.md, 4): window, concurrency, shares, backoff, daily quota."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.core.budget import (
    POLL_S,
    Budget,
    BudgetLimits,
    CallTicket,
    portion,
    quota_day,
    seconds_until_midnight,
)

DAY = date(2026, 11, 28)
CHICAGO = ZoneInfo("America/Chicago")


def limits(
    calls: int = 10,
    window_s: float = 20.0,
    concurrency: int = 5,
    quota: int = 50_000,
    reserve: int = 5_000,
    max_call_s: float = 30.0,
) -> BudgetLimits:
    return BudgetLimits(calls, window_s, concurrency, quota, reserve, max_call_s)


def call(budget: Budget, start: float, finish: float) -> None:
    budget.finish(budget.start(start, day=DAY), finish)


# --- window and concurrency ----------------------------------------------------------------


def test_full_window_blocks_until_oldest_call_finish_plus_window() -> None:
    """With the window full, the next call waits for the oldest call's finish + window_s."""
    budget = Budget(limits(calls=3, window_s=20.0), now=0.0)
    first = budget.start(0.0, day=DAY)
    second = budget.start(1.0, day=DAY)
    budget.finish(second, 1.5)
    budget.finish(first, 2.0)
    call(budget, 3.0, 4.0)
    assert budget.wait_s(5.0) == pytest.approx(16.5)  # 1.5 + 20 - 5: the earliest finish leaves
    assert budget.wait_s(21.4) > 0
    assert budget.wait_s(21.5) == 0.0


def test_call_in_flight_counts_until_window_after_it_finishes() -> None:
    """A long call keeps its place in the window until window_s after it finishes."""
    budget = Budget(limits(calls=1, window_s=20.0), now=0.0)
    ticket = budget.start(0.0, day=DAY)
    assert budget.wait_s(25.0) == POLL_S
    budget.finish(ticket, 25.0)
    assert budget.calls_in_window(44.9) == 1
    assert budget.wait_s(44.9) == pytest.approx(0.1)
    assert budget.calls_in_window(45.0) == 0
    assert budget.wait_s(45.0) == 0.0


def test_full_concurrency_blocks_until_a_call_finishes() -> None:
    """With every slot in flight the wait is a poll; one finish frees a slot at once."""
    budget = Budget(limits(calls=10, concurrency=2), now=0.0)
    first = budget.start(0.0, day=DAY)
    budget.start(0.0, day=DAY)
    assert budget.in_flight == 2
    assert budget.wait_s(1.0) == POLL_S
    budget.finish(first, 1.0)
    assert budget.wait_s(1.0) == 0.0


def test_greedy_caller_gets_the_whole_window() -> None:
    """The accounting is not stricter than asked: instant calls fill calls_per_window exactly."""
    budget = Budget(limits(calls=7), now=0.0)
    started = 0
    while budget.wait_s(0.0) == 0.0:
        call(budget, 0.0, 0.0)
        started += 1
    assert started == 7


def test_room_is_the_calls_the_window_and_the_concurrency_both_allow() -> None:
    """Room is the least of the free slots (5 less one in flight) and the window's calls left."""
    budget = Budget(limits(calls=10, concurrency=5), now=0.0)
    assert budget.room(0.0) == 5
    budget.start(0.0, day=DAY)
    assert budget.room(0.0) == 4  # one slot taken
    for at in range(1, 8):
        call(budget, float(at), at + 0.5)
    assert budget.room(8.0) == 2  # 8 of 10 counted in the window
    assert budget.room(8.0, kept_free=1) == 1


def test_leaving_gives_when_each_finished_call_leaves_the_window() -> None:
    """A finished call leaves `window_s` after its finish; calls in flight are not listed."""
    budget = Budget(limits(calls=10), now=0.0)
    call(budget, 0.0, 1.0)
    call(budget, 2.0, 2.5)
    budget.start(3.0, day=DAY)
    assert budget.leaving(4.0) == (21.0, 22.5)
    assert budget.leaving(21.0) == (22.5,)


def test_room_is_none_during_a_606_backoff() -> None:
    """A throttle's backoff leaves no room, though the window itself has some."""
    budget = Budget(limits(calls=10), now=0.0)
    budget.rate_limited("606", 0.0)
    assert budget.room(1.0) == 0
    assert budget.room(20.0) == 5


def test_start_while_wait_is_positive_raises() -> None:
    """Starting a call the budget does not allow is a programming error."""
    budget = Budget(limits(calls=1), now=0.0)
    call(budget, 0.0, 0.0)
    with pytest.raises(RuntimeError, match="wait_s"):
        budget.start(1.0, day=DAY)


def test_finishing_a_call_twice_raises() -> None:
    """A ticket finishes once; a second finish would free a slot that is not held."""
    budget = Budget(limits(), now=0.0)
    ticket = budget.start(0.0, day=DAY)
    budget.finish(ticket, 1.0)
    with pytest.raises(RuntimeError, match="not in flight"):
        budget.finish(ticket, 2.0)


def test_limits_reject_reserve_at_or_above_quota() -> None:
    """A reserve that leaves no usable quota is refused."""
    with pytest.raises(ValueError, match="daily_reserve"):
        limits(quota=100, reserve=100)


# --- shares ----------------------------------------------------------------------------------


def test_portion_floors_but_gives_at_least_one_call_to_a_positive_share() -> None:
    """share * total is floored, with one call minimum while the share is positive."""
    assert [portion(10, s) for s in (0.0, 0.01, 0.25, 0.5, 1.0)] == [0, 1, 2, 5, 10]


def test_share_decrease_takes_effect_at_once() -> None:
    """Losing partitions lowers the limits immediately."""
    budget = Budget(limits(calls=10, concurrency=4), now=0.0)
    for _ in range(5):
        call(budget, 0.0, 0.0)
    budget.set_share(0.5, 1.0)
    assert (budget.share, budget.calls_limit, budget.concurrency_limit) == (0.5, 5, 2)
    assert budget.wait_s(1.0) == pytest.approx(19.0)


def test_share_increase_takes_effect_after_window_and_longest_call() -> None:
    """Gaining partitions raises the limits only window_s + max_call_s after the request."""
    budget = Budget(limits(calls=10, window_s=20.0, max_call_s=30.0), share=0.5, now=0.0)
    for _ in range(5):
        call(budget, 0.0, 0.0)
    budget.set_share(1.0, 10.0)
    assert budget.requested_share == 1.0
    assert budget.wait_s(15.0) == pytest.approx(5.0)  # the window frees first, at 20
    assert budget.calls_limit == 5
    assert budget.wait_s(59.9) == 0.0
    assert budget.share == 0.5
    budget.wait_s(60.0)
    assert budget.share == 1.0


def test_decrease_during_a_pending_increase_cancels_it() -> None:
    """The share in force is the least one requested during the delay."""
    budget = Budget(limits(), share=0.5, now=0.0)
    budget.set_share(1.0, 1.0)
    budget.set_share(0.2, 2.0)
    budget.wait_s(100.0)
    assert budget.share == 0.2


def test_share_zero_allows_no_call() -> None:
    """A replica without partitions may not call Marketo at all."""
    budget = Budget(limits(), share=0.0, now=0.0)
    assert budget.wait_s(0.0) == math.inf
    assert budget.quota_remaining(DAY) == 0


def test_share_zero_waits_until_the_pending_increase() -> None:
    """From share 0, the wait ends when an increase applies."""
    budget = Budget(limits(window_s=20.0, max_call_s=30.0), share=0.0, now=0.0)
    budget.set_share(0.5, 5.0)
    assert budget.wait_s(10.0) == pytest.approx(45.0)
    assert budget.wait_s(55.0) == 0.0


def test_share_outside_unit_interval_is_refused() -> None:
    """A share is a fraction of the partitions."""
    budget = Budget(limits(), now=0.0)
    with pytest.raises(ValueError, match="share"):
        budget.set_share(1.5, 0.0)


# --- throttling ------------------------------------------------------------------------------


def test_606_blocks_new_calls_for_a_whole_window() -> None:
    """606: the instance's window is full, so wait window_s from the answer."""
    budget = Budget(limits(window_s=20.0), now=0.0)
    call(budget, 0.0, 1.0)
    budget.rate_limited("606", 1.0)
    assert budget.wait_s(1.0) == pytest.approx(20.0)
    assert budget.wait_s(21.0) == 0.0
    assert budget.calls_limit == 10  # nothing shrinks permanently


def test_615_backoff_doubles_while_repeated_and_caps_at_window() -> None:
    """Repeated 615s back off 1, 2, 4 ... seconds, never more than window_s."""
    budget = Budget(limits(window_s=5.0), now=0.0)
    waits = []
    now = 0.0
    for _ in range(5):
        call(budget, now, now)
        budget.rate_limited("615", now)
        waits.append(budget.wait_s(now))
        now += waits[-1]
    assert waits == pytest.approx([1.0, 2.0, 4.0, 5.0, 5.0])


def test_615_backoff_resets_after_an_unthrottled_call() -> None:
    """A call that ends without a throttle report restarts the backoff at 1 s."""
    budget = Budget(limits(window_s=20.0), now=0.0)
    for now in (0.0, 1.0, 3.0):
        call(budget, now, now)
        budget.rate_limited("615", now)
    call(budget, 7.0, 7.5)  # no 615 reported for it
    call(budget, 8.0, 8.0)
    budget.rate_limited("615", 8.0)
    assert budget.wait_s(8.0) == pytest.approx(1.0)


# --- daily quota -----------------------------------------------------------------------------


def test_quota_remaining_is_share_of_quota_minus_reserve() -> None:
    """The reserve is never spent: remaining = floor(share * (quota - reserve)) - used."""
    budget = Budget(limits(quota=1000, reserve=100), share=0.5, now=0.0)
    call(budget, 0.0, 0.0)
    assert budget.quota_remaining(DAY) == 449
    assert budget.quota_used(DAY) == 1


def test_spent_quota_refuses_a_start() -> None:
    """Starting a call beyond this replica's quota share is a programming error."""
    budget = Budget(limits(calls=10, quota=3, reserve=1), now=0.0)
    call(budget, 0.0, 0.0)
    call(budget, 0.0, 0.0)
    assert budget.quota_remaining(DAY) == 0
    with pytest.raises(RuntimeError, match="quota"):
        budget.start(0.0, day=DAY)


def test_new_quota_day_resets_the_count() -> None:
    """Calls on a new quota day start from zero."""
    budget = Budget(limits(calls=10, quota=3, reserve=1), now=0.0)
    call(budget, 0.0, 0.0)
    call(budget, 0.0, 0.0)
    tomorrow = date(2026, 11, 29)
    budget.finish(budget.start(1.0, day=tomorrow), 1.0)
    assert (budget.quota_used(DAY), budget.quota_used(tomorrow)) == (0, 1)
    assert budget.quota_remaining(tomorrow) == 1


def test_instance_usage_at_quota_minus_reserve_spends_the_quota() -> None:
    """Other integrations' calls count: at quota - reserve used by the instance, none remain."""
    budget = Budget(limits(quota=1000, reserve=100), now=0.0)
    budget.observe_usage(DAY, 899)
    assert budget.quota_remaining(DAY) == 900
    budget.observe_usage(DAY, 900)
    assert budget.quota_remaining(DAY) == 0
    assert budget.quota_remaining(date(2026, 11, 29)) == 900


def test_others_calls_shrink_the_daily_allowance() -> None:
    """Other API users' calls today come off quota - reserve before the share is taken."""
    budget = Budget(limits(quota=1000, reserve=100), share=0.5, now=0.0)
    budget.observe_usage(DAY, 300, 300)
    assert (budget.group_allowed(DAY), budget.quota_allowed(DAY)) == (600, 300)
    assert budget.quota_remaining(DAY) == 300


def test_others_calls_of_another_day_do_not_count() -> None:
    """A reading of yesterday's others leaves today's allowance whole."""
    budget = Budget(limits(quota=1000, reserve=100), now=0.0)
    budget.observe_usage(DAY, 300, 300)
    assert budget.quota_remaining(date(2026, 11, 29)) == 900


def test_others_spending_past_the_usable_quota_leave_nothing() -> None:
    """Others at quota - reserve or more leave this replica no call today."""
    budget = Budget(limits(quota=1000, reserve=100), now=0.0)
    budget.observe_usage(DAY, 950, 950)
    assert budget.quota_remaining(DAY) == 0


def test_park_blocks_until_its_end() -> None:
    """A park (quota spent until midnight) holds every call until it ends."""
    budget = Budget(limits(), now=0.0)
    budget.park(until=100.0)
    assert budget.parked_until(10.0) == 100.0
    assert budget.wait_s(10.0) == pytest.approx(90.0)
    assert budget.parked_until(100.0) is None
    assert budget.wait_s(100.0) == 0.0


def test_the_probe_after_a_607_may_be_a_backlog_call() -> None:
    """Probing, the one call has room whatever is kept free, or a backlog alone would never
    probe."""
    budget = Budget(limits(calls=10), now=0.0)
    budget.quota_exhausted(0.0, resume_at=300.0)
    assert (budget.room(299.0, kept_free=5), budget.room(300.0, kept_free=5)) == (0, 1)


def test_607_parks_then_probes_with_one_call_at_a_time() -> None:
    """After a 607 park, a single probe goes first; more follow once it passed."""
    budget = Budget(limits(concurrency=5), now=0.0)
    call(budget, 0.0, 1.0)
    budget.quota_exhausted(1.0, resume_at=301.0)
    assert budget.wait_s(300.0) == pytest.approx(1.0)
    probe = budget.start(301.0, day=DAY)
    assert budget.wait_s(301.0) == POLL_S
    budget.finish(probe, 302.0)
    budget.start(302.0, day=DAY)
    assert budget.wait_s(302.0) == 0.0


def test_probe_answered_607_parks_again() -> None:
    """A probe that meets 607 again parks again, and the next probe is alone too."""
    budget = Budget(limits(concurrency=5), now=0.0)
    budget.quota_exhausted(0.0, resume_at=10.0)
    probe = budget.start(10.0, day=DAY)
    budget.finish(probe, 11.0)
    budget.quota_exhausted(11.0, resume_at=21.0)
    assert budget.wait_s(11.0) == pytest.approx(10.0)
    budget.start(21.0, day=DAY)
    assert budget.wait_s(21.0) == POLL_S


# --- quota days in Chicago -------------------------------------------------------------------


def test_day_with_spring_forward_lasts_23_hours() -> None:
    """On 2026-03-08 Chicago skips 02:00-03:00, so midnight to midnight is 23 h."""
    start_of_day = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 00:00 CST
    assert seconds_until_midnight(start_of_day, CHICAGO) == 23 * 3600


def test_day_with_fall_back_lasts_25_hours() -> None:
    """On 2026-11-01 Chicago repeats 01:00-02:00, so midnight to midnight is 25 h."""
    start_of_day = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 00:00 CDT
    assert seconds_until_midnight(start_of_day, CHICAGO) == 25 * 3600


def test_quota_day_is_the_date_in_the_quota_zone() -> None:
    """03:00 UTC is still the previous evening in Chicago."""
    assert quota_day(datetime(2026, 3, 8, 3, 0, tzinfo=UTC), CHICAGO) == date(2026, 3, 7)


def test_naive_wall_time_is_refused() -> None:
    """A naive datetime has no zone to convert from."""
    with pytest.raises(ValueError, match="aware"):
        seconds_until_midnight(datetime(2026, 3, 8), CHICAGO)


# --- the group property ----------------------------------------------------------------------


@dataclass
class Replica:
    """A simulated replica: its budget and the calls it made, as (start, finish)."""

    budget: Budget
    partitions: int
    running: dict[int, tuple[CallTicket, float]] = field(default_factory=dict)
    calls: list[tuple[float, float]] = field(default_factory=list)
    limit_breaches: int = 0


@dataclass
class Group:
    """Two replicas sharing one budget, driven by a script of steps."""

    limits: BudgetLimits
    total_partitions: int
    replicas: list[Replica]
    now: float = 0.0

    def run_until(self, until: float) -> None:
        """Advance time to `until`, finishing due calls at their exact finish times."""
        while True:
            due = [(end, r, seq) for r in self.replicas for seq, (_, end) in r.running.items()]
            due = [d for d in due if d[0] <= until]
            if not due:
                break
            end, replica, seq = min(due, key=lambda d: d[0])
            self.now = max(self.now, end)
            ticket, _ = replica.running.pop(seq)
            replica.budget.finish(ticket, self.now)
            replica.calls.append((ticket.started_at, self.now))
        self.now = until

    def try_calls(self, index: int, count: int, duration_s: float) -> None:
        """A greedy caller on one replica: start up to `count` calls while the budget allows."""
        replica = self.replicas[index]
        for _ in range(count):
            if replica.budget.wait_s(self.now) > 0:
                return
            ticket = replica.budget.start(self.now, day=DAY)
            replica.running[ticket.seq] = (ticket, self.now + duration_s)
            counted = replica.budget.calls_in_window(self.now)
            if counted > replica.budget.calls_limit:
                replica.limit_breaches += 1
            self.run_until(self.now)  # an instant call is over before the next one starts

    def rebalance(self, giver: int, count: int) -> None:
        """Move `count` partitions from one replica to the other: revoke first, then assign."""
        moved = min(count, self.replicas[giver].partitions)
        self.move_partitions(giver, self.replicas[giver].partitions - moved)
        self.move_partitions(1 - giver, self.replicas[1 - giver].partitions + moved)

    def move_partitions(self, index: int, wanted: int) -> None:
        """Give replica `index` `wanted` partitions, taking only partitions nobody else owns."""
        replica, other = self.replicas[index], self.replicas[1 - index]
        replica.partitions = min(wanted, self.total_partitions - other.partitions)
        replica.budget.set_share(replica.partitions / self.total_partitions, self.now)


def overlaps(intervals: list[tuple[float, float]], point: float) -> int:
    return sum(1 for start, end in intervals if start <= point < end)


FRACTIONS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 0.1, 0.9, 0.999])
COUNTS = st.sampled_from([1, 2, 3, 12])
# (kind, replica, count, fraction); "greedy": time passes, then both replicas call while allowed
steps = st.one_of(
    st.tuples(st.just("greedy"), st.integers(0, 1), FRACTIONS, FRACTIONS),
    st.tuples(st.just("greedy"), st.integers(0, 1), FRACTIONS, FRACTIONS),
    st.tuples(st.just("advance"), st.integers(0, 1), st.just(0), FRACTIONS),
    st.tuples(st.just("call"), st.integers(0, 1), COUNTS, FRACTIONS),
    st.tuples(st.just("move"), st.integers(0, 1), COUNTS, st.just(0.0)),
    st.tuples(st.just("share"), st.integers(0, 1), st.integers(0, 6), st.just(0.0)),
)


@settings(max_examples=1500, deadline=None)
@example(  # 0.45 + 0.5 == 0.95 but 0.95 - 0.5 < 0.45: pruning and waiting must agree on floats
    calls=2,
    concurrency=2,
    window_s=0.5,
    max_call_s=0.25,
    total_partitions=1,
    first_partitions=0,
    script=[("greedy", 0, 0.9, 0.0), ("greedy", 0, 1.0, 0.0)],
)
@given(
    calls=st.integers(2, 10),
    concurrency=st.integers(2, 6),
    window_s=st.sampled_from([0.5, 1.0, 2.0]),
    max_call_s=st.sampled_from([0.25, 1.0, 2.5]),
    total_partitions=st.integers(1, 6),
    first_partitions=st.integers(0, 6),
    script=st.lists(steps, max_size=60),
)
def test_two_replicas_never_exceed_the_group_budget(
    calls: int,
    concurrency: int,
    window_s: float,
    max_call_s: float,
    total_partitions: int,
    first_partitions: int,
    script: list[tuple[str, int, float, float]],
) -> None:
    """Whatever the calls and rebalances, Marketo (counting each call at any instant between
    its start and finish) never sees more than calls_per_window in a window, nor more than
    `concurrency` in flight, from both replicas together."""
    budget_limits = limits(calls, window_s, concurrency, max_call_s=max_call_s)
    owned = min(first_partitions, total_partitions)
    replicas = [
        Replica(Budget(budget_limits, share=owned / total_partitions, now=0.0), owned),
        Replica(
            Budget(budget_limits, share=(total_partitions - owned) / total_partitions, now=0.0),
            total_partitions - owned,
        ),
    ]
    group = Group(budget_limits, total_partitions, replicas)
    for kind, index, count, fraction in script:
        duration_s = min(fraction, 1.0) * max_call_s
        if kind == "greedy":  # here `count` is the time step, in windows
            group.run_until(group.now + float(count) * window_s)
            group.try_calls(index, 100, duration_s)
            group.try_calls(1 - index, 100, duration_s)
        elif kind == "advance":
            group.run_until(group.now + fraction * (window_s if index else max_call_s))
        elif kind == "call":
            group.try_calls(index, int(count), duration_s)
        elif kind == "move":
            group.rebalance(index, int(count))
        else:
            group.move_partitions(index, int(count))
    group.run_until(group.now + 2 * max_call_s)
    every_call = [c for r in replicas for c in r.calls]
    # Marketo may count a call anywhere in [start, finish]: it is in the rolling window
    # (t - window_s, t] for every t in [start, finish + window_s). The maximum overlap of
    # those intervals is reached at some call's start.
    counted = [(start, end + window_s) for start, end in every_call]
    in_flight = [(start, end) for start, end in every_call if end > start]
    for start, _ in every_call:
        assert overlaps(counted, start) <= calls
        assert overlaps(in_flight, start) <= concurrency
    assert [r.limit_breaches for r in replicas] == [0, 0]
