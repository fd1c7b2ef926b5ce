"""The calls of the rolling window a backlog leaves free for the stream (docs/message-flow.md).

Pure: stdlib only, time passed in as `now` (monotonic seconds); no I/O.

A backlog that spends the window at once leaves the stream no call until that window has passed,
and one that holds back a fixed part of the window (half before the stream is seen, a tenth
more than it used) finishes a window late. So the backlog keeps free just what the stream will
start before room frees by itself: for each moment of the next window, the stream's calls
expected by then (its rate over the last few seconds) less the calls that leave the window by
then, at the worst moment; plus a few calls for a stream that starts meanwhile. What the
backlog spends at once it gets back at once a window later, and what the stream spends
steadily it gets back steadily, so neither waits for the window to turn. Only at a start,
before any call of the stream, is its need unknown: the backlog then leaves half the window for
the first two seconds of its own (a streamed change calls after its linger), then one call in
fifty, the spare, to a stream that has not shown.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

RATE_HORIZON_S = 4.0  # the stream's rate is its calls over this, scaled to the window
# A stream's first call follows its first change by the linger (1 s by default): until it shows
# or this long after the backlog's first call, the stream is kept half the window.
BLIND_S = 2.0


class StreamReserve:
    """What a backlog call must leave free, from the stream's recent calls and the window."""

    def __init__(
        self, window_s: float, *, horizon_s: float = RATE_HORIZON_S, blind_s: float = BLIND_S
    ) -> None:
        if window_s <= 0 or horizon_s <= 0 or blind_s < 0:
            raise ValueError("window_s and horizon_s must be positive, blind_s not negative")
        self._window_s = window_s
        self._horizon_s = min(horizon_s, window_s)
        self._blind_s = blind_s
        self._started: deque[float] = deque()  # the stream's call starts, last window's
        self._first: float | None = None  # the stream's first call seen
        self._backlog_first: float | None = None  # the backlog's first call seen

    def backlog_started(self, now: float) -> None:
        """Note a call of the backlog starting at `now`."""
        if self._backlog_first is None:
            self._backlog_first = now

    def stream_started(self, now: float) -> None:
        """Note a call of the stream starting at `now`."""
        if self._first is None:
            self._first = now
        self._started.append(now)

    def rate(self, now: float) -> float:
        """The stream's calls per second over the `horizon_s` before its latest call (its first
        calls: since the first, over a second at least, so a stream just started is not read as
        idle); read at its latest call, so the rate does not sag between two of them."""
        started = self._started
        while started and started[0] + self._window_s <= now:
            started.popleft()
        if self._first is None or not started or now - started[-1] > self._horizon_s:
            return 0.0
        last = started[-1]
        span = min(self._horizon_s, max(1.0, last - self._first))
        return sum(1 for at in started if at > last - span) / span

    def kept_free(self, now: float, calls_limit: int, leaving: Sequence[float]) -> int:
        """Calls of the window the backlog must leave free at `now`, of `calls_limit`.

        `leaving` holds, in ascending order, when each finished call still counted leaves the
        window (calls in flight leave a whole window on, later than any moment weighed here).
        """
        if self._blind(now):
            return calls_limit // 2
        rate = self.rate(now)
        need = rate * self._window_s - len(leaving)  # the window's end
        for passed, leaves_at in enumerate(leaving):  # just before each call leaves
            need = max(need, rate * (leaves_at - now) - passed)
        spare = max(1, calls_limit // 50)  # a stream starting meanwhile; rounding
        in_window = len(self._started)
        # each lane has at least half the window: the backlog is never kept below its half
        cap = max(0, calls_limit // 2 - in_window)
        return min(cap, max(0, math.ceil(need)) + spare)

    def _blind(self, now: float) -> bool:
        """Whether no stream has been seen yet and the backlog began less than `blind_s` ago:
        at a start, a stream may be on its way whose need no call has shown."""
        if self._first is not None:
            return False
        began = self._backlog_first
        return began is None or now - began < self._blind_s
