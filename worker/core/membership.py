"""Which audiences a profile belongs to, and which memberships an event flipped. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from worker.core.ids import AudienceId
from worker.core.profile import ProfileState
from worker.core.rules import Rule

CONSENT_PREFIX = "consent."
_CONTAINERS = (list, dict)
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class AudienceRule:
    """An audience as the core sees it: a compiled rule, or None when its origin is `upload`."""

    id: AudienceId
    rule: Rule | None
    # the top-level attributes the rule reads: it needs evaluating only when they change
    heads: frozenset[str] = field(init=False)
    # the result depends on the event's ts (days_since), so it is always re-evaluated; a
    # textual test: a string literal containing the name only makes it conservative
    reads_time: bool = field(init=False)

    def __post_init__(self) -> None:
        paths = self.rule.paths if self.rule else frozenset()
        object.__setattr__(self, "heads", frozenset(p.split(".", 1)[0] for p in paths))
        object.__setattr__(self, "reads_time", bool(self.rule and "days_since" in self.rule.text))


@dataclass(frozen=True, slots=True)
class Audiences:
    """Every configured audience plus the consent switch that empties them all."""

    items: Sequence[AudienceRule]
    consent_path: str = "consent.marketing"
    # the key in the event's `consent` map, when the path names one (else an attribute path)
    _consent_key: str | None = field(init=False, repr=False, compare=False)

    # else the attribute path, name by name (`prefs.marketing` is kept as {"prefs": {...}})
    _consent_parts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.consent_path.removeprefix(CONSENT_PREFIX)
        object.__setattr__(self, "_consent_key", None if key == self.consent_path else key)
        object.__setattr__(self, "_consent_parts", tuple(self.consent_path.split(".")))

    @property
    def fingerprint(self) -> bytes:
        """Identifies the rules: a state written under other rules must be re-evaluated."""
        text = "\n".join(f"{i.id}={i.rule.text if i.rule else '<upload>'}" for i in self.items)
        return hashlib.sha256(f"{self.consent_path}\n{text}".encode()).hexdigest()[:16].encode()

    @property
    def paths(self) -> frozenset[str]:
        """Every attribute path a rule (or the consent switch) reads."""
        paths = {path for item in self.items if item.rule for path in item.rule.paths}
        if not self.consent_path.startswith(CONSENT_PREFIX):
            paths.add(self.consent_path)
        return frozenset(paths)

    def has_consent(self, state: ProfileState) -> bool:
        """Tell whether the profile may be exported (consent "n" means to no list)."""
        if self._consent_key is not None:
            return state.consent.get(self._consent_key) != "n"
        value: object = state.attributes
        for part in self._consent_parts:
            value = value.get(part) if isinstance(value, dict) else None
        return value != "n"

    def exportable(self, state: ProfileState) -> bool:
        """Whether the profile can be in any list at all (not deleted, an email, consent)."""
        return not state.deleted and state.email is not None and self.has_consent(state)

    def desired(
        self, state: ProfileState, before: ProfileState | None = None
    ) -> frozenset[AudienceId]:
        """Return the audiences the profile should be a member of, as Marketo should see it.

        Given the state `before` the event, rules whose attributes did not change keep their
        earlier answer (the hot path: most events change a few attributes of many rules).
        """
        if not self.exportable(state):
            return frozenset()
        attributes, ts_ms = state.attributes, state.ts_ms
        changed: set[str] | None = None
        if before is not None and self.exportable(before):
            changed = _changed_heads(before.attributes, attributes)
            earlier = before.desired
        members = []
        for item in self.items:
            rule = item.rule
            if rule is None:
                member = state.uploaded.get(item.id, False)
            elif changed is not None and not item.reads_time and changed.isdisjoint(item.heads):
                member = item.id in earlier  # nothing it reads changed
            else:
                member = rule.matches(attributes, ts_ms)
            if member:
                members.append(item.id)
        return frozenset(members)


def _changed_heads(before: Mapping[str, object], after: Mapping[str, object]) -> set[str]:
    """The top-level attributes whose (projected) values differ."""
    if before is after:
        return set()
    was = before.get
    # `!=` alone takes 1 for true and [1] for [true], which the rules do not: a type check
    # for scalars, and for containers their JSON text (stricter still: 1 and 1.0, or another
    # key order, only cost an evaluation), a C-level comparison on the hot path
    changed = {
        key
        for key, value in after.items()
        if (old := was(key)) != value
        or type(old) is not type(value)
        or (type(value) in _CONTAINERS and _encode(old) != _encode(value))
    }
    if not before.keys() <= after.keys():
        changed.update(before.keys() - after.keys())
    return changed


def transitions(
    before: frozenset[AudienceId], after: frozenset[AudienceId]
) -> dict[AudienceId, bool]:
    """Return each audience whose membership changed, with True for enter and False for exit."""
    return {audience: audience in after for audience in before ^ after}
