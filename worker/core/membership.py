"""Which audiences a profile belongs to, and which memberships an event flipped. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.core.ids import AudienceId
from worker.core.profile import ProfileState
from worker.core.rules import Rule

CONSENT_PREFIX = "consent."


@dataclass(frozen=True, slots=True)
class AudienceRule:
    """An audience as the core sees it: a compiled rule, or None when its origin is `upload`."""

    id: AudienceId
    rule: Rule | None


@dataclass(frozen=True, slots=True)
class Audiences:
    """Every configured audience plus the consent switch that empties them all."""

    items: Sequence[AudienceRule]
    consent_path: str = "consent.marketing"

    @property
    def paths(self) -> frozenset[str]:
        """Every attribute path a rule reads (the state keeps only these and mapped ones)."""
        paths = {path for item in self.items if item.rule for path in item.rule.paths}
        if not self.consent_path.startswith(CONSENT_PREFIX):
            paths.add(self.consent_path)
        return frozenset(paths)

    def has_consent(self, state: ProfileState) -> bool:
        """Tell whether the profile may be exported (consent "n" means to no list)."""
        if self.consent_path.startswith(CONSENT_PREFIX):
            value: object = state.consent.get(self.consent_path.removeprefix(CONSENT_PREFIX))
        else:
            value = state.attributes.get(self.consent_path)
        return value != "n"

    def desired(self, state: ProfileState) -> frozenset[AudienceId]:
        """Return the audiences the profile should be a member of, as Marketo should see it."""
        if state.deleted or state.email is None or not self.has_consent(state):
            return frozenset()
        return frozenset(
            item.id
            for item in self.items
            if (
                item.rule.matches(state.attributes, state.ts_ms)
                if item.rule is not None
                else state.uploaded.get(item.id, False)
            )
        )


def transitions(
    before: frozenset[AudienceId], after: frozenset[AudienceId]
) -> dict[AudienceId, bool]:
    """Return each audience whose membership changed, with True for enter and False for exit."""
    return {audience: audience in after for audience in before ^ after}
