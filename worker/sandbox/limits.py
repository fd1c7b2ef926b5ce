"""Marketo's limits: rolling call window (606), calls in flight (615), daily quota (607).

Pure: every method takes `now_s`; a limit of 0 means off. Limits: docs/marketo-facts.md.
"""

from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


class RollingWindow:
    """At most `calls` counted calls in any `window_s` seconds (Marketo: 100 per 20 s)."""

    def __init__(self, calls: int, window_s: float) -> None:
        self.calls = calls
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.peak = 0

    def count(self, now_s: float) -> int:
        """Counted calls in the window ending at `now_s`."""
        cutoff = now_s - self.window_s
        times = self._times
        while times and times[0] <= cutoff:
            times.popleft()
        return len(times)

    def is_full(self, now_s: float) -> bool:
        """Whether one more call now would exceed the limit."""
        return self.calls > 0 and self.count(now_s) >= self.calls

    def record(self, now_s: float) -> None:
        """Count a call made at `now_s`."""
        self._times.append(now_s)
        self.peak = max(self.peak, self.count(now_s))

    def forget(self, now_s: float) -> None:
        """Un-count a call recorded at `now_s` whose answer is not counted (601, 602, ...)."""
        try:
            self._times.remove(now_s)
        except ValueError:
            return

    def reset(self) -> None:
        """Forget every call and the peak."""
        self._times.clear()
        self.peak = 0


class ConcurrencyGate:
    """At most `limit` calls in flight; the next one is refused (Marketo: 615 beyond 10)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0

    def enter(self) -> bool:
        """Start a call; False (and nothing held) if it would exceed the limit."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.limit > 0 and self.in_flight > self.limit:
            self.in_flight -= 1
            return False
        return True

    def leave(self) -> None:
        """Finish a call started with a successful `enter`."""
        self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class QuotaDay:
    """When the quota day turns: local midnight in `zone`, or every `day_s` seconds (tests)."""

    zone: str = "America/Chicago"
    day_s: float = 0.0
    origin_s: float = 0.0

    def key(self, wall_s: float) -> str:
        """An id that changes exactly when the quota resets."""
        if self.day_s > 0:
            return str(int((wall_s - self.origin_s) // self.day_s))
        return self.label(wall_s)

    def label(self, wall_s: float) -> str:
        """The calendar date (`YYYY-MM-DD`) in the quota zone, as usage.json reports it."""
        return datetime.fromtimestamp(wall_s, ZoneInfo(self.zone)).date().isoformat()

    def resets_at_s(self, wall_s: float) -> float:
        """The wall time of the next reset."""
        if self.day_s > 0:
            return self.origin_s + (int((wall_s - self.origin_s) // self.day_s) + 1) * self.day_s
        local = datetime.fromtimestamp(wall_s, ZoneInfo(self.zone))
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
        return midnight.replace(tzinfo=ZoneInfo(self.zone)).astimezone(UTC).timestamp()


class DailyQuota:
    """At most `quota` counted calls per quota day (Marketo: 50,000, reset at midnight CST),
    and today's count per API user (the usage stats' breakdown)."""

    def __init__(self, quota: int, day: QuotaDay) -> None:
        self.quota = quota
        self.day = day
        self._key = ""
        self.used = 0
        self.by_user: Counter[str] = Counter()

    def _roll(self, wall_s: float) -> None:
        key = self.day.key(wall_s)
        if key != self._key:
            self._key, self.used, self.by_user = key, 0, Counter()

    def is_exhausted(self, wall_s: float) -> bool:
        """Whether the day's quota is spent."""
        self._roll(wall_s)
        return self.quota > 0 and self.used >= self.quota

    def use(self, wall_s: float, user: str) -> None:
        """Count one call of API user `user` against today's quota."""
        self._roll(wall_s)
        self.used += 1
        self.by_user[user] += 1

    def refund(self, wall_s: float, user: str) -> None:
        """Un-count a call whose answer is not counted."""
        self._roll(wall_s)
        if self.by_user[user] > 0:
            self.used -= 1
            self.by_user[user] -= 1

    def exhaust(self, wall_s: float, user: str) -> None:
        """Spend the rest of today's quota now, as API user `user` (fault injection)."""
        self._roll(wall_s)
        self.by_user[user] += max(0, self.quota - self.used)
        self.used = max(self.used, self.quota)

    def used_today(self, wall_s: float) -> int:
        """Counted calls so far today."""
        self._roll(wall_s)
        return self.used

    def users_today(self, wall_s: float) -> list[tuple[str, int]]:
        """Each API user's counted calls today (those with none left out), by user id."""
        self._roll(wall_s)
        return sorted((user, count) for user, count in self.by_user.items() if count > 0)
