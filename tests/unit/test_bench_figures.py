"""The benchmark's arithmetic (tests/bench): the minimum a budget allows and the budget a backlog
used, on synthetic call timelines, so that a target never passes by a miscount."""

from __future__ import annotations

import pytest

from tests.bench import bench_drain, bench_scale_out
from tests.bench.bench_drain import Limits, earliest_last_start, minimal_calls
from tests.bench.wiretap import Call

NO_REFUSALS: dict[str, object] = {"calls": {"sync_leads": {"ok": 1}}, "peak_window_calls": 100}


def call(kind: str, started_s: float, records: int = 300) -> Call:
    """An answered data call that took 10 ms."""
    return Call(kind, started_s, started_s + 0.01, "ok", None, (), records, True)


def test_minimal_calls_are_one_sync_per_300_persons_and_one_add_per_300_members() -> None:
    """30,000 persons in 2 of 4 lists: 100 lead syncs and 4 times 50 list adds."""
    assert minimal_calls(30_000) == 300


def test_earliest_last_start_of_300_calls_is_two_windows_after_the_backlog() -> None:
    """100 calls per 20 s: calls 201-300 can start only when the second window has passed."""
    assert earliest_last_start([], 1000.0, 300, Limits(100, 20.0)) == pytest.approx(1040.0)


def test_earliest_last_start_counts_the_calls_of_start_up_in_the_window() -> None:
    """Start-up calls made just before the backlog delay the calls that would exceed the window."""
    earlier = [999.0] * 10
    last = earliest_last_start(earlier, 1000.0, 100, Limits(100, 20.0))
    assert last == pytest.approx(1019.0)


def test_drain_ratio_is_the_last_acknowledgement_over_the_minimum() -> None:
    """A drain whose last add is acknowledged 2 s after the 40 s minimum measures 42/40."""
    limits = Limits(100, 20.0)
    starts = [0.0] * 100 + [20.0] * 100 + [41.99] * 100
    kinds = ["sync_leads"] * 100 + ["add_to_list"] * 200
    calls = [call(kind, 1000.0 + s) for kind, s in zip(kinds, starts, strict=True)]
    sample = bench_drain._figures(calls, NO_REFUSALS, 1000.0, 30_000, limits)
    assert sample["drain_ratio"] == pytest.approx(42.0 / 40.0)
    assert sample["lead_syncs_s"] == pytest.approx(0.0)
    assert sample["call_ratio"] == pytest.approx(1.0)


def test_scale_out_budget_counts_the_tail_window_as_a_whole_window() -> None:
    """607 calls over 6 full windows and a tail of 7 use 607 of the 700 calls available."""
    limits = Limits(100, 2.0)
    starts = [w * 2.0 + i * 0.01 for w in range(6) for i in range(100)] + [12.0] * 7
    calls = [call("add_to_list", 1000.0 + s) for s in starts]
    sample = bench_scale_out._figures(calls, NO_REFUSALS, limits)
    assert sample["budget_used"] == pytest.approx(607 / 700, abs=0.01)
    assert sample["budget_used_full_windows"] == pytest.approx(1.0)
