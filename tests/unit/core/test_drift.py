"""The drift between a list and its audience, and the cost of repairing it (worker.core.drift)."""

from __future__ import annotations

from worker.core.drift import (
    Drift,
    Wanted,
    desired_members,
    diff,
    known_lead_ids,
    members_of,
    repair_calls,
    with_known_ids,
)
from worker.core.ids import AudienceId, LeadId
from worker.core.profile import ProfileState

VIP = AudienceId("vip")
PRO = AudienceId("pro")


def state(
    email: str | None, *desired: AudienceId, lead: int | None = None, ts: int = 1
) -> ProfileState:
    return ProfileState(
        ts_ms=ts,
        offset=0,
        email=email,
        desired=frozenset(desired),
        lead_id=None if lead is None else LeadId(lead),
    )


def test_exact_list_has_no_drift() -> None:
    """A list holding exactly the wanted persons needs nothing."""
    drift = diff({"a@x.io": LeadId(1), "b@x.io": None}, {LeadId(1): "a@x.io", LeadId(2): "b@x.io"})
    assert drift.is_exact
    assert (drift.in_marketo, drift.desired) == (2, 2)


def test_member_nobody_wants_is_removed() -> None:
    """A member whose email and lead id are both unwanted is to be removed."""
    drift = diff({"a@x.io": LeadId(1)}, {LeadId(1): "a@x.io", LeadId(9): "stranger@x.io"})
    assert drift.to_remove == (LeadId(9),)
    assert drift.to_add == ()


def test_wanted_person_missing_from_the_list_is_added_with_its_known_lead_id() -> None:
    """A wanted person that no member matches is to be added, keeping the lead id state knows."""
    drift = diff({"a@x.io": LeadId(1), "b@x.io": LeadId(2)}, {LeadId(1): "a@x.io"})
    assert drift.to_add == (Wanted("b@x.io", LeadId(2)),)


def test_member_matched_by_email_is_kept_even_when_state_has_another_lead_id() -> None:
    """A member with the wanted email counts as present whatever its lead id."""
    drift = diff({"a@x.io": LeadId(1)}, {LeadId(7): "A@X.io "})
    assert drift.is_exact


def test_member_matched_by_lead_id_is_kept_even_when_its_email_changed_in_marketo() -> None:
    """A member with a wanted lead id counts as present whatever its email now is."""
    drift = diff({"a@x.io": LeadId(1)}, {LeadId(1): "renamed@x.io"})
    assert drift.is_exact


def test_member_without_email_is_removed_unless_its_lead_id_is_wanted() -> None:
    """A member Marketo has no email for is matched by lead id only."""
    drift = diff({"a@x.io": LeadId(1)}, {LeadId(1): None, LeadId(2): None})
    assert drift.to_remove == (LeadId(2),)


def test_empty_audience_removes_every_member() -> None:
    """When nobody is wanted, every member goes."""
    drift = diff({}, {LeadId(3): "c@x.io", LeadId(1): "a@x.io"})
    assert drift.to_remove == (LeadId(1), LeadId(3))


def test_desired_members_keeps_only_profiles_wanting_the_audience() -> None:
    """Profiles whose desired set lacks the audience are not wanted in its list."""
    desired = desired_members(
        [state("a@x.io", VIP, lead=1), state("b@x.io", PRO)], frozenset({VIP})
    )
    assert desired.by_audience == {VIP: {"a@x.io": LeadId(1)}}


def test_desired_members_ignores_deleted_markers_and_profiles_without_email() -> None:
    """A deletion marker or an unmatched profile is in no list, whatever its desired set says."""
    deleted = state("a@x.io", VIP)
    deleted.deleted = True
    desired = desired_members([deleted, state(None, VIP)], frozenset({VIP}))
    assert desired.by_audience == {VIP: {}}
    assert desired.states == {}


def test_desired_members_merges_profiles_sharing_an_email_and_keeps_a_known_lead_id() -> None:
    """Two profiles with one email are one person; a lead id known for either is kept."""
    older = state("a@x.io", VIP, lead=5, ts=1)
    newer = state("a@x.io", VIP, ts=2)
    desired = desired_members([older, newer], frozenset({VIP}))
    assert desired.by_audience[VIP] == {"a@x.io": LeadId(5)}
    assert desired.states["a@x.io"] is newer


def test_members_of_reads_ids_and_emails_and_skips_rows_without_an_id() -> None:
    """Rows from Marketo become lead id -> email; a row without an integer id is skipped."""
    members = members_of([{"id": 1, "email": "a@x.io"}, {"id": 2, "email": None}, {"email": "z"}])
    assert members == {LeadId(1): "a@x.io", LeadId(2): None}


def test_known_lead_ids_come_from_every_list_and_prefer_the_lowest_id() -> None:
    """An email seen in any list gives its lead id; of duplicates, the lowest id."""
    known = known_lead_ids([{LeadId(8): "a@x.io"}, {LeadId(3): "A@x.io", LeadId(4): "b@x.io"}])
    assert known == {"a@x.io": LeadId(3), "b@x.io": LeadId(4)}


def test_with_known_ids_fills_only_unknown_lead_ids() -> None:
    """A person to add without a lead id gets one from `known`; a known one is kept."""
    drift = Drift(0, 2, (Wanted("a@x.io", None), Wanted("b@x.io", LeadId(2))), ())
    filled = with_known_ids(drift, {"a@x.io": LeadId(1), "b@x.io": LeadId(9)})
    assert filled.to_add == (Wanted("a@x.io", LeadId(1)), Wanted("b@x.io", LeadId(2)))


def test_repair_calls_counts_300_ids_per_call() -> None:
    """301 adds and 300 removes of known leads take 2 add calls and 1 remove call, no sync."""
    to_add = tuple(Wanted(f"p{i}@x.io", LeadId(i)) for i in range(301))
    to_remove = tuple(LeadId(1000 + i) for i in range(300))
    calls = repair_calls([Drift(300, 301, to_add, to_remove)])
    assert (calls.syncs, calls.adds, calls.removes, calls.total) == (0, 2, 1, 3)


def test_repair_calls_share_one_lead_sync_between_lists() -> None:
    """A new person missing from two lists is synced once, then added to each list."""
    new = (Wanted("n@x.io", None),)
    calls = repair_calls([Drift(0, 1, new, ()), Drift(0, 1, new, ())])
    assert (calls.syncs, calls.adds, calls.removes) == (1, 2, 0)


def test_repair_calls_of_exact_lists_is_zero() -> None:
    """No drift costs no call."""
    assert repair_calls([Drift(5, 5, (), ())]).total == 0
