"""Scenario 9, resync_bulk: `resync --dry-run` reads a 200,000-member list through one bulk
extract instead of REST pages of 300 (667 calls).

A first worker stores 200,000 profiles no audience matches; a second one with audience `r`
(all of them) fills its list by bulk import (the sandbox imports 50,000 rows a second here:
filling is not what is measured) and stops. Then `resync --dry-run` runs with its defaults: the
extract's first status read after 60 s (Marketo refreshes a job's status once a minute, and so
does the sandbox here), doubling. The sandbox extracts `EXPORT_ROWS_PER_S` rows a second (Adobe
publishes no speed): 40 s for the list, so one status read finds the job done.

Figures: the list-reading calls the sandbox counted during the run (create, enqueue, status
reads, file ranges, cancel; REST pages) against the REST pages the list takes; the run's time;
the export bytes it used of the 500 MB daily allocation; the drift it printed (none).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import yaml

from tests.bench.bench_activation_bulk import store_profiles
from tests.bench.bench_drain import BATCH
from tests.bench.context import Bench, poll_until
from tests.bench.fleet import BenchWorker, write_worker_config
from tests.bench.results import Metric, Sample
from tests.bench.workload import list_audience
from tests.kafka_support import create_topic
from tests.sandbox_views import READ_ENDPOINTS, read_calls
from worker.sandbox.process import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SandboxProcess

NAME = "resync_bulk"
EXPORT_ROWS_PER_S = 5_000
METRICS = [
    Metric("call_ratio", "x REST", "<=", 0.01, "list-reading calls / REST pages of 300"),
    Metric("calls", "calls", note="create, enqueue, status reads, file ranges; REST pages"),
    Metric("rest_pages", "calls", note="the list's REST pages of 300"),
    Metric("read_s", "s", note="the whole `resync --dry-run`, state read included"),
    Metric("export_mb", "MB", note="of Marketo's 500 MB daily extract allocation"),
    Metric("drift", "persons", "<=", 0, "to add + to remove printed"),
]


def _sizes(bench: Bench) -> int:
    return 8_000 if bench.quick else 200_000


def _waits(bench: Bench) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The sandbox's status refresh and resync's first status wait: Marketo's minute, or a
    second in quick mode (the smoke test)."""
    if bench.quick:
        return ("--bulk-status-interval-s", "1"), ("--bulk-poll-s", "1")
    return (), ()


def measure(bench: Bench, runs: int) -> list[Sample]:
    """Each run: a fresh topic, sandbox, state and list, then one `resync --dry-run`."""
    return [_one_run(bench, _sizes(bench)) for _ in range(runs)]


def _one_run(bench: Bench, members: int) -> Sample:
    topic = create_topic(bench.bootstrap, 1, prefix=NAME)
    flags = ("--no-limits", "--bulk-rows-per-s", "50000")
    extract = ("--bulk-export-rows-per-s", str(EXPORT_ROWS_PER_S))
    refresh, poll = _waits(bench)
    with SandboxProcess(*flags, *extract, *refresh) as sandbox:
        budget = {"calls_per_window": 100, "window_s": 20, "daily_quota": 10**8, "daily_reserve": 0}
        first = write_worker_config(
            bench.path(NAME, ".yaml"),
            bench.bootstrap,
            sandbox.url,
            topic,
            [list_audience("s")],
            budget=budget,
            flush={"bulk_threshold": 1_000},  # the list is filled by import in quick mode too
            request_timeout_s=bench.request_timeout_s,
        )
        store_profiles(bench, topic, members, ["r"], first, every=1)
        config = yaml.safe_load(first.read_text())
        config["audiences"].append(list_audience("r"))
        second = bench.path(NAME, ".yaml")
        second.write_text(yaml.safe_dump(config))
        worker = BenchWorker(second, bench.path(NAME, ".log"))
        try:
            poll_until(
                lambda: worker.log_times("bulk.job_completed"), bool, 600, "list r's import", 1.0
            )
        finally:
            assert worker.stop(120) == 0, f"the filling worker did not stop; see {worker.log}"
        before = read_calls(sandbox)
        started = time.monotonic()
        result = _resync(second, "--audience", "r", "--dry-run", *poll)
        read_s = time.monotonic() - started
        after = read_calls(sandbox)
        stats = sandbox.state()
    if result.returncode != 0:
        raise RuntimeError(f"resync exited {result.returncode}: {result.stderr[-2000:]}")
    used = sum(after[name] - before[name] for name in READ_ENDPOINTS)
    pages = math.ceil(members / BATCH)
    (line,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["r"]]
    cells = line.split()
    exported = stats.get("exportBytesToday", 0)
    assert isinstance(exported, int)
    return {
        "call_ratio": used / pages,
        "calls": used,
        "rest_pages": pages,
        "read_s": read_s,
        "export_mb": exported / 1_000_000,
        "drift": int(cells[4]) + int(cells[5]),
    }


def _resync(config: object, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MARKETO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "MARKETO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
    }
    command = [sys.executable, "-m", "worker", "resync", str(config), *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=1200, check=False
    )
