"""Audience activation: definitions' fingerprints, the decision table, and one profile's change."""

from __future__ import annotations

import pytest

from worker.core.activation import (
    Activation,
    Decision,
    Definitions,
    RecordTap,
    Verdict,
    decide,
    definitions,
    list_fingerprint,
    parse,
    record,
    rule_fingerprint,
)
from worker.core.ids import AudienceId, ListId
from worker.core.membership import AudienceRule, Audiences
from worker.core.profile import ProfileState
from worker.core.rules import compile_rule
from worker.core.snapshot import CONTROL_PREFIX

FR, PRO, GONE = AudienceId("fr"), AudienceId("pro"), AudienceId("gone")
LISTS = {FR: ListId(10), PRO: ListId(20)}


def audiences(**rules: str | None) -> Audiences:
    """Audiences by id: a rule text, or None for an upload audience."""
    return Audiences(
        [
            AudienceRule(AudienceId(i), None if r is None else compile_rule(r))
            for i, r in rules.items()
        ]
    )


def defs(
    started: float, lists: dict[AudienceId, ListId] = LISTS, **rules: str | None
) -> Definitions:
    return definitions(audiences(**rules), lists, started)


OLD = defs(100.0, fr='country == "FR"')


def test_a_rule_fingerprint_ignores_spacing_and_redundant_parentheses() -> None:
    """Two spellings of one rule have one fingerprint."""
    one = rule_fingerprint('country == "FR" and plan == "pro"', "consent.marketing")
    other = rule_fingerprint('((country=="FR")\n  and plan == "pro")', "consent.marketing")
    assert one == other


@pytest.mark.parametrize(
    ("rule", "consent"),
    [
        ('country == "DE"', "consent.marketing"),
        ('country != "FR"', "consent.marketing"),
        ('`country` == "FR" or plan == "pro"', "consent.marketing"),
        (None, "consent.marketing"),
        ('country == "FR"', "prefs.marketing"),
    ],
)
def test_a_rule_fingerprint_changes_with_the_value_operator_origin_or_consent(
    rule: str | None, consent: str
) -> None:
    """Another literal, operator, rule, origin or consent path is another fingerprint."""
    assert rule_fingerprint(rule, consent) != rule_fingerprint(
        'country == "FR"', "consent.marketing"
    )


def test_quoted_names_of_the_same_length_have_different_fingerprints() -> None:
    """Quoted names are spelled out in the fingerprint, not their stand-ins."""
    assert rule_fingerprint("`a-b` == 1", "c") != rule_fingerprint("`c-d` == 1", "c")


def test_a_list_fingerprint_follows_the_resolved_list_id() -> None:
    """The same list id is the same list, another one is another list."""
    assert list_fingerprint(ListId(1)) == list_fingerprint(ListId(1)) != list_fingerprint(ListId(2))


def test_definitions_round_trip_through_their_control_record() -> None:
    """The record's key is a control key and its value reads back as the same definitions."""
    key, value = record(OLD)
    assert (key[:1], parse(value)) == (CONTROL_PREFIX, OLD)


def test_an_unreadable_record_counts_as_none() -> None:
    """A record that does not decode is no record (everything gets evaluated: safe)."""
    assert (parse(b"{not json"), parse(None)) == (None, None)


def test_the_tap_keeps_the_last_definitions_record_and_passes_every_batch_on() -> None:
    """The tap yields the batches unchanged and remembers the latest record value."""
    key, first = record(OLD)
    _, last = record(defs(200.0, fr='country == "FR"'))
    batches: list[list[tuple[bytes, bytes | None]]] = [
        [(key, first), (b"p-1", b"x")],
        [(key, last)],
    ]
    tap = RecordTap()
    assert (list(tap(batches)), tap.value) == (batches, last)


def test_no_record_activates_every_configured_audience() -> None:
    """A partition written before records existed is evaluated whole."""
    decision = decide(None, OLD)
    assert (decision.verdict, decision.evaluated, decision.unrecorded) == (
        Verdict.ACTIVATE,
        frozenset({FR}),
        True,
    )


@pytest.mark.parametrize("started", [50.0, 100.0, 300.0])
def test_the_same_definitions_proceed_whoever_started_first(started: float) -> None:
    """Equal definitions never activate nor stand down, earlier or later."""
    assert decide(OLD, defs(started, fr='country == "FR"')) == Decision(Verdict.PROCEED)


@pytest.mark.parametrize("started", [100.0, 300.0])
def test_other_definitions_of_a_replica_started_no_earlier_activate(started: float) -> None:
    """A replica started at or after the record's writer activates its definitions."""
    assert decide(OLD, defs(started, fr='country == "DE"')).verdict is Verdict.ACTIVATE


def test_other_definitions_of_a_replica_started_earlier_stand_down() -> None:
    """An older replica leaves a partition that a newer one evaluated."""
    newer = defs(200.0, fr='country == "FR"', pro='plan == "pro"')
    assert decide(newer, OLD).verdict is Verdict.STAND_DOWN


def test_the_decision_names_the_added_changed_relisted_and_removed_audiences() -> None:
    """Each kind of difference is told apart: it decides what the activation does."""
    recorded = defs(100.0, fr='country == "FR"', pro='plan == "pro"', gone="x == 1")
    ours = defs(
        200.0,
        {FR: ListId(10), PRO: ListId(21), AudienceId("new"): ListId(30)},
        fr='country == "DE"',
        pro='plan == "pro"',
        new="y == 2",
    )
    decision = decide(recorded, ours)
    assert (decision.added, decision.changed, decision.relisted, decision.removed) == (
        frozenset({"new"}),
        frozenset({FR}),
        frozenset({PRO}),
        frozenset({"gone"}),
    )


def state(desired: set[AudienceId], acked: set[AudienceId], **attributes: str) -> ProfileState:
    return ProfileState(
        ts_ms=1,
        offset=0,
        email="a@x.io",
        attributes=dict(attributes),
        desired=frozenset(desired),
        acked=frozenset(acked),
    )


def activation(recorded: Definitions | None, **rules: str | None) -> Activation:
    configured = audiences(**rules)
    return Activation(decide(recorded, definitions(configured, LISTS, 500.0)), configured)


def test_an_added_audience_is_evaluated_and_the_others_keep_their_answer() -> None:
    """An added audience joins desired; an unchanged one is not re-evaluated."""
    s = state({FR}, {FR}, country="DE", plan="pro")  # FR's stored answer stands
    changed = activation(OLD, fr='country == "FR"', pro='plan == "pro"').apply(s)
    assert (changed, s.desired, s.acked) == (True, frozenset({FR, PRO}), frozenset({FR}))


def test_a_changed_rule_keeps_what_marketo_acknowledged() -> None:
    """A changed rule changes desired only: the differences are the adds and removes."""
    s = state({FR}, {FR}, country="FR", plan="free")
    activation(OLD, fr='country == "FR" and plan == "pro"').apply(s)
    assert (s.desired, s.acked) == (frozenset(), frozenset({FR}))


def test_a_changed_list_has_acknowledged_nothing() -> None:
    """A member of an audience whose list changed is to be added to the new list."""
    recorded = defs(100.0, {FR: ListId(9)}, fr='country == "FR"')
    s = state({FR}, {FR}, country="FR")
    activation(recorded, fr='country == "FR"').apply(s)
    assert (s.desired, s.acked) == (frozenset({FR}), frozenset())


def test_a_removed_audience_leaves_desired_and_acknowledged_and_is_counted() -> None:
    """Memberships of an audience no longer configured leave the state, counted as members."""
    recorded = defs(100.0, fr='country == "FR"', gone="x == 1")
    run = activation(recorded, fr='country == "FR"')
    member, wanted_only = state({FR, GONE}, {FR, GONE}), state({GONE}, set())
    changed = [run.apply(member), run.apply(wanted_only)]
    assert (changed, member.desired, member.acked, run.dropped) == (
        [True, True],
        frozenset({FR}),
        frozenset({FR}),
        {GONE: 1},
    )


def test_an_unchanged_state_is_not_changed() -> None:
    """A state already right under the new definitions is reported unchanged."""
    s = state({FR}, {FR}, country="FR", plan="free")
    assert activation(OLD, fr='country == "FR"', pro='plan == "pro"').apply(s) is False
