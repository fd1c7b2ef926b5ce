"""How `resync` reads a static list through a bulk extract: when the extract is worth it, how
long to wait between status reads, when to stop waiting, and which byte ranges to download.

Pure: no I/O and no clock (elapsed seconds are passed in). The figures are Marketo's
(docs/marketo-facts.md, "Bulk Lead Extract"): a job's status is refreshed about once a minute
("do not poll more frequently"; every 5 minutes is enough), and every bulk request, each status
read and each file range included, is one call against the budget and the daily quota.

Why 5,000 members: REST pages cost 1 call per 300 members, an extract about 5 calls for a list
that fits in one file range (create, enqueue, 2-3 status reads, the file), more by one per
5 minutes the job runs. Both cost the same near 1,500 members; the extract also waits at least
a refresh or two (minutes) where REST pages take seconds, so the line sits where the extract
already saves two thirds of the calls (17 pages against about 6), and the saving only grows
above it: a 1,000,000-member list is 3,334 pages against a few dozen extract calls.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BULK_ABOVE = 5_000  # members; the module docstring says why
REFRESH_S = 60.0  # Marketo refreshes a job's status about once a minute
LONGEST_WAIT_S = 300.0  # "every 5 minutes is enough": the backoff's ceiling
# 1,000,000 members at 30 rows/s (Adobe's largest example job) take about 9 hours
DEADLINE_S = 12 * 3600.0
LIMITED_TRIES = 5  # enqueues refused with "Too many jobs in queue" before giving up
RANGE_BYTES = 10_000_000  # a file range per download: about 280,000 members of id and email


@dataclass(frozen=True, slots=True)
class ExtractPlan:
    """When a list is read by extract, and the waits of one extract job."""

    bulk_above: int = DEFAULT_BULK_ABOVE
    refresh_s: float = REFRESH_S
    longest_wait_s: float = LONGEST_WAIT_S
    deadline_s: float = DEADLINE_S
    limited_tries: int = LIMITED_TRIES
    range_bytes: int = RANGE_BYTES

    def __post_init__(self) -> None:
        if self.bulk_above < 0 or self.refresh_s <= 0 or self.range_bytes <= 0:
            raise ValueError(f"not an extract plan: {self}")

    def starts_in_bulk(self, desired: int) -> bool:
        """Whether to extract at once: a list is about as large as its audience, so an audience
        above the line skips the REST pages (a list that proves larger while paged switches)."""
        return desired > self.bulk_above

    def switches(self, members_read: int) -> bool:
        """Whether a list read by REST pages has shown itself above the line: stop paging and
        extract it (the pages read so far, at most `bulk_above / 300 + 1`, are the probe's cost)."""
        return members_read > self.bulk_above

    def wait_s(self, polls: int) -> float:
        """Seconds before the next status read after `polls` reads: one refresh, then doubling,
        never more than the ceiling (and never less than a refresh)."""
        return min(self.refresh_s * 2.0 ** min(polls, 32), max(self.longest_wait_s, self.refresh_s))

    def gives_up(self, elapsed_s: float, next_wait_s: float) -> bool:
        """Whether waiting `next_wait_s` more would pass the deadline (counted from the enqueue)."""
        return elapsed_s + next_wait_s > self.deadline_s

    def limited_wait_s(self, tries: int) -> float | None:
        """Seconds to wait before enqueueing again after `tries` refusals for a full queue (other
        jobs leave it as they end, at a refresh), or None once the tries are spent."""
        return None if tries >= self.limited_tries else self.wait_s(tries)

    def ranges(self, file_size: int) -> list[tuple[int, int]]:
        """The file's byte ranges (first, last inclusive), in order, each at most `range_bytes`."""
        return [
            (first, min(first + self.range_bytes, file_size) - 1)
            for first in range(0, file_size, self.range_bytes)
        ]
