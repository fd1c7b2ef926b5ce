"""Audience activation: which audience definitions a partition's states were evaluated with,
what a restore must do about a difference, and the profile-level change it makes. Pure.

Each state partition carries one control record (`DEFINITIONS_KEY`): per audience id, a
fingerprint of what decides its members (origin, the rule's parsed form, the consent path) and
one of its Marketo list (the resolved list id), and the wall-clock start time of the replica
that wrote it. A restore compares it with the configured definitions:

- the same: proceed, nothing to evaluate;
- different (or no record, as written before this version) and this replica started no earlier
  than the record's writer: activate, i.e. evaluate every stored profile against the added and
  changed audiences, clear what a changed list acknowledged, drop the memberships of audiences
  no longer configured, then write our record;
- different, and this replica started earlier than the record's writer: stand down on the
  partition (a newer deployment evaluated it; an older one must not undo that).

A rollback is a newer deployment of an older configuration: it started later, so it wins too.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum

import msgspec

from worker.core.ids import AudienceId, ListId
from worker.core.membership import Audiences
from worker.core.profile import ProfileState
from worker.core.rules.parser import Source
from worker.core.snapshot import CONTROL_PREFIX
from worker.errors import RuleError

DEFINITIONS_KEY = CONTROL_PREFIX + b"audiences"
_FINGERPRINT_CHARS = 16  # 64 bits: collisions between two definitions of one id are no concern
_SUMMARY_CHARS = 8


class Definition(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """One audience's fingerprints: what decides its members, and the list that holds them."""

    rule: str
    list: str


class Definitions(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """The audience definitions a partition was evaluated with, and when its writer started."""

    started: float  # the writing replica's start, wall clock (epoch seconds)
    audiences: dict[AudienceId, Definition]

    def summary(self) -> dict[str, object]:
        """A short form for log lines: per audience the heads of its two fingerprints."""
        short = {
            audience: f"{d.rule[:_SUMMARY_CHARS]}/{d.list[:_SUMMARY_CHARS]}"
            for audience, d in sorted(self.audiences.items())
        }
        return {"started": round(self.started, 3), "audiences": short}


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Definitions).decode


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_FINGERPRINT_CHARS]


def normalised_rule(text: str) -> str:
    """The rule's parsed form (its syntax tree, with quoted names spelled out): spacing, line
    breaks and redundant parentheses do not change it, any change of meaning does."""
    source = Source(text)
    try:
        tree = source.parse()
    except RuleError:  # configured rules compile; this keeps the function total
        return "text:" + text
    # ast.dump leaves positions out: only the structure and the names and values remain
    return f"{sorted(source.quoted.items())!r}{ast.dump(tree, annotate_fields=False)}"


def rule_fingerprint(rule: str | None, consent_path: str) -> str:
    """Fingerprint what decides an audience's members: its origin and normalised rule (None:
    an upload audience), and the consent path that empties every audience."""
    origin = "upload" if rule is None else "rule:" + normalised_rule(rule)
    return _digest(f"{origin}\nconsent:{consent_path}")


def list_fingerprint(list_id: ListId | None) -> str:
    """Fingerprint an audience's Marketo list by its resolved id (the name may change, the list
    it finds is what counts)."""
    return _digest(f"list:{list_id}")


def definitions(
    audiences: Audiences, list_ids: Mapping[AudienceId, ListId], started: float
) -> Definitions:
    """The configured definitions, written by a replica started at `started`."""
    return Definitions(
        started=started,
        audiences={
            item.id: Definition(
                rule_fingerprint(item.rule.text if item.rule else None, audiences.consent_path),
                list_fingerprint(list_ids.get(item.id)),
            )
            for item in audiences.items
        },
    )


def record(ours: Definitions) -> tuple[bytes, bytes]:
    """The control record (key, value) of the definitions."""
    return DEFINITIONS_KEY, _encode(ours)


def parse(value: bytes | None) -> Definitions | None:
    """The definitions a record holds; None when there is none or it does not decode (treated
    as no record: an activation evaluates everything, which is always safe)."""
    if value is None:
        return None
    try:
        return _decode(value)
    except msgspec.DecodeError:
        return None


class RecordTap:
    """Passes a changelog read through and keeps the last definitions record seen in it."""

    def __init__(self) -> None:
        self.value: bytes | None = None

    def __call__(
        self, batches: Iterable[list[tuple[bytes, bytes | None]]]
    ) -> Iterator[list[tuple[bytes, bytes | None]]]:
        for batch in batches:
            for key, value in batch:
                if key == DEFINITIONS_KEY:
                    self.value = value
            yield batch


class Verdict(StrEnum):
    """What a replica does with a restored partition."""

    PROCEED = "proceed"  # same definitions: nothing to evaluate
    ACTIVATE = "activate"  # ours differ and are the newer: evaluate, then write our record
    STAND_DOWN = "stand_down"  # ours differ and are older: leave the partition to newer ones


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The verdict and the differences behind it."""

    verdict: Verdict
    added: frozenset[AudienceId] = frozenset()
    changed: frozenset[AudienceId] = frozenset()  # what decides the members changed
    relisted: frozenset[AudienceId] = frozenset()  # the list changed
    removed: frozenset[AudienceId] = frozenset()  # recorded, no longer configured
    unrecorded: bool = False  # no record: every configured audience is evaluated

    @property
    def evaluated(self) -> frozenset[AudienceId]:
        """The audiences whose members are evaluated afresh."""
        return self.added | self.changed


def decide(recorded: Definitions | None, ours: Definitions) -> Decision:
    """Compare the partition's recorded definitions with ours (see the module's docstring)."""
    if recorded is None:
        return Decision(Verdict.ACTIVATE, added=frozenset(ours.audiences), unrecorded=True)
    theirs, mine = recorded.audiences, ours.audiences
    both = mine.keys() & theirs.keys()
    decision = Decision(
        Verdict.ACTIVATE,
        added=frozenset(mine.keys() - theirs.keys()),
        changed=frozenset(a for a in both if mine[a].rule != theirs[a].rule),
        relisted=frozenset(a for a in both if mine[a].list != theirs[a].list),
        removed=frozenset(theirs.keys() - mine.keys()),
    )
    if not (decision.evaluated or decision.relisted or decision.removed):
        return Decision(Verdict.PROCEED)
    if ours.started < recorded.started:
        return dataclasses.replace(decision, verdict=Verdict.STAND_DOWN)
    return decision


@dataclasses.dataclass(slots=True)
class Activation:
    """Applies an activation to one stored profile at a time, and counts what it dropped."""

    decision: Decision
    audiences: Audiences
    configured: frozenset[AudienceId] = dataclasses.field(init=False)
    subset: Audiences = dataclasses.field(init=False)  # the audiences evaluated afresh
    # per audience no longer configured: the profiles Marketo had in its list (left there)
    dropped: dict[AudienceId, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.configured = frozenset(item.id for item in self.audiences.items)
        evaluated = self.decision.evaluated
        items = [item for item in self.audiences.items if item.id in evaluated]
        self.subset = Audiences(items, self.audiences.consent_path)

    def apply(self, state: ProfileState) -> bool:
        """Bring a state's memberships to the configured audiences; return whether it changed.

        Audiences no longer configured leave both desired and acknowledged (no call: their
        lists stay as they are); a changed list has acknowledged nothing yet; an added or
        changed audience is evaluated; an unchanged one keeps its answer, so costs no call."""
        desired, acked = state.desired, state.acked
        gone = (desired | acked) - self.configured
        for audience in gone:
            if audience in acked:
                self.dropped[audience] = self.dropped.get(audience, 0) + 1
            else:
                self.dropped.setdefault(audience, 0)
        kept = desired - gone - self.decision.evaluated
        state.desired = kept | self.subset.desired(state) if self.subset.items else kept
        state.acked = acked - gone - self.decision.relisted
        return state.desired != desired or state.acked != acked
