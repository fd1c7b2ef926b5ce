"""The demo's summary: recent figures, the budget in use, and a start-up line instead of zeros."""

from __future__ import annotations

import math
from typing import Any

from worker.commands.demo import CONFIG, summary
from worker.config_file import load_settings
from worker.settings import Settings
from worker.telemetry.window import RecentSamples, Samples

ENV = {"MARKETO_CLIENT_ID": "id", "MARKETO_CLIENT_SECRET": "secret"}
SANDBOX: tuple[dict[str, Any], dict[str, Any]] = (
    {"lists": [{"id": 1001, "name": "VIP customers"}], "members": {"1001": [1, 2, 3]}},
    {"window_calls": 7, "quota_used": 42},
)


def settings(**env: str) -> Settings:
    return load_settings(CONFIG, {**ENV, **env})


def running(events: float, fast: float) -> Samples:
    """A ready worker's samples: `events` counted, `fast` acknowledgements in (0.5, 1] s."""
    bounds = (0.5, 1.0, 10.0, 60.0, math.inf)
    counts = (0.0, fast, fast, 100 + fast, 100 + fast)  # 100 slow ones from start-up
    return {
        "marketo_worker_ready": [({}, 1.0)],
        "marketo_worker_events_total": [({"outcome": "applied"}, events)],
        "marketo_worker_end_to_end_latency_seconds_bucket": [
            ({"le": str(bound)}, count) for bound, count in zip(bounds, counts, strict=True)
        ],
    }


def test_summary_says_the_worker_is_starting_while_it_serves_no_metrics() -> None:
    """Before the worker serves metrics the summary names the start-up, not `events/s 0`."""
    text = summary(RecentSamples(30), {}, SANDBOX, settings())
    assert text.startswith("worker starting: checking Marketo and creating lists (1 of 6 found)")
    assert "events/s" not in text


def test_summary_names_the_budget_the_worker_runs_with() -> None:
    """The budget label follows the config and its WORKER_* overrides, not a fixed text."""
    text = summary(
        RecentSamples(30),
        {},
        SANDBOX,
        settings(
            **{
                "WORKER_MARKETO__BUDGET__CALLS_PER_WINDOW": "20",
                "WORKER_MARKETO__BUDGET__WINDOW_S": "10",
            }
        ),
    )
    assert "(budget 20 per 10 s)" in text


def test_summary_shows_the_recent_rate_and_interpolated_latency() -> None:
    """Events/s and p50 come from the last span's deltas, not the slow start-up since start."""
    recent = RecentSamples(30)
    recent.add(0, running(events=1000, fast=0))
    samples = running(events=4000, fast=50)
    recent.add(30, samples)
    text = summary(recent, samples, SANDBOX, settings())
    assert "events/s 100 (last 30 s)" in text
    assert "latency p50 0.75 s, p99 0.99 s" in text
