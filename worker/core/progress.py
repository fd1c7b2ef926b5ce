"""How far each list is from its audience, as the states tell it, and the calls left. Pure.

Per audience, over every profile's state: members wanted (the state wants the membership and the
profile is not deleted), in Marketo (Marketo acknowledged the membership), pending adds (wanted,
not acknowledged) and pending removes (acknowledged, not wanted). These count profiles.

The calls left are those the worker would send to settle what is pending, counted as a repair's
(worker.core.drift.repair_calls): a lead sync per batch of persons without a lead id, shared by
every list (a person pending in three lists costs one), and a list add or remove per batch of each
list. Calls count persons: profiles sharing an email are one Marketo person. A pending remove
always has a lead id (Marketo acknowledged the person in the list), so it never needs a sync.
An audience that is no longer configured is listed with its counts but no calls: the worker
sends nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from worker.core.drift import Drift, RepairCalls, Wanted, repair_calls
from worker.core.ids import AudienceId, LeadId
from worker.core.marketo_api import MAX_BATCH
from worker.core.profile import ProfileState


@dataclass(frozen=True, slots=True)
class AudienceProgress:
    """One audience: its counts, and the calls that settle it (None when not configured)."""

    audience: AudienceId
    wanted: int
    in_marketo: int
    pending_adds: int
    pending_removes: int
    calls: RepairCalls | None

    @property
    def configured(self) -> bool:
        """Tell whether the configuration still names the audience."""
        return self.calls is not None


@dataclass(frozen=True, slots=True)
class Progress:
    """Every audience's progress, and the calls left for all the configured ones together (fewer
    than their sum where persons pending in several lists share a lead sync)."""

    profiles: int
    audiences: tuple[AudienceProgress, ...]  # the configured ones in order, then the others
    calls: RepairCalls


@dataclass(slots=True)
class _Tally:
    """One audience's counts so far, and its pending persons (match key -> lead id if known)."""

    wanted: int = 0
    in_marketo: int = 0
    pending_adds: int = 0
    pending_removes: int = 0
    adds: dict[str, LeadId | None] = field(default_factory=dict)
    removes: set[LeadId] = field(default_factory=set)

    def drift(self) -> Drift:
        to_add = tuple(Wanted(person, lead) for person, lead in sorted(self.adds.items()))
        return Drift(self.in_marketo, self.wanted, to_add, tuple(sorted(self.removes)))


def progress(
    states: Iterable[ProfileState], configured: Sequence[AudienceId], batch: int = MAX_BATCH
) -> Progress:
    """Count the audiences' members, pending changes and calls left, over these states."""
    tallies: dict[AudienceId, _Tally] = {audience: _Tally() for audience in configured}
    profiles = 0
    for state in states:
        profiles += 1
        wanted = frozenset() if state.deleted else state.desired
        # a profile without an email is a person of its own (the worker cannot sync it anyway)
        person = state.email if state.email is not None else f"\x00{profiles}"
        for audience in wanted | state.acked:
            tally = tallies.get(audience)
            if tally is None:
                tally = tallies[audience] = _Tally()
            acked = audience in state.acked
            if audience in wanted:
                tally.wanted += 1
                if not acked:
                    tally.pending_adds += 1
                    tally.adds[person] = tally.adds.get(person) or state.lead_id
            if acked:
                tally.in_marketo += 1
                if audience not in wanted:
                    tally.pending_removes += 1
                    if state.lead_id is not None:
                        tally.removes.add(state.lead_id)
    current = set(configured)
    order = [*configured, *sorted(set(tallies) - current)]
    drifts = {audience: tallies[audience].drift() for audience in configured}
    audiences = tuple(
        AudienceProgress(
            audience,
            tallies[audience].wanted,
            tallies[audience].in_marketo,
            tallies[audience].pending_adds,
            tallies[audience].pending_removes,
            repair_calls([drifts[audience]], batch) if audience in current else None,
        )
        for audience in order
    )
    return Progress(profiles, audiences, repair_calls(drifts.values(), batch))


def seconds_for(calls: int, calls_per_window: int, window_s: float) -> float:
    """The time `calls` take at a budget of `calls_per_window` calls per `window_s` seconds."""
    return calls * window_s / calls_per_window
