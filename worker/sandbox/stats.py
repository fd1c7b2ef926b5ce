"""Counters: calls per endpoint and code (for `/_sandbox/stats`) and Marketo's usage endpoints.

`/rest/v1/stats/usage.json` and `/errors.json` report the current quota day.
"""

from collections import Counter

from worker.sandbox.envelope import Reply, lead_db_ok
from worker.sandbox.limits import DailyQuota
from worker.sandbox.params import Call


class CallStats:
    """How many calls each endpoint answered, by code ("ok", "606", "http502", …)."""

    def __init__(self) -> None:
        self.calls: dict[str, Counter[str]] = {}

    def record(self, endpoint: str, code: str) -> None:
        """Count one answered call."""
        counter = self.calls.get(endpoint)
        if counter is None:
            counter = self.calls[endpoint] = Counter()
        counter[code] += 1

    def as_json(self) -> dict[str, dict[str, int]]:
        """The counters as plain JSON values."""
        return {endpoint: dict(codes) for endpoint, codes in sorted(self.calls.items())}

    def total(self) -> int:
        """Every call answered so far."""
        return sum(sum(codes.values()) for codes in self.calls.values())


class Usage:
    """Today's counted calls and error codes, as Marketo's usage endpoints report them."""

    def __init__(self, quota: DailyQuota) -> None:
        self.quota = quota
        self._day = ""
        self._errors: Counter[str] = Counter()

    def error(self, code: str, wall_s: float) -> None:
        """Count one request-level error code for today."""
        self._roll(wall_s)
        self._errors[code] += 1

    def _roll(self, wall_s: float) -> None:
        day = self.quota.day.key(wall_s)
        if day != self._day:
            self._day, self._errors = day, Counter()

    def usage(self, call: Call) -> Reply:
        """`GET /rest/v1/stats/usage.json`: today's counted calls, and each API user's."""
        used = self.quota.used_today(call.now_s)
        users = [{"userId": u, "count": n} for u, n in self.quota.users_today(call.now_s)]
        date = self.quota.day.label(call.now_s)
        return lead_db_ok(call.rid, [{"date": date, "total": used, "users": users}])

    def errors(self, call: Call) -> Reply:
        """`GET /rest/v1/stats/errors.json`."""
        self._roll(call.now_s)
        counts = [{"errorCode": c, "count": n} for c, n in sorted(self._errors.items())]
        date = self.quota.day.label(call.now_s)
        total = sum(self._errors.values())
        return lead_db_ok(call.rid, [{"date": date, "total": total, "errors": counts}])
