"""Admission of API calls: concurrency (615), rolling window (606), daily quota (607), faults.

Decides which answers count against the limits (not 601, 602, 604, 605, 608, 611).
"""

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.sandbox import faults as fault_rules
from worker.sandbox.envelope import ApiError, Reply, failure, http_error
from worker.sandbox.faults import Faults
from worker.sandbox.limits import ConcurrencyGate, DailyQuota, QuotaDay, RollingWindow
from worker.sandbox.stats import CallStats, Usage

# Adobe's "Error Codes" footnote: answers with these codes count against neither quota nor rate.
UNCOUNTED = frozenset({"601", "602", "604", "605", "608", "611", "http500", "http502"})
REJECTIONS = frozenset({"606", "607", "615"})
_FAULT_MESSAGES = {
    "604": "Request timed out",
    "608": "API Temporarily Unavailable",
    "611": "System error",
}


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """Limit settings; 0 turns a limit off."""

    calls_per_window: int = 100
    window_s: float = 20.0
    concurrency: int = 10
    daily_quota: int = 50_000
    quota_day: QuotaDay = field(default_factory=QuotaDay)
    count_rejections: bool = False


class Gate:
    """Runs each call under the limits and the current faults, and counts it."""

    def __init__(self, config: LimitConfig, faults: Faults, seed: int | None = None) -> None:
        self.config = config
        self.faults = faults
        self.window = RollingWindow(config.calls_per_window, config.window_s)
        self.concurrency = ConcurrencyGate(config.concurrency)
        self.quota = DailyQuota(config.daily_quota, config.quota_day)
        self.stats = CallStats()
        self.usage = Usage(self.quota)
        self.rng = random.Random(seed)

    def _refusal(self, now_s: float, wall_s: float) -> ApiError | None:
        cfg = self.config
        if fault_rules.is_storming(self.faults, now_s) or self.window.is_full(now_s):
            return ApiError(
                "606",
                f"Max rate limit '{cfg.calls_per_window}' exceeded with in '{cfg.window_s:g}' secs",
            )
        if self.quota.is_exhausted(wall_s):
            return ApiError("607", "Daily quota reached")
        return None

    async def run(
        self,
        endpoint: str,
        asset: bool,
        rid: str,
        times: tuple[float, float],
        work: Callable[[], Reply],
        user: str,
    ) -> Reply:
        """Admit the call of API user `user`, apply faults, run `work` and count the answer.

        `times` is (monotonic, wall) at arrival.
        """
        now_s, wall_s = times
        if not self.concurrency.enter():
            limit = self.config.concurrency
            error = ApiError("615", f"Concurrent access limit '{limit}' reached")
            return self.finish(endpoint, failure(rid, error, asset=asset), times, user)
        try:
            refusal = self._refusal(now_s, wall_s)
            if refusal is not None:
                return self.finish(endpoint, failure(rid, refusal, asset=asset), times, user)
            self.window.record(now_s)
            self.quota.use(wall_s, user)
            reply = await self._answer(asset, rid, work)
            if reply.code in UNCOUNTED:
                self.window.forget(now_s)
                self.quota.refund(wall_s, user)
            self._tally(endpoint, reply.code, wall_s)
            return reply
        finally:
            self.concurrency.leave()

    async def _answer(self, asset: bool, rid: str, work: Callable[[], Reply]) -> Reply:
        faults = self.faults
        if faults.latency_ms > 0 or faults.latency_jitter_ms > 0:
            await asyncio.sleep(fault_rules.latency_s(faults, self.rng))
        fault = fault_rules.pick(faults, self.rng.random()) if faults.any_random else None
        if fault == "http500":
            return http_error(500, "Internal Server Error")
        if fault == "http502":
            return http_error(502, "Bad Gateway")
        if fault is not None:
            return failure(rid, ApiError(fault, _FAULT_MESSAGES[fault]), asset=asset)
        try:
            return work()
        except ApiError as error:
            return failure(rid, error, asset=asset)

    def finish(
        self, endpoint: str, reply: Reply, times: tuple[float, float], user: str = ""
    ) -> Reply:
        """Count an answer given without running the call (auth errors, refusals); `user` is
        the caller's API user ("" before authentication: those answers are never counted)."""
        now_s, wall_s = times
        if reply.code in REJECTIONS and self.config.count_rejections:
            self.window.record(now_s)
            self.quota.use(wall_s, user)
        self._tally(endpoint, reply.code, wall_s)
        return reply

    def _tally(self, endpoint: str, code: str, wall_s: float) -> None:
        self.stats.record(endpoint, code)
        if code != "ok" and not code.startswith("http"):
            self.usage.error(code, wall_s)
