"""Per audience: members wanted, members in Marketo, and the changes pending, kept as counts. Pure.

The counts are those of worker.core.progress (a profile is wanted in an audience when its state
desires it and it is not deleted; in Marketo when Marketo acknowledged it; a pending add is
wanted and not acknowledged, a pending remove the reverse), but maintained as the store changes
states, by the difference between what the state contributed before and after, so that reading
them (the metrics, at every commit) never scans the states. They are kept per partition: a
revoked partition takes its counts with it, a restored one adds those of the states it loads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from worker.core.ids import AudienceId
from worker.core.profile import ProfileState

# what one state contributes: the audiences it wants, and those Marketo acknowledged
Memberships = tuple[frozenset[AudienceId], frozenset[AudienceId]]
NO_MEMBERSHIPS: Memberships = (frozenset(), frozenset())
# a state's memberships as its encoded head has them: (deleted, desired, acknowledged)
Head = tuple[bool, tuple[AudienceId, ...], tuple[AudienceId, ...]]


def memberships(state: ProfileState | None) -> Memberships:
    """What `state` counts for (nothing when there is no state)."""
    if state is None:
        return NO_MEMBERSHIPS
    return (frozenset() if state.deleted else state.desired), state.acked


def from_head(head: Head) -> Memberships:
    """What a state counts for, from its encoded head."""
    deleted, desired, acked = head
    return (frozenset() if deleted else frozenset(desired)), frozenset(acked)


@dataclass(slots=True)
class Counts:
    """One audience's counts."""

    wanted: int = 0
    in_marketo: int = 0
    pending_adds: int = 0
    pending_removes: int = 0

    def add(self, other: Counts) -> None:
        """Add `other`'s counts to these."""
        self.wanted += other.wanted
        self.in_marketo += other.in_marketo
        self.pending_adds += other.pending_adds
        self.pending_removes += other.pending_removes


class Tally:
    """The counts per partition and audience, moved by each state's change."""

    def __init__(self) -> None:
        self._partitions: dict[int, dict[AudienceId, Counts]] = {}

    def change(self, partition: int, before: Memberships, after: Memberships) -> None:
        """Count a state of `partition` that contributed `before` as contributing `after`."""
        if before == after:  # most changes (an attribute, a lead id) move no membership
            return
        counts = self._partitions.setdefault(partition, {})
        _count(counts, before, -1)
        _count(counts, after, 1)

    def load(self, partition: int, heads: Iterable[Head], sign: int = 1) -> None:
        """Count (or, with `sign` -1, uncount) many states of `partition` at once, from their
        encoded heads: grouped first, as a restore's states share a few combinations."""
        counts = self._partitions.setdefault(partition, {})
        for head, times in Counter(heads).items():
            _count(counts, from_head(head), sign * times)

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's counts."""
        self._partitions.pop(partition, None)

    def totals(self, audiences: Iterable[AudienceId]) -> dict[AudienceId, Counts]:
        """These audiences' counts over every partition (others the states still name, no
        longer configured, are left out)."""
        out = {audience: Counts() for audience in audiences}
        for counts in self._partitions.values():
            for audience, count in counts.items():
                total = out.get(audience)
                if total is not None:
                    total.add(count)
        return out

    def of(self, partition: int) -> Mapping[AudienceId, Counts]:
        """One partition's counts."""
        return self._partitions.get(partition, {})


def _count(counts: dict[AudienceId, Counts], contribution: Memberships, times: int) -> None:
    wanted, acked = contribution
    for audience in wanted | acked:
        count = counts.get(audience)
        if count is None:
            count = counts[audience] = Counts()
        member, known = audience in wanted, audience in acked
        if member:
            count.wanted += times
            if not known:
                count.pending_adds += times
        if known:
            count.in_marketo += times
            if not member:
                count.pending_removes += times
