"""Fakes for ports, shared by test modules (never stand-ins for Kafka or the sandbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from worker.core.ids import LeadId


class RecordingLimiter:
    """An unlimited limiter that records how it was used."""

    def __init__(self) -> None:
        self.slots = 0
        self.rate_limited_codes: list[str] = []
        self.quota_exhausted_calls = 0

    def call(self) -> AbstractAsyncContextManager[None]:
        """Take a slot (always granted)."""
        return self._slot()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        self.slots += 1
        yield

    def rate_limited(self, code: str) -> None:
        """Record a 606/615."""
        self.rate_limited_codes.append(code)

    def quota_exhausted(self) -> None:
        """Record a 607."""
        self.quota_exhausted_calls += 1


@dataclass(frozen=True)
class Result:
    """One record's outcome in a Marketo answer, as fakes of the list writer give it."""

    status: str
    lead_id: LeadId | None = None
    reasons: tuple[tuple[str, str], ...] = ()
