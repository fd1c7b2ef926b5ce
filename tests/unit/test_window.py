"""Recent figures from scraped samples: rates and histogram quantiles over a span, as Prometheus."""

from __future__ import annotations

import math

import pytest

from worker.telemetry.window import RecentSamples, Samples, histogram_quantile

LATENCY = "marketo_worker_end_to_end_latency_seconds"
BOUNDS = (0.1, 0.5, 1.0, 10.0, 60.0, math.inf)


def histogram(*cumulative: float) -> Samples:
    """Scraped samples of the latency histogram with these cumulative counts per BOUNDS."""
    bucket = [({"le": str(bound)}, count) for bound, count in zip(BOUNDS, cumulative, strict=True)]
    return {f"{LATENCY}_bucket": bucket}


def events(count: float) -> Samples:
    return {"marketo_worker_events_total": [({"outcome": "applied"}, count)]}


def test_quantile_interpolates_inside_the_bucket_holding_the_rank() -> None:
    """Half of 10 observations in (0.5, 1] and the median at rank 5 lands mid-way: 0.75 s."""
    cumulative = [(0.1, 0.0), (0.5, 4.0), (1.0, 6.0), (math.inf, 10.0)]
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.75)


def test_quantile_in_the_first_bucket_starts_from_zero() -> None:
    """Every observation under 0.1 s: the median is interpolated from 0, not the bound."""
    assert histogram_quantile(0.5, [(0.1, 8.0), (math.inf, 8.0)]) == pytest.approx(0.05)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    """Ranks beyond the last finite bucket report that bucket's bound, as Prometheus does."""
    assert histogram_quantile(0.99, [(1.0, 1.0), (60.0, 2.0), (math.inf, 10.0)]) == 60.0


def test_quantile_of_no_observation_is_none() -> None:
    """An empty histogram has no quantile rather than a made-up 0."""
    assert histogram_quantile(0.5, [(1.0, 0.0), (math.inf, 0.0)]) is None


def test_recent_quantile_counts_only_observations_made_during_the_span() -> None:
    """Old slow observations drop out: the p50 reflects the last span's fast ones only."""
    recent = RecentSamples(span_s=30)
    recent.add(0, histogram(0, 0, 0, 0, 100, 100))  # 100 slow events at start-up (10-60 s)
    recent.add(40, histogram(0, 10, 10, 10, 110, 110))
    recent.add(70, histogram(0, 30, 30, 30, 130, 130))  # 20 more, all in (0.1, 0.5]
    assert recent.quantile(LATENCY, 0.5) == pytest.approx(0.3)


def test_recent_rate_is_the_counter_increase_per_second_over_the_span() -> None:
    """Events counted 30 s apart at the span's ends give their increase per second."""
    recent = RecentSamples(span_s=30)
    for now_s, count in ((0, 0), (10, 0), (40, 600), (70, 1200)):
        recent.add(now_s, events(count))
    assert recent.rate("marketo_worker_events_total") == pytest.approx(20.0)


def test_recent_rate_counts_a_counter_that_went_down_as_restarted() -> None:
    """A worker restart resets its counters: the new count is the increase, never negative."""
    recent = RecentSamples(span_s=60)
    recent.add(0, events(5000))
    recent.add(10, events(300))
    assert recent.rate("marketo_worker_events_total") == pytest.approx(30.0)


def test_recent_rate_is_none_before_two_scrapes() -> None:
    """One scrape gives no rate (not a misleading 0)."""
    recent = RecentSamples(span_s=30)
    recent.add(0, events(10))
    assert recent.rate("marketo_worker_events_total") is None
