"""The instance's daily quota as Marketo's usage stats show it: what other API users spent today,
what that leaves the worker's group, and when to read the stats again. Pure: time passed in.

Marketo's `stats/usage.json` counts the whole subscription's calls today, per API user. The
worker's replicas share one API user (its custom service's), so every other user's count is
another integration's spend. The configured `daily_reserve` is what the worker leaves to them:
once they have spent some of it, the group's own allowance shrinks by as much, so the reserve
still left is theirs whatever the worker does. Their spend past the reserve shrinks it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class DailyUsage:
    """One reading of the usage stats: today's calls, of the whole instance and of our API user."""

    total: int
    own: int  # this worker's API user's calls (every replica's); 0 when that user is unknown

    @property
    def others(self) -> int:
        """Calls of every other API user today."""
        return max(0, self.total - self.own)


def daily_usage(total: int, users: Iterable[tuple[str, int]], own_user: str | None) -> DailyUsage:
    """A reading from usage.json's `total` and `users[]`; without `own_user` (the token named no
    API user), every call counts as ours: nothing is taken from the allowance on a guess."""
    if own_user is None:
        return DailyUsage(total, total)
    wanted = own_user.casefold()  # user ids are emails: compare them without case
    own = sum(count for user, count in users if user.casefold() == wanted)
    return DailyUsage(total, min(own, total))


def group_allowance(daily_quota: int, daily_reserve: int, others: int) -> int:
    """The group's calls for today: the quota less the reserve less what others spent (>= 0)."""
    return max(0, daily_quota - daily_reserve - others)


def export_bytes_on(
    day: date, zone: ZoneInfo, completed: Iterable[tuple[str | None, int | None]]
) -> int:
    """Bytes of bulk extract files counted against `day`'s allocation (Marketo: 500 MB a day):
    the `fileSize` of every completed job whose `finishedAt` falls on `day` in the quota zone.
    A job without a readable time or size counts nothing."""
    total = 0
    for finished_at, size in completed:
        if finished_at is None or size is None:
            continue
        try:
            finished = datetime.fromisoformat(finished_at)
        except ValueError:
            continue
        if finished.tzinfo is not None and finished.astimezone(zone).date() == day:
            total += size
    return total


class UsageSchedule:
    """When the usage stats are read: now (start-up), then every `interval_s`; a reading that
    failed is tried again after `retry_s` (at most the interval)."""

    def __init__(self, interval_s: float, now: float, *, retry_s: float = 60.0) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self._retry_s = min(retry_s, interval_s)
        self._due = now

    def due_in_s(self, now: float) -> float:
        """Seconds until the next reading is due (0.0: due now)."""
        return max(0.0, self._due - now)

    def read(self, now: float) -> None:
        """A reading succeeded at `now`: the next one is an interval on."""
        self._due = now + self.interval_s

    def failed(self, now: float) -> None:
        """A reading failed at `now`: try again sooner than a whole interval."""
        self._due = now + self._retry_s
