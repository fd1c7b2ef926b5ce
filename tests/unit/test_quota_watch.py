"""The usage stats read at start-up and when due: others' calls reach the limiter, the gauges
and the log; a failed reading is retried sooner and changes nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from tests.fakes import FakeClock
from worker.core.usage import DailyUsage
from worker.errors import MarketoUnavailable
from worker.quota_watch import QuotaWatch
from worker.telemetry.metrics import Metrics


class ScriptedUsage:
    """Answers each reading with the next scripted usage (or raises it); sets `stop` as it
    gives the last one, so a running watch ends after that reading."""

    def __init__(self, *answers: DailyUsage | Exception) -> None:
        self.answers = list(answers)
        self.stop = asyncio.Event()

    async def usage(self) -> DailyUsage:
        answer = self.answers.pop(0)
        if not self.answers:
            self.stop.set()
        if isinstance(answer, Exception):
            raise answer
        return answer


class QuotaOf:
    """The limiter's daily-quota side: quota - reserve - others, all of it this replica's."""

    def __init__(self, usable: int) -> None:
        self.usable = usable
        self.others = 0
        self.used = 0

    def observe_usage(self, used: int, others: int = 0) -> None:
        self.used, self.others = used, others

    def quota_allowed(self) -> int:
        return max(0, self.usable - self.others)

    def group_allowed(self) -> int:
        return self.quota_allowed()


@dataclass(frozen=True)
class Job:
    """A completed extract job's figures."""

    finished_at: str | None
    file_size: int | None


class ScriptedExports:
    """Lists the given completed jobs, or raises `error`."""

    def __init__(self, *jobs: Job, error: Exception | None = None) -> None:
        self.jobs, self.error = list(jobs), error

    async def export_jobs(self, status: str = "Completed") -> list[Job]:
        if self.error is not None:
            raise self.error
        return self.jobs


NOON_CHICAGO = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)


def with_exports(exports: ScriptedExports, metrics: Metrics) -> QuotaWatch:
    return QuotaWatch(
        ScriptedUsage(DailyUsage(1, 1)),
        QuotaOf(900),
        metrics,
        600.0,
        exports=exports,
        wall_clock=lambda: NOON_CHICAGO,
    )


def gauge(metrics: Metrics, name: str) -> float | None:
    return metrics.registry.get_sample_value(f"marketo_worker_{name}")


async def test_a_reading_hands_others_calls_to_the_limiter() -> None:
    """Others' 300 calls of 500 today reach the limiter as (500, 300)."""
    limiter = QuotaOf(900)
    watch = QuotaWatch(ScriptedUsage(DailyUsage(500, 200)), limiter, Metrics(), 600.0)
    await watch.read()
    assert (limiter.used, limiter.others) == (500, 300)


async def test_a_reading_sets_the_gauges() -> None:
    """The instance's calls, the others' and this replica's allowance are shown."""
    metrics = Metrics()
    watch = QuotaWatch(ScriptedUsage(DailyUsage(500, 200)), QuotaOf(900), metrics, 600.0)
    await watch.read()
    shown = [gauge(metrics, n) for n in ("quota_instance_calls_today", "quota_others_today")]
    assert [*shown, gauge(metrics, "daily_quota_allowed")] == [500.0, 300.0, 600.0]


async def test_a_reading_logs_others_calls_and_the_share_left() -> None:
    """`quota.usage_read` names the others' calls and what is left to the group and replica."""
    watch = QuotaWatch(ScriptedUsage(DailyUsage(500, 200)), QuotaOf(900), Metrics(), 600.0)
    with capture_logs() as logs:
        await watch.read()
    read = [e for e in logs if e["event"] == "quota.usage_read"]
    assert read == [
        {
            "event": "quota.usage_read",
            "log_level": "info",
            "instance_today": 500,
            "others_today": 300,
            "group_allowed": 600,
            "replica_allowed": 600,
        }
    ]


async def test_run_reads_again_once_the_interval_has_passed() -> None:
    """With the clock an interval on, `run` reads the stats once more."""
    clock = FakeClock()
    reader = ScriptedUsage(DailyUsage(10, 0), DailyUsage(20, 15))
    limiter = QuotaOf(900)
    watch = QuotaWatch(reader, limiter, Metrics(), 600.0, clock=clock.monotonic)
    await watch.read()
    clock.advance(600.0)
    async with asyncio.timeout(5):
        await watch.run(reader.stop)
    assert limiter.others == 5


async def test_a_failed_reading_keeps_the_last_one_and_is_retried_sooner() -> None:
    """A Marketo error is logged, the previous reading stays, the next try is a minute on."""
    clock = FakeClock()
    reader = ScriptedUsage(DailyUsage(10, 0), MarketoUnavailable("604", "timed out"))
    limiter = QuotaOf(900)
    watch = QuotaWatch(reader, limiter, Metrics(), 600.0, clock=clock.monotonic)
    await watch.read()
    clock.advance(600.0)
    with capture_logs() as logs:
        async with asyncio.timeout(5):
            await watch.run(reader.stop)
    assert [e["event"] for e in logs] == ["quota.usage_failed"]
    assert (limiter.used, watch.next_read_in_s()) == (10, 60.0)


async def test_a_reading_shows_the_extract_bytes_used_today() -> None:
    """Completed extracts finished today count in `bulk_export_bytes_today`; older ones not."""
    metrics = Metrics()
    today, yesterday = Job("2026-03-10T15:00:00Z", 4_000), Job("2026-03-09T15:00:00Z", 9_000)
    await with_exports(ScriptedExports(today, yesterday), metrics).read()
    assert gauge(metrics, "bulk_export_bytes_today") == 4_000


async def test_a_failed_export_listing_keeps_the_usage_reading() -> None:
    """Listing the extract jobs failing is logged; the usage reading still counts."""
    metrics = Metrics()
    exports = ScriptedExports(error=MarketoUnavailable("608", "unavailable"))
    with capture_logs() as logs:
        await with_exports(exports, metrics).read()
    assert "quota.export_usage_failed" in [e["event"] for e in logs]
    assert gauge(metrics, "quota_instance_calls_today") == 1


@pytest.mark.parametrize("interval_s", [0.0, -1.0])
def test_interval_must_be_positive(interval_s: float) -> None:
    """A watch without a positive interval is refused."""
    with pytest.raises(ValueError, match="interval_s"):
        QuotaWatch(ScriptedUsage(), QuotaOf(1), Metrics(), interval_s)
