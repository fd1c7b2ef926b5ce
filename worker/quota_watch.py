"""Marketo's usage stats read at start-up and every `marketo.budget.usage_interval_s`.

Each reading (one call, through the budget like any other) tells the limiter how many calls the
instance made today and how many of them other API users made: theirs come off the daily quota
before this replica's share of it is taken (worker.core.usage), so the reserve stays theirs.
Shown as gauges and a `quota.usage_read` log event. A failed periodic reading is logged and
tried again a minute later; the last reading stays in force meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from worker.core.usage import DailyUsage, UsageSchedule
from worker.errors import MarketoError
from worker.telemetry.metrics import Metrics

log = structlog.get_logger("worker.quota_watch")


class UsageReader(Protocol):
    """Reads today's usage stats (worker.marketo.client.MarketoClient)."""

    async def usage(self) -> DailyUsage: ...


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
    ) -> None:
        self._reader = reader
        self._limiter = limiter
        self._metrics = metrics
        self._clock = clock
        self._schedule = UsageSchedule(interval_s, clock())

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
        return usage

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
