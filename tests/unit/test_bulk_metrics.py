"""The bulk lane's jobs and rows as metrics and log events, on the fakes of test_bulk_lane."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from tests.fakes import FakeClock, FakePublisher, ScriptedWriter
from tests.unit.conftest import MakeCore
from tests.unit.test_bulk_lane import A, ScriptedBulk, bulk_flusher, queue
from tests.unit.test_fair_share import run_for
from worker.core.bulk_csv import FAILURE_COLUMN
from worker.flusher import Flusher
from worker.telemetry.metrics import Metrics
from worker.telemetry.observer import BulkMetrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"marketo_worker_{name}", labels)
    return 0.0 if value is None else value


def states(metrics: Metrics) -> dict[str, float]:
    names = ("queued", "importing", "complete", "failed")
    return {state: sample(metrics, "bulk_jobs_total", state=state) for state in names}


def in_flight(metrics: Metrics) -> dict[str, float]:
    return {s: sample(metrics, "bulk_jobs_in_flight", state=s) for s in ("queued", "importing")}


async def poll_until_done(flusher: Flusher, bulk: ScriptedBulk, clock: FakeClock) -> None:
    """Run the flusher's steps until the job has been polled and is no longer in flight."""
    for _ in range(1000):
        if bulk.polls and not (flusher.bulk and flusher.bulk.running):
            return
        flusher.start_due(clock.now)
        await asyncio.gather(*flusher.tasks)
        clock.advance(0.5)
    raise AssertionError("the job never ended")


async def test_a_completed_job_counts_each_state_once_and_leaves_none_in_flight(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """Queued, Importing, Complete: each counted once; no job left in flight."""
    flusher = bulk_flusher(make_core, writer, ScriptedBulk(), clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 30.0)
    assert states(flusher.metrics) == {"queued": 1, "importing": 1, "complete": 1, "failed": 0}
    assert in_flight(flusher.metrics) == {"queued": 0, "importing": 0}


async def test_an_importing_job_is_shown_in_flight(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """While Marketo reports Importing, the job is in flight as importing."""
    bulk = ScriptedBulk(statuses=["Importing"])
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 10.0)
    assert in_flight(flusher.metrics) == {"queued": 0, "importing": 1}


async def test_completed_rows_are_counted_imported_and_failed(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """150 rows, one in the failures file: 149 imported, 1 failed."""
    failures = f"email,{FAILURE_COLUMN}\r\na7@x.io,Invalid email\r\n".encode()
    flusher = bulk_flusher(make_core, writer, ScriptedBulk(failures=failures), clock, publisher)
    queue(flusher, A, 150)
    await run_for(flusher, clock, 30.0)
    metrics = flusher.metrics
    rows = {o: sample(metrics, "bulk_rows_total", outcome=o) for o in ("imported", "failed")}
    assert rows == {"imported": 149, "failed": 1}


async def test_a_failed_job_is_counted_failed_and_logged_with_its_seconds(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """Marketo's Failed: the job counts as failed, leaves flight, and `bulk.job_failed` says
    how long it ran."""
    bulk = ScriptedBulk(statuses=["Importing", "Failed"])
    flusher = bulk_flusher(make_core, writer, bulk, clock, publisher)
    queue(flusher, A, 150)
    with capture_logs() as logs:
        await poll_until_done(flusher, bulk, clock)
    assert (states(flusher.metrics)["failed"], in_flight(flusher.metrics)["importing"]) == (1, 0)
    (failed,) = [e for e in logs if e["event"] == "bulk.job_failed"]
    assert failed["seconds"] > 0


async def test_a_job_is_logged_queued_then_completed_with_counts(
    make_core: MakeCore, writer: ScriptedWriter, clock: FakeClock, publisher: FakePublisher
) -> None:
    """`bulk.job_queued` names the rows; `bulk.job_completed` the rows, failures and seconds."""
    flusher = bulk_flusher(make_core, writer, ScriptedBulk(), clock, publisher)
    queue(flusher, A, 150)
    with capture_logs() as logs:
        await run_for(flusher, clock, 30.0)
    events = {e["event"]: e for e in logs if e["event"].startswith("bulk.job")}
    assert events["bulk.job_queued"]["rows"] == 150
    completed = events["bulk.job_completed"]
    assert (completed["rows"], completed["failed"], completed["seconds"] >= 0) == (150, 0, True)


def test_an_ended_job_leaves_the_in_flight_gauge() -> None:
    """importing -> complete takes the job off `bulk_jobs_in_flight{importing}`."""
    metrics = Metrics()
    watch = BulkMetrics(metrics)
    watch.job_moved(None, "queued")
    watch.job_moved("queued", "importing")
    watch.job_moved("importing", "complete")
    assert in_flight(metrics) == {"queued": 0, "importing": 0}
    assert states(metrics)["complete"] == 1
