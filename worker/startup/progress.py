"""Start-up's progress: the phase it is in, what it waits for, and giving up on SIGTERM.

Start-up (usage, field checks, finding and creating lists) makes Marketo calls that wait for
budget slots: with a small budget and many new lists it lasts minutes. A stop during it must
not wait for its end (Kubernetes kills a pod that ignores SIGTERM for its grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

T = TypeVar("T")

log = structlog.get_logger("worker.startup")
MIN_LOGGED_WAIT_S = 0.1  # shorter waits (the window sliding by) explain no delay worth a line


class StartUp:
    """Tracks the phase; logs the budget waits while start-up lasts."""

    def __init__(self) -> None:
        self.phase = "starting"
        self.over = False

    def enter(self, phase: str) -> None:
        """Name what start-up does now (named again in its waits and in a stop)."""
        self.phase = phase

    def budget_wait(self, wait_s: float) -> None:
        """The limiter's `on_delay`: a call of start-up waits `wait_s` for a budget slot."""
        if not self.over and wait_s >= MIN_LOGGED_WAIT_S:
            waiting = {"for": "budget", "seconds": round(wait_s, 1), "phase": self.phase}
            log.info("startup.waiting", **waiting)

    async def unless_stopped(self, work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
        """Run `work` to its end and return its result; None when `stop` is set first (`work`
        is then cancelled: its calls end, their slots are released)."""
        task = asyncio.ensure_future(work)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            interrupted = not task.done()  # a result that came with the stop is still used
            if interrupted:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if interrupted:
            log.info("worker.stopping", phase=self.phase)
            return None
        self.over = True
        return task.result()
