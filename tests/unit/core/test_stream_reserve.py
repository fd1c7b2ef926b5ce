"""What a backlog leaves free of the rolling window for the stream (docs/message-flow.md, fair
share): the stream never waits for the window to turn, and the backlog loses no window to it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import pytest

from worker.core.budget import Budget, BudgetLimits, CallTicket
from worker.core.buffers import Lane
from worker.core.outbox import Turns
from worker.core.stream_reserve import StreamReserve

DAY = date(2026, 11, 28)


def test_a_stream_not_seen_yet_is_kept_half_for_the_backlogs_first_two_seconds() -> None:
    """At a start, before any call of the stream, the backlog leaves half the window."""
    reserve = StreamReserve(20.0)
    assert reserve.kept_free(0.0, 100, ()) == 50
    reserve.backlog_started(3.0)
    assert reserve.kept_free(4.9, 100, ()) == 50


def test_then_a_stream_not_seen_is_kept_only_the_spare() -> None:
    """Two seconds after the backlog's first call, with no stream call, one call in fifty."""
    reserve = StreamReserve(20.0)
    reserve.backlog_started(3.0)
    assert reserve.kept_free(5.0, 100, ()) == 2


def test_a_steady_stream_is_kept_its_next_window() -> None:
    """With nothing leaving the window, the stream is kept its rate times the window."""
    reserve = StreamReserve(20.0)
    for half in range(8):  # 2 calls a second for 4 s
        reserve.stream_started(4.25 + half / 2)
    assert reserve.rate(8.0) == pytest.approx(2.0)
    assert reserve.kept_free(8.0, 200, ()) == 40 + 4


def test_calls_leaving_the_window_count_for_the_stream() -> None:
    """Room that frees by itself before the stream needs it is not kept back again."""
    reserve = StreamReserve(20.0)
    for half in range(8):
        reserve.stream_started(4.25 + half / 2)
    leaving = tuple([18.0] * 60)  # a burst leaves 10 s on: 20 calls of the stream before it
    assert reserve.kept_free(8.0, 200, leaving) == 20 + 4


def test_the_backlog_always_keeps_half_the_window() -> None:
    """However busy the stream, it is kept at most half the window, less what it started."""
    reserve = StreamReserve(20.0)
    for at in range(40):
        reserve.stream_started(at / 10)
    assert reserve.kept_free(4.0, 100, ()) == 50 - 40


def test_a_stream_just_started_is_read_over_a_second_at_least() -> None:
    """Two calls a stream starts at once read as two a second, not as an idle stream."""
    reserve = StreamReserve(20.0)
    reserve.stream_started(5.0)
    reserve.stream_started(5.0)
    assert reserve.rate(5.0) == pytest.approx(2.0)


def test_the_rate_does_not_sag_between_two_calls() -> None:
    """The rate is read at the stream's latest call, so the time since it lowers nothing."""
    reserve = StreamReserve(20.0)
    for half in range(8):
        reserve.stream_started(4.25 + half / 2)
    assert reserve.rate(8.2) == reserve.rate(7.75) == pytest.approx(2.0)


def test_a_stream_quiet_for_the_horizon_is_read_as_idle() -> None:
    """Four seconds after the stream's last call, nothing is kept for it but the spare."""
    reserve = StreamReserve(20.0)
    reserve.backlog_started(0.0)
    reserve.stream_started(1.0)
    assert reserve.rate(5.0) == pytest.approx(1.0)
    assert reserve.rate(5.01) == 0.0
    assert reserve.kept_free(5.01, 100, ()) == 2


@dataclass
class Run:
    """A backlog and a stream taking turns at one budget, on a simulated clock: a call of the
    stream falls due every `stream_every_s`, the backlog's calls are all due from the start."""

    backlog: int
    stream_every_s: float
    call_s: float = 0.2
    limits: BudgetLimits = field(default_factory=lambda: BudgetLimits(100, 20.0, 10, 10**6, 0))
    stream_waits: list[float] = field(default_factory=list)
    backlog_done_at: float = math.nan
    _due_stream: list[float] = field(default_factory=list)
    _running: list[tuple[float, CallTicket]] = field(default_factory=list)

    def run(self, until_s: float, step_s: float = 0.05) -> None:
        """Start every call the budget and the reserve allow, each tick, until `until_s`."""
        budget = Budget(self.limits, now=0.0)
        reserve = StreamReserve(self.limits.window_s)
        turns = Turns()
        next_stream = self.stream_every_s
        for tick in range(round(until_s / step_s)):
            now = tick * step_s
            for end, ticket in [r for r in self._running if r[0] <= now]:
                budget.finish(ticket, now)
                self._running.remove((end, ticket))
            while next_stream <= now:
                self._due_stream.append(next_stream)
                next_stream += self.stream_every_s
            while (lane := self._next_lane(turns, budget, reserve, now)) is not None:
                self._start(lane, budget, reserve, now)
                turns.served(lane)

    def _next_lane(
        self, turns: Turns, budget: Budget, reserve: StreamReserve, now: float
    ) -> Lane | None:
        """The lane whose call may start now, in the order of the turns."""
        for lane in turns.order():
            if lane is Lane.STREAM and self._due_stream and budget.room(now) > 0:
                return lane
            if lane is Lane.BACKLOG and self.backlog > 0:
                kept = reserve.kept_free(now, budget.calls_limit, budget.leaving(now))
                if budget.room(now, kept_free=kept) > 0:
                    return lane
        return None

    def _start(self, lane: Lane, budget: Budget, reserve: StreamReserve, now: float) -> None:
        self._running.append((now + self.call_s, budget.start(now, day=DAY)))
        if lane is Lane.STREAM:
            reserve.stream_started(now)
            self.stream_waits.append(now - self._due_stream.pop(0))
            return
        reserve.backlog_started(now)
        self.backlog -= 1
        if self.backlog == 0:
            self.backlog_done_at = now


def test_a_backlog_beside_a_steady_stream_loses_no_window() -> None:
    """220 backlog calls beside a stream of 2 calls a second (40 a window, so 60 a window for
    the backlog) start within four windows, the fourth begun 2.5 s at most."""
    run = Run(backlog=220, stream_every_s=0.5)
    run.run(until_s=100.0)
    assert run.backlog_done_at <= 3 * 20.0 + 2.5


def test_a_stream_beside_a_backlog_never_waits_for_the_window() -> None:
    """Beside a backlog of 220 calls, a call of the stream waits at most for a slot to free
    (a call lasts 0.2 s), never for the window."""
    run = Run(backlog=220, stream_every_s=0.5)
    run.run(until_s=100.0)
    assert max(run.stream_waits) <= 0.2
