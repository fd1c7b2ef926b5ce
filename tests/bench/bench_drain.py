"""Scenario 2, drain: a backlog of list adds for new persons against the sandbox's real limits;
how close the worker comes to the fastest drain and the fewest calls the budget allows.

The target run uses Marketo's own window (100 calls per 20 s). A second run, time-scaled ten
times (100 per 2 s), is reported beside it: the time to read the backlog does not scale with
the window, so there it weighs ten times more (drain ≈ minimum + the first window's spread).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tests.bench.context import Bench, poll_until
from tests.bench.fleet import (
    BenchWorker,
    committed,
    is_ready,
    wait_for_full_share,
    write_worker_config,
)
from tests.bench.results import Metric, Sample
from tests.bench.wiretap import Call, Wiretap
from tests.bench.workload import backlog_stream, list_audiences, now_ms, produce_all
from tests.kafka_support import create_topic
from worker.sandbox.process import SandboxProcess

NAME = "drain"
LISTS, PER_PERSON, BATCH = 4, 2, 300
DATA_CALLS = frozenset({"sync_leads", "add_to_list", "remove_from_list"})
METRICS = [
    Metric("drain_ratio", "x minimum", "<=", 1.05, "backlog produced to last add acked / min"),
    Metric("drain_s", "s"),
    Metric("minimum_s", "s", note="earliest last call the rolling window allows"),
    Metric("call_ratio", "x minimal", "<=", 1.02, "lead syncs + list adds / minimal count"),
    Metric("records_per_call", "records", ">=", 295),
    Metric("refused_606_615", "answers", "<=", 0),
    Metric("lead_syncs_s", "s", note="backlog produced to the last lead sync's start"),
    Metric("scaled_drain_ratio", "x minimum", note="the same backlog at 100 calls per 2 s"),
    Metric("scaled_lead_syncs_s", "s", note="the same, at 100 calls per 2 s"),
    Metric("scaled_refused_606_615", "answers", note="the same, at 100 calls per 2 s"),
]


@dataclass(frozen=True, slots=True)
class Limits:
    """The sandbox's (and the worker's) budget for one scenario."""

    calls_per_window: int
    window_s: float
    concurrency: int = 10

    def sandbox_flags(self) -> list[str]:
        """Command-line flags for the sandbox."""
        return [
            *("--calls-per-window", str(self.calls_per_window)),
            *("--window-s", str(self.window_s), "--concurrency", str(self.concurrency)),
            *("--daily-quota", "100000000"),
        ]

    def budget(self) -> dict[str, object]:
        """The worker's `marketo.budget`: all of it (the target is relative to it)."""
        return {
            "calls_per_window": self.calls_per_window,
            "window_s": self.window_s,
            "concurrency": self.concurrency,
            "daily_quota": 100_000_000,
            "daily_reserve": 0,
        }


def minimal_calls(persons: int) -> int:
    """One lead sync per 300 persons, one list add per 300 members of each list."""
    per_list = persons * PER_PERSON // LISTS
    return math.ceil(persons / BATCH) + LISTS * math.ceil(per_list / BATCH)


def earliest_last_start(
    earlier: Sequence[float], start_s: float, calls: int, limits: Limits
) -> float:
    """When the last of `calls` calls could start at the earliest, none before `start_s`, in a
    rolling window that already counts the calls started at `earlier` (worker start-up)."""
    starts = sorted(earlier)
    t = start_s
    for _ in range(calls):
        window = [s for s in starts[-limits.calls_per_window :] if s > t - limits.window_s]
        if len(window) >= limits.calls_per_window:
            t = window[0] + limits.window_s + 1e-6  # the oldest counted call leaves the window
        starts.append(t)
    return t


def _sizes(bench: Bench) -> tuple[int, Limits, Limits]:
    """Persons, the target's limits, the time-scaled limits."""
    if bench.quick:
        return 3_000, Limits(20, 1.0), Limits(20, 0.5)
    return 30_000, Limits(100, 20.0), Limits(100, 2.0)


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh topic, sandbox and worker; the backlog is produced in one burst once
    the worker has its full share of the budget (a cold worker spends 1/partitions of it)."""
    persons, real, scaled = _sizes(bench)
    samples = []
    for _ in range(runs):
        sample = _one_run(bench, persons, real)
        informational = _one_run(bench, persons, scaled)
        for name in ("drain_ratio", "lead_syncs_s", "refused_606_615"):
            sample[f"scaled_{name}"] = informational[name]
        samples.append(sample)
    return samples


def _one_run(bench: Bench, persons: int, limits: Limits) -> Sample:
    topic = create_topic(bench.bootstrap, 4, prefix="drain")
    with SandboxProcess(*limits.sandbox_flags()) as sandbox, Wiretap(sandbox.url) as tap:
        config = write_worker_config(
            bench.path("drain", ".yaml"),
            bench.bootstrap,
            tap.url,
            topic,
            list_audiences(LISTS),
            budget=limits.budget(),
            request_timeout_s=bench.request_timeout_s,
        )
        worker = BenchWorker(config, bench.path("drain", ".log"))
        try:
            poll_until(lambda: is_ready(worker), bool, 120, "the worker to be ready", 0.2)
            wait_for_full_share([worker], limits.window_s, bench.request_timeout_s)
            backlog_at = time.time()
            produce_all(
                bench.bootstrap, topic, backlog_stream(persons, LISTS, PER_PERSON, now_ms())
            )
            poll_until(lambda: committed(worker), lambda c: c >= persons, 600, "the drain", 0.25)
            stats = sandbox.stats()
        finally:
            worker.stop(60)
        return _figures(tap.calls(), stats, backlog_at, persons, limits)


def refused(stats: dict[str, object]) -> int:
    """606 and 615 answers the sandbox gave, on every endpoint."""
    calls = stats["calls"]
    assert isinstance(calls, dict)
    return sum(codes.get("606", 0) + codes.get("615", 0) for codes in calls.values())


def _figures(
    calls: list[Call], stats: dict[str, object], start: float, persons: int, limits: Limits
) -> Sample:
    data = [c for c in calls if c.kind in DATA_CALLS and c.code == "ok"]
    startup = [
        c.started_s for c in calls if c.counted and c.kind not in DATA_CALLS and c.started_s < start
    ]
    minimal = minimal_calls(persons)
    minimum_s = earliest_last_start(startup, start, minimal, limits) - start
    drain_s = max(c.ended_s for c in data) - start
    syncs = [c.started_s for c in data if c.kind == "sync_leads"]
    return {
        "drain_s": drain_s,
        "minimum_s": minimum_s,
        "drain_ratio": drain_s / minimum_s if minimum_s > 0 else float("nan"),
        "call_ratio": len(data) / minimal,
        "records_per_call": sum(c.records for c in data) / len(data),
        "refused_606_615": refused(stats),
        "lead_syncs_s": max(syncs) - start if syncs else float("nan"),
    }
