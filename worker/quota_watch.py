"""Marketo's usage stats read at start-up and every `marketo.budget.usage_interval_s`.

Each reading (one call, through the budget like any other) tells the limiter how many calls the
instance made today and how many of them other API users made: theirs come off the daily quota
before this replica's share of it is taken (worker.core.usage), so the reserve stays theirs.
Shown as gauges and a `quota.usage_read` log event. A failed periodic reading is logged and
tried again a minute later; the last reading stays in force meanwhile. With an export reader,
each reading also lists the completed bulk extract jobs (one call more) for the bytes of the
instance's 500 MB daily extract allocation used today (`resync` reads large lists that way).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from worker.core.budget import quota_day
from worker.core.usage import DailyUsage, UsageSchedule, export_bytes_on
from worker.errors import MarketoError
from worker.telemetry.metrics import Metrics

log = structlog.get_logger("worker.quota_watch")


class UsageReader(Protocol):
    """Reads today's usage stats (worker.marketo.client.MarketoClient)."""

    async def usage(self) -> DailyUsage: ...


class ExportJob(Protocol):
    """A completed extract job's figures (worker.marketo.responses.ExportStatus)."""

    @property
    def finished_at(self) -> str | None: ...
    @property
    def file_size(self) -> int | None: ...


class ExportReader(Protocol):
    """Lists the past week's completed extract jobs (worker.marketo.bulk.BulkClient)."""

    async def export_jobs(self, status: str = "Completed") -> Sequence[ExportJob]: ...


class QuotaLimiter(Protocol):
    """The daily-quota side of the limiter (worker.marketo.limiter.Limiter)."""

    def observe_usage(self, used: int, others: int = 0) -> None: ...
    def quota_allowed(self) -> int: ...
    def group_allowed(self) -> int: ...


class QuotaWatch:
    """Reads the usage stats when due and hands them to the limiter."""

    def __init__(
        self,
        reader: UsageReader,
        limiter: QuotaLimiter,
        metrics: Metrics,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        exports: ExportReader | None = None,
        quota_zone: ZoneInfo | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reader = reader
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._schedule = UsageSchedule(interval_s, clock())
        self._exports = exports
        self._zone = quota_zone if quota_zone is not None else ZoneInfo("America/Chicago")
        self._wall_clock = wall_clock

    def next_read_in_s(self) -> float:
        """Seconds until the next reading is due (0.0: due now)."""
        return self._schedule.due_in_s(self._clock())

    async def read(self) -> DailyUsage:
        """Read the usage stats once now (MarketoError, OSError, TimeoutError pass through)."""
        usage = await self._reader.usage()
        self._schedule.read(self._clock())
        limiter, metrics = self._limiter, self._metrics
        limiter.observe_usage(usage.total, usage.others)
        allowed = limiter.quota_allowed()
        metrics.quota_instance_today.set(usage.total)
        metrics.quota_others_today.set(usage.others)
        metrics.daily_quota_allowed.set(allowed)
        log.info(
            "quota.usage_read",
            instance_today=usage.total,
            others_today=usage.others,
            group_allowed=limiter.group_allowed(),
            replica_allowed=allowed,
        )
        await self._read_exports()
        return usage

    async def _read_exports(self) -> None:
        """The extract bytes used today; a failure keeps the last figure (the quota is read)."""
        if self._exports is None:
            return
        try:
            jobs = await self._exports.export_jobs("Completed")
        except (MarketoError, OSError, TimeoutError) as exc:
            log.warning("quota.export_usage_failed", error=str(exc))
            return
        day = quota_day(self._wall_clock(), self._zone)
        used = export_bytes_on(day, self._zone, ((j.finished_at, j.file_size) for j in jobs))
        self._metrics.bulk_export_bytes_today.set(used)

    async def run(self, stop: asyncio.Event) -> None:
        """Read whenever a reading is due, until `stop` is set."""
        while not stop.is_set():
            wait_s = self.next_read_in_s()
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait_s)
                continue
            try:
                await self.read()
            except (MarketoError, OSError, TimeoutError) as exc:
                self._schedule.failed(self._clock())
                log.warning("quota.usage_failed", error=str(exc))
