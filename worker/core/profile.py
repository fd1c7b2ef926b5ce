"""Per-profile state and how an event changes it. Pure: no I/O.

A state keeps the profile's attributes (every one, or the paths `state.attributes` lists), its
email and ecid, consent and upload-origin memberships, so that an audience added later is
evaluated from the state alone; and the memberships wanted and the ones Marketo acknowledged,
and the Marketo lead id. A deleted profile shrinks to a marker with its
`ts`, so that an older event arriving later cannot bring it back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from worker.core.email import is_valid_email
from worker.core.events import EventOp, ProfileUpdate
from worker.core.ids import AudienceId, JsonValue, LeadId

MEMBER_STATUSES = frozenset({"realized", "existing"})
ECID = "identities.ecid"  # with a list of retained paths, the ecid is kept only when mapped
# in the retained paths: every attribute (and the ecid), `state.attributes: all`
EVERYTHING = "*"
ALL_ATTRIBUTES = frozenset({EVERYTHING})


class Outcome(StrEnum):
    """What an event did to its profile; the label of `events_total{outcome}`."""

    APPLIED = "applied"
    STALE = "stale"
    NO_CHANGE = "no_change"
    INVALID = "invalid"
    UNMATCHED = "unmatched"


class Unmatched(StrEnum):
    """Why an event was counted unmatched; the label of `unmatched_total{reason}`."""

    NO_EMAIL = "no_email"  # the profile has no email
    INVALID_EMAIL = "invalid_email"  # the event's email is not an address (worker.core.email)
    NOT_IN_MARKETO = "not_in_marketo"  # match_only, and Marketo does not know the person


@dataclass(slots=True)
class ProfileState:
    """What the worker knows of one profile."""

    ts_ms: int
    offset: int
    email: str | None = None
    ecid: str | None = None
    attributes: dict[str, JsonValue] = field(default_factory=dict)
    consent: dict[str, str] = field(default_factory=dict)
    uploaded: dict[str, bool] = field(default_factory=dict)  # upload-origin audience -> member
    desired: frozenset[AudienceId] = frozenset()
    acked: frozenset[AudienceId] = frozenset()
    lead_id: LeadId | None = None
    deleted: bool = False
    # `marketo.delete_persons`: the deleted profile's Marketo person (`lead_id`) is still to be
    # deleted; kept in the changelog so that a restore after a crash queues the deletion again
    erasing: bool = False

    def is_newer(self, ts_ms: int, offset: int) -> bool:
        """Tell whether an event at (`ts_ms`, `offset`) is newer than what this state saw."""
        return (ts_ms, offset) > (self.ts_ms, self.offset)


def merge_patch(
    target: Mapping[str, JsonValue], patch: Mapping[str, JsonValue]
) -> dict[str, JsonValue]:
    """Apply a JSON Merge Patch (RFC 7386): objects merge deeply, `null` deletes."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict):
            base = merged.get(key)
            merged[key] = merge_patch(base if isinstance(base, dict) else {}, value)
        else:
            merged[key] = value
    return merged


def project(attributes: Mapping[str, JsonValue], paths: Iterable[str]) -> dict[str, JsonValue]:
    """Keep only the attribute paths the state retains (`state.attributes` as a list).

    A null, or a path through a non-object, is not kept: rules and mapping read both as absent.
    """
    kept: dict[str, JsonValue] = {}
    for head, rests in _by_head(paths if isinstance(paths, frozenset) else frozenset(paths)):
        value = attributes.get(head)
        if value is None:
            continue
        if rests is None:  # the whole value is read
            kept[head] = value
        elif isinstance(value, dict):
            # every path under this head at once: `a.b.x` and `a.b.y` both land in one `a`
            inner = project(value, rests)
            if inner:
                kept[head] = inner
    return kept


@functools.cache
def _by_head(paths: frozenset[str]) -> tuple[tuple[str, frozenset[str] | None], ...]:
    """The paths grouped by their first name: (head, the rest of each path under it), or
    (head, None) when the head itself is read. The same few path sets serve every event."""
    whole: set[str] = set()
    nested: dict[str, set[str]] = {}
    for head, _, rest in (path.partition(".") for path in paths):
        if rest:
            nested.setdefault(head, set()).add(rest)
        else:
            whole.add(head)
    grouped: dict[str, frozenset[str] | None] = dict.fromkeys(whole)
    grouped.update((h, frozenset(r)) for h, r in nested.items() if h not in whole)
    return tuple(sorted(grouped.items(), key=lambda item: item[0]))


def apply(
    state: ProfileState | None, event: ProfileUpdate, offset: int, paths: frozenset[str]
) -> ProfileState | None:
    """Return the state after `event`, or None when the event is stale (changes nothing);
    `paths` are the attribute paths the state retains (ALL_ATTRIBUTES: every one)."""
    if state is not None and not state.is_newer(event.ts_ms, offset):
        return None
    base = state or ProfileState(ts_ms=event.ts_ms, offset=offset)
    if event.op is EventOp.DELETE:
        return ProfileState(
            ts_ms=event.ts_ms,
            offset=offset,
            desired=base.desired,
            acked=base.acked,
            lead_id=base.lead_id,
            deleted=True,
        )
    fresh = event.op is EventOp.UPSERT or base.deleted
    if not fresh:
        attributes = merge_patch(base.attributes, event.attributes)  # drops the nulls
    elif None in event.attributes.values():  # a null is an absent attribute: not kept
        attributes = {k: v for k, v in event.attributes.items() if v is not None}
    else:
        attributes = event.attributes
    everything = EVERYTHING in paths
    identities = event.identities
    uploaded = {} if base.deleted else base.uploaded
    if event.audiences:
        uploaded = {**uploaded, **{k: v in MEMBER_STATUSES for k, v in event.audiences.items()}}
    return ProfileState(  # not dataclasses.replace: twice the cost, on every event
        ts_ms=event.ts_ms,
        offset=offset,
        email=_valid_email(event.email, base.email) if "email" in identities else base.email,
        ecid=(
            (event.ecid if "ecid" in identities else base.ecid)
            if everything or ECID in paths
            else None
        ),
        attributes=attributes if everything else project(attributes, paths),
        consent={**base.consent, **event.consent} if not base.deleted else dict(event.consent),
        uploaded=uploaded,
        desired=base.desired,
        acked=base.acked,
        lead_id=base.lead_id,
    )


def _valid_email(email: str | None, known: str | None) -> str | None:
    """The event's email when it is a valid one, else None: an invalid email is no match key,
    so the profile is never sent to Marketo. The email the state already has was checked."""
    if email is None or email == known or is_valid_email(email):
        return email
    return None
