"""Drift between a static list and its audience, and what a repair costs. Pure: no I/O.

A member is kept when its lead id or its email is wanted; a wanted person is present when either
matches a member. Emails compare trimmed and lower-cased, as the worker's match key does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from worker.core.ids import AudienceId, LeadId
from worker.core.marketo_api import MAX_BATCH
from worker.core.profile import ProfileState


@dataclass(frozen=True, slots=True)
class Wanted:
    """A person the audience wants in the list; `lead_id` is None until Marketo says it."""

    email: str
    lead_id: LeadId | None


@dataclass(frozen=True, slots=True)
class Desired:
    """What the state wants: per audience, email -> lead id if known; the newest state per email."""

    by_audience: dict[AudienceId, dict[str, LeadId | None]]
    states: dict[str, ProfileState]


@dataclass(frozen=True, slots=True)
class Drift:
    """One list against its audience: sizes, and the persons to add and the leads to remove."""

    in_marketo: int
    desired: int
    to_add: tuple[Wanted, ...]
    to_remove: tuple[LeadId, ...]

    @property
    def is_exact(self) -> bool:
        """Tell whether the list already equals the audience."""
        return not self.to_add and not self.to_remove


@dataclass(frozen=True, slots=True)
class RepairCalls:
    """The Marketo calls a repair of several lists would spend."""

    syncs: int
    adds: int
    removes: int

    @property
    def total(self) -> int:
        """Return every call of the repair."""
        return self.syncs + self.adds + self.removes


def normalize(email: str | None) -> str | None:
    """Return the match key form of an email (trimmed, lower-cased), None when blank."""
    if email is None:
        return None
    return email.strip().lower() or None


def desired_members(states: Iterable[ProfileState], audiences: frozenset[AudienceId]) -> Desired:
    """Collect who the states want in these audiences (`state.desired`, kept current by the worker).

    Deleted markers and profiles without an email are in no list; profiles sharing an email are
    one person in Marketo, wanted where any of them is.
    """
    desired = Desired({audience: {} for audience in audiences}, {})
    for state in states:
        wanted = state.desired & audiences
        if state.deleted or state.email is None or not wanted:
            continue
        newest = desired.states.get(state.email)
        if newest is None or state.ts_ms > newest.ts_ms:
            desired.states[state.email] = state
        for audience in wanted:
            persons = desired.by_audience[audience]
            persons[state.email] = persons.get(state.email) or state.lead_id
    return desired


def members_of(rows: Iterable[Mapping[str, object]]) -> dict[LeadId, str | None]:
    """List members as Marketo reads them (`id`, `email`) -> lead id -> email."""
    members: dict[LeadId, str | None] = {}
    for row in rows:
        lead_id, email = row.get("id"), row.get("email")
        if isinstance(lead_id, int):
            members[LeadId(lead_id)] = email if isinstance(email, str) else None
    return members


def diff(desired: Mapping[str, LeadId | None], members: Mapping[LeadId, str | None]) -> Drift:
    """Compare wanted persons (match-key email -> lead id if known) with members (id -> email)."""
    member_emails = {e for e in (normalize(email) for email in members.values()) if e is not None}
    wanted_ids = {lead_id for lead_id in desired.values() if lead_id is not None}
    to_add = tuple(
        Wanted(email, lead_id)
        for email, lead_id in sorted(desired.items())
        if email not in member_emails and (lead_id is None or lead_id not in members)
    )
    to_remove = tuple(
        lead_id
        for lead_id, email in sorted(members.items())
        if lead_id not in wanted_ids and normalize(email) not in desired
    )
    return Drift(len(members), len(desired), to_add, to_remove)


def known_lead_ids(member_lists: Iterable[Mapping[LeadId, str | None]]) -> dict[str, LeadId]:
    """Email -> lead id as seen among list members (saves a lead sync for persons we met)."""
    known: dict[str, LeadId] = {}
    for members in member_lists:
        for lead_id, email in members.items():
            key = normalize(email)
            if key is not None:
                # several leads may share an email: the lowest id keeps the choice deterministic
                known[key] = min(lead_id, known.get(key, lead_id))
    return known


def with_known_ids(drift: Drift, known: Mapping[str, LeadId]) -> Drift:
    """Fill the persons to add whose lead id is unknown from `known`, where it has them."""
    to_add = tuple(
        w if w.lead_id is not None else Wanted(w.email, known.get(w.email)) for w in drift.to_add
    )
    return Drift(drift.in_marketo, drift.desired, to_add, drift.to_remove)


def repair_calls(drifts: Iterable[Drift], batch: int = MAX_BATCH) -> RepairCalls:
    """Count the calls: one lead sync per `batch` unknown persons (shared by every list), and
    one add or remove per `batch` ids of each list."""
    unknown: set[str] = set()
    adds = removes = 0
    for drift in drifts:
        unknown |= {w.email for w in drift.to_add if w.lead_id is None}
        adds += _batches(len(drift.to_add), batch)
        removes += _batches(len(drift.to_remove), batch)
    return RepairCalls(_batches(len(unknown), batch), adds, removes)


def _batches(count: int, batch: int) -> int:
    return -(-count // batch)
