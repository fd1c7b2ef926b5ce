"""Recent figures from scraped metric samples, as Prometheus computes them over a time range.

Counters and histogram buckets only ever grow, so a figure "since start" hides what happens now:
`RecentSamples` keeps the scrapes of the last `span_s` seconds and works on the difference
between the oldest and the newest, like `rate()` and `histogram_quantile()` over a range.
Pure: the caller scrapes and passes the time in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

Samples = dict[str, list[tuple[dict[str, str], float]]]


def total(samples: Samples, name: str) -> float:
    """The sum of every sample of `name` over all its label sets (0 when absent)."""
    return sum(value for _, value in samples.get(name, []))


def buckets(samples: Samples, name: str) -> dict[float, float]:
    """A histogram's cumulative bucket counts by upper bound, summed over its other labels."""
    counts: dict[float, float] = {}
    for labels, value in samples.get(f"{name}_bucket", []):
        bound = float(labels["le"])
        counts[bound] = counts.get(bound, 0.0) + value
    return counts


def increase(new: float, old: float) -> float:
    """How much a counter grew; a counter that went down was reset (a restart): all of it."""
    return new - old if new >= old else new


def histogram_quantile(q: float, cumulative: Sequence[tuple[float, float]]) -> float | None:
    """The q-quantile of observations in cumulative buckets `(upper bound, count)`.

    As Prometheus's histogram_quantile: find the bucket holding the rank q * count and
    interpolate linearly inside it (the first bucket starts at 0); a rank in the +Inf bucket
    gives the highest finite bound. None when there is no observation.
    """
    ordered = sorted(cumulative)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for index, (bound, count) in enumerate(ordered):
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return ordered[index - 1][0] if index else None
            if index == 0 and bound <= 0:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return ordered[-1][0]


class RecentSamples:
    """The scrapes of the last `span_s` seconds, and figures over that span."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._scrapes: deque[tuple[float, Samples]] = deque()

    def add(self, now_s: float, samples: Samples) -> None:
        """Keep a scrape taken at `now_s`; forget those the span no longer needs."""
        self._scrapes.append((now_s, samples))
        # keep one scrape at or before the span's start: the baseline of the whole span
        while len(self._scrapes) > 2 and self._scrapes[1][0] <= now_s - self.span_s:
            self._scrapes.popleft()

    def rate(self, name: str) -> float | None:
        """Per-second increase of counter `name` over the span; None before two scrapes."""
        if len(self._scrapes) < 2:
            return None
        (old_s, old), (new_s, new) = self._scrapes[0], self._scrapes[-1]
        return increase(total(new, name), total(old, name)) / (new_s - old_s)

    def quantile(self, name: str, q: float) -> float | None:
        """The q-quantile of histogram `name` for the observations made during the span."""
        if not self._scrapes:
            return None
        old = buckets(self._scrapes[0][1], name) if len(self._scrapes) > 1 else {}
        new = buckets(self._scrapes[-1][1], name)
        deltas = [(bound, increase(count, old.get(bound, 0.0))) for bound, count in new.items()]
        return histogram_quantile(q, deltas)
