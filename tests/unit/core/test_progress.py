"""Each audience's members and pending changes, and the calls left (worker.core.progress)."""

from __future__ import annotations

from worker.core.drift import RepairCalls
from worker.core.ids import AudienceId, LeadId
from worker.core.profile import ProfileState
from worker.core.progress import AudienceProgress, progress, seconds_for

FR = AudienceId("fr")
PRO = AudienceId("pro")
OLD = AudienceId("old")


def state(
    email: str | None,
    desired: set[AudienceId],
    acked: set[AudienceId],
    lead: int | None = None,
    deleted: bool = False,
) -> ProfileState:
    return ProfileState(
        ts_ms=1,
        offset=0,
        email=email,
        desired=frozenset(desired),
        acked=frozenset(acked),
        lead_id=None if lead is None else LeadId(lead),
        deleted=deleted,
    )


def one(states: list[ProfileState], audience: AudienceId = FR) -> AudienceProgress:
    found = {a.audience: a for a in progress(states, [FR, PRO]).audiences}
    return found[audience]


def test_acknowledged_members_are_wanted_and_in_marketo_with_nothing_pending() -> None:
    """Profiles wanted and acknowledged count in both columns and cost no call."""
    counted = one([state(f"{i}@x.io", {FR}, {FR}, lead=i) for i in range(3)])
    assert (counted.wanted, counted.in_marketo, counted.pending_adds) == (3, 3, 0)
    assert (counted.pending_removes, counted.calls) == (0, RepairCalls(0, 0, 0))


def test_wanted_but_not_acknowledged_is_a_pending_add() -> None:
    """A membership the state wants and Marketo did not acknowledge is a pending add."""
    counted = one([state("a@x.io", {FR}, set(), lead=1), state("b@x.io", {FR}, {FR}, lead=2)])
    assert (counted.wanted, counted.in_marketo, counted.pending_adds) == (2, 1, 1)


def test_acknowledged_but_not_wanted_is_a_pending_remove() -> None:
    """A membership Marketo acknowledged and the state no longer wants is a pending remove."""
    counted = one([state("a@x.io", set(), {FR}, lead=1)])
    assert (counted.wanted, counted.in_marketo, counted.pending_removes) == (0, 1, 1)
    assert counted.calls == RepairCalls(0, 0, 1)


def test_a_deleted_profile_is_not_wanted() -> None:
    """A deleted profile's memberships are not wanted: an acknowledged one is to remove."""
    counted = one([state("a@x.io", {FR}, {FR}, lead=1, deleted=True)])
    assert (counted.wanted, counted.pending_adds, counted.pending_removes) == (0, 0, 1)


def test_an_add_with_a_lead_id_costs_only_the_list_add() -> None:
    """A person Marketo knows by lead id needs no lead sync."""
    assert one([state("a@x.io", {FR}, set(), lead=1)]).calls == RepairCalls(0, 1, 0)


def test_an_add_without_a_lead_id_costs_a_lead_sync_and_a_list_add() -> None:
    """A person without a lead id is synced first."""
    assert one([state("a@x.io", {FR}, set())]).calls == RepairCalls(1, 1, 0)


def test_calls_go_by_batches_of_three_hundred() -> None:
    """301 new persons take two lead syncs and two list adds."""
    states = [state(f"{i}@x.io", {FR}, set()) for i in range(301)]
    assert one(states).calls == RepairCalls(2, 2, 0)


def test_a_person_pending_in_two_lists_shares_one_lead_sync_in_the_total() -> None:
    """The total counts one lead sync for a person pending in two lists, and an add per list."""
    result = progress([state("a@x.io", {FR, PRO}, set())], [FR, PRO])
    assert result.calls == RepairCalls(1, 2, 0)


def test_profiles_sharing_an_email_are_one_person_to_add() -> None:
    """Two profiles with one email are two pending profiles but one person in the calls."""
    counted = one([state("a@x.io", {FR}, set()), state("a@x.io", {FR}, set(), lead=7)])
    assert (counted.pending_adds, counted.calls) == (2, RepairCalls(0, 1, 0))


def test_an_audience_no_longer_configured_is_listed_without_calls() -> None:
    """Memberships of an audience the configuration no longer names are listed, after the
    configured ones, with their counts and no calls."""
    result = progress([state("a@x.io", {OLD}, {OLD}, lead=1)], [FR])
    assert [(a.audience, a.configured) for a in result.audiences] == [(FR, True), (OLD, False)]
    assert (result.audiences[1].in_marketo, result.audiences[1].calls) == (1, None)


def test_a_pending_audience_no_longer_configured_costs_nothing_in_the_total() -> None:
    """The worker sends nothing for an audience it no longer syncs: the total leaves it out."""
    assert progress([state("a@x.io", {OLD}, set())], [FR]).calls == RepairCalls(0, 0, 0)


def test_a_configured_audience_without_members_is_listed_with_zeros() -> None:
    """An audience no state mentions yet is listed with zero counts."""
    result = progress([], [FR])
    counted = result.audiences[0]
    assert (result.profiles, counted.wanted, counted.in_marketo) == (0, 0, 0)


def test_profiles_are_counted() -> None:
    """Every state read counts as a profile, member of an audience or not."""
    assert progress([state("a@x.io", set(), set()), state(None, set(), set())], [FR]).profiles == 2


def test_time_left_is_the_calls_at_the_budget_rate() -> None:
    """125 calls at 50 calls per 20 s take 50 s."""
    assert seconds_for(125, 50, 20.0) == 50.0
