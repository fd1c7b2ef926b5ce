"""What every scenario gets: the broker, a scratch directory, the size mode, and polling helpers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bench:
    """One benchmark run's environment."""

    bootstrap: str
    work_dir: Path
    quick: bool
    profile_dir: Path | None = None  # set: the ingest worker runs under pyinstrument

    @property
    def request_timeout_s(self) -> float:
        """The workers' Marketo timeout: with the window, it delays a worker's first call."""
        return 1.0 if self.quick else 5.0

    def path(self, stem: str, suffix: str) -> Path:
        """A new file path in the scratch directory."""
        return self.work_dir / f"{stem}-{uuid.uuid4().hex[:6]}{suffix}"


def poll_until(
    probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float, what: str, every_s: float
) -> tuple[T, float]:
    """Call `probe` every `every_s` until `done(value)`; return the value and the wall time seen.

    A benchmark samples the workers' own signals; `every_s` is its time resolution.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        seen = time.time()
        if done(value):
            return value, seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what} ({value})")
        time.sleep(every_s)  # the sampling period of an external process, not a synchronisation
