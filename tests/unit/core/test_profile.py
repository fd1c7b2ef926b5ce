"""Profile state: newest ts wins, patches merge, deletes leave a marker, states round-trip."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.events import EventOp, ProfileUpdate
from worker.core.ids import AudienceId, ProfileId
from worker.core.membership import AudienceRule, Audiences, transitions
from worker.core.profile import ALL_ATTRIBUTES, ProfileState, apply, merge_patch, project
from worker.core.rules import compile_rule

PATHS = frozenset({"country", "ltv", "address.city"})
FR = AudienceId("fr")


def event(op: str, ts: int, **kw: object) -> ProfileUpdate:
    return ProfileUpdate(profile_id=ProfileId("p"), ts_ms=ts, op=EventOp(op), **kw)  # type: ignore[arg-type]


def test_an_older_event_is_stale() -> None:
    """An event older than the state changes nothing."""
    state = apply(None, event("upsert", 100, attributes={"country": "FR"}), 0, PATHS)
    assert state is not None
    assert apply(state, event("upsert", 50, attributes={"country": "DE"}), 1, PATHS) is None


def test_equal_ts_later_offset_wins() -> None:
    """Ties on ts go to the later offset."""
    state = apply(None, event("upsert", 100, attributes={"country": "FR"}), 0, PATHS)
    newer = apply(state, event("upsert", 100, attributes={"country": "DE"}), 1, PATHS)
    assert newer is not None
    assert newer.attributes == {"country": "DE"}


def test_an_invalid_email_is_no_match_key() -> None:
    """An event whose email is not an address leaves the state without one, so the profile is
    never sent to Marketo."""
    state = apply(None, event("upsert", 1, identities={"email": "has space@example.com"}), 0, PATHS)
    assert state is not None
    assert state.email is None


def test_an_invalid_email_replaces_a_valid_one() -> None:
    """A later event that changes the email to an invalid one takes the match key away."""
    state = apply(None, event("upsert", 1, identities={"email": "ann@example.com"}), 0, PATHS)
    newer = apply(state, event("patch", 2, identities={"email": "not-an-email"}), 1, PATHS)
    assert (state and state.email, newer and newer.email) == ("ann@example.com", None)


def test_a_replayed_event_is_stale() -> None:
    """Re-reading the same offset after a restore changes nothing."""
    state = apply(None, event("upsert", 100), 5, PATHS)
    assert apply(state, event("upsert", 100), 5, PATHS) is None


def test_patch_merges_and_null_deletes() -> None:
    """A patch merges into the attributes; a null value deletes the attribute."""
    state = apply(None, event("upsert", 1, attributes={"country": "FR", "ltv": 5}), 0, PATHS)
    patched = apply(
        state, event("patch", 2, attributes={"ltv": None, "address": {"city": "Lyon"}}), 1, PATHS
    )
    assert patched is not None
    assert patched.attributes == {"country": "FR", "address": {"city": "Lyon"}}


def test_upsert_replaces_the_attributes() -> None:
    """An upsert drops attributes the event does not carry."""
    state = apply(None, event("upsert", 1, attributes={"country": "FR", "ltv": 5}), 0, PATHS)
    replaced = apply(state, event("upsert", 2, attributes={"ltv": 7}), 1, PATHS)
    assert replaced is not None
    assert replaced.attributes == {"ltv": 7}


def test_only_retained_paths_are_kept() -> None:
    """With a list of retained paths, other attributes are not stored."""
    kept = project({"country": "FR", "plan": "pro", "address": {"city": "Lyon", "zip": "1"}}, PATHS)
    assert kept == {"country": "FR", "address": {"city": "Lyon"}}


def test_delete_keeps_a_marker_that_refuses_older_events() -> None:
    """After a delete, an older event cannot bring the profile back."""
    state = apply(None, event("upsert", 1, identities={"email": "a@x.io"}), 0, PATHS)
    deleted = apply(state, event("delete", 10), 1, PATHS)
    assert deleted is not None
    assert deleted.deleted
    assert deleted.email is None
    assert apply(deleted, event("upsert", 5, identities={"email": "a@x.io"}), 2, PATHS) is None


def test_merge_patch_follows_rfc_7386() -> None:
    """Nested objects merge; null removes."""
    assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"c": None, "d": 3}}) == {
        "a": {"b": 1, "d": 3}
    }


def test_consent_n_empties_every_audience() -> None:
    """consent.marketing == "n" exports the profile to no list."""
    audiences = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
    state = ProfileState(ts_ms=1, offset=0, email="a@x.io", attributes={"country": "FR"})
    assert audiences.desired(state) == {FR}
    state.consent = {"marketing": "n"}
    assert audiences.desired(state) == frozenset()


def test_consent_n_at_a_nested_attribute_path_empties_every_audience() -> None:
    """A consent path outside `consent.` is read through the nesting that projection keeps."""
    audiences = Audiences(
        [AudienceRule(FR, compile_rule('country == "FR"'))], consent_path="prefs.marketing"
    )
    upsert = event(
        "upsert",
        1,
        identities={"email": "a@x.io"},
        attributes={"country": "FR", "prefs": {"marketing": "n"}},
    )
    state = apply(None, upsert, 0, audiences.paths)
    assert state is not None
    assert audiences.desired(state) == frozenset()


def test_a_profile_without_email_is_in_no_audience() -> None:
    """Without the match key nothing can be sent, so nothing is desired."""
    audiences = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
    state = ProfileState(ts_ms=1, offset=0, attributes={"country": "FR"})
    assert audiences.desired(state) == frozenset()


def test_upload_audiences_read_the_events_audiences_map() -> None:
    """An upload-origin audience follows the realized/existing/exited status."""
    web = AudienceId("webinar")
    audiences = Audiences([AudienceRule(web, None)])
    state = apply(
        None,
        event("upsert", 1, identities={"email": "a@x.io"}, audiences={"webinar": "realized"}),
        0,
        PATHS,
    )
    assert state is not None
    assert audiences.desired(state) == {web}
    exited = apply(state, event("patch", 2, audiences={"webinar": "exited"}), 1, PATHS)
    assert exited is not None
    assert audiences.desired(exited) == frozenset()


def test_transitions_name_enters_and_exits() -> None:
    """Only flipped audiences are reported, True for enter and False for exit."""
    a, b, c = AudienceId("a"), AudienceId("b"), AudienceId("c")
    assert transitions(frozenset({a, b}), frozenset({b, c})) == {a: False, c: True}


def test_null_and_paths_through_non_objects_are_not_kept() -> None:
    """A null, or `address.city` when `address` is not an object, is dropped: both read absent."""
    kept = project({"country": None, "ltv": 3, "address": "12 rue Neuve"}, PATHS)
    assert kept == {"ltv": 3}


def test_sibling_paths_under_one_object_are_all_kept() -> None:
    """`a.geo.lat` and `a.geo.lon` both survive projection: one object holds both."""
    kept = project({"a": {"geo": {"lat": 1, "lon": 2, "alt": 3}}}, {"a.geo.lat", "a.geo.lon"})
    assert kept == {"a": {"geo": {"lat": 1, "lon": 2}}}


def test_a_change_from_1_to_true_is_seen_by_incremental_evaluation() -> None:
    """Rules tell true from 1, so a change between them is a change: the rule is evaluated."""
    audiences = Audiences([AudienceRule(FR, compile_rule("n == 1"))])
    old = ProfileState(ts_ms=1, offset=0, email="a@x.io", attributes={"n": 1})
    old.desired = audiences.desired(old)
    new = ProfileState(ts_ms=2, offset=1, email="a@x.io", attributes={"n": True})
    assert (old.desired, audiences.desired(new, old)) == (frozenset({FR}), frozenset())


def test_the_ecid_is_kept_only_when_mapped() -> None:
    """An unmapped ecid costs no memory; a mapped one is kept."""
    upsert = event("upsert", 1, identities={"ecid": "e1"})
    unmapped = apply(None, upsert, 0, PATHS)
    mapped = apply(None, upsert, 0, PATHS | {"identities.ecid"})
    assert unmapped is not None
    assert mapped is not None
    assert (unmapped.ecid, mapped.ecid) == (None, "e1")


def test_with_every_attribute_retained_unread_ones_are_kept() -> None:
    """`state.attributes: all` keeps attributes no rule reads, nested ones whole, and the ecid."""
    attributes = {"plan": "pro", "address": {"city": "Lyon", "zip": "1"}, "tags": ["a"]}
    upsert = event("upsert", 1, attributes=attributes, identities={"ecid": "e1"})
    state = apply(None, upsert, 0, ALL_ATTRIBUTES)
    assert state is not None
    assert (state.attributes, state.ecid) == (attributes, "e1")


def test_with_every_attribute_retained_a_patch_adds_to_what_is_kept() -> None:
    """A patch merges into every kept attribute, and its nulls delete."""
    first = apply(None, event("upsert", 1, attributes={"plan": "pro", "n": 1}), 0, ALL_ATTRIBUTES)
    patch = event("patch", 2, attributes={"n": None, "city": "Lyon"})
    patched = apply(first, patch, 1, ALL_ATTRIBUTES)
    assert patched is not None
    assert patched.attributes == {"plan": "pro", "city": "Lyon"}


def test_with_every_attribute_retained_an_upserted_null_is_not_kept() -> None:
    """A null reads as absent: an upsert's null attribute is not stored."""
    upsert = event("upsert", 1, attributes={"plan": "pro", "churned_at": None})
    state = apply(None, upsert, 0, ALL_ATTRIBUTES)
    assert state is not None
    assert state.attributes == {"plan": "pro"}


AUDIENCE_SET = Audiences(
    [
        AudienceRule(AudienceId("fr"), compile_rule('country == "FR" and ltv >= 1000')),
        AudienceRule(AudienceId("vip"), compile_rule('"vip" in tags')),
        AudienceRule(AudienceId("recent"), compile_rule("days_since(seen) < 30")),
        AudienceRule(AudienceId("one"), compile_rule("x == 1 or 1 in tags")),
        AudienceRule(AudienceId("web"), None),
    ]
)
TEXTS: list[object] = ["FR", "DE", "2026-11-01T00:00:00Z"]
NUMBERS_AND_BOOLS: list[object] = [500, 1000, 5000, 1, 1.0, True, 0, False]  # true is not 1
CONTAINERS: list[object] = [["vip"], [], [1], [True], {"a": 1}, {"a": True}]
values = st.sampled_from([*TEXTS, *NUMBERS_AND_BOOLS, *CONTAINERS, None])
attribute_maps = st.dictionaries(st.sampled_from(["country", "ltv", "tags", "seen", "x"]), values)


@settings(max_examples=400, deadline=None)
@given(
    before=attribute_maps,
    patch=st.dictionaries(
        st.sampled_from(["country", "ltv", "tags", "seen", "x"]), values, max_size=2
    ),
    ts=st.integers(1_790_000_000_000, 1_800_000_000_000),
    later_ms=st.integers(0, 100 * 86_400_000),
    web=st.booleans(),
)
def test_incremental_evaluation_equals_full_evaluation(
    before: dict[str, object], patch: dict[str, object], ts: int, later_ms: int, web: bool
) -> None:
    """Reusing answers for rules whose attributes did not change gives the full answer."""
    after = {**before, **patch}  # an event changes a few attributes
    old = ProfileState(ts_ms=ts, offset=0, email="a@x.io", attributes=before)  # type: ignore[arg-type]
    old.desired = AUDIENCE_SET.desired(old)
    new = ProfileState(
        ts_ms=ts + later_ms,
        offset=1,
        email="a@x.io",
        attributes=after,  # type: ignore[arg-type]
        uploaded={"web": web},
    )
    assert AUDIENCE_SET.desired(new, old) == AUDIENCE_SET.desired(new)


def test_fingerprint_changes_with_the_rules() -> None:
    """Another rule text gives another fingerprint (states are then re-evaluated on restore)."""
    other = Audiences([AudienceRule(AudienceId("fr"), compile_rule('country == "DE"'))])
    assert AUDIENCE_SET.fingerprint != other.fingerprint
    assert AUDIENCE_SET.fingerprint == Audiences(list(AUDIENCE_SET.items)).fingerprint


def test_a_days_since_rule_is_re_evaluated_when_only_time_passed() -> None:
    """Nothing changed but the event's ts: a days_since rule still gives the new answer."""
    seen = {"seen": "2026-11-01T00:00:00Z"}
    day_ms = 86_400_000
    nov_1 = 1_793_491_200_000
    old = ProfileState(ts_ms=nov_1 + 10 * day_ms, offset=0, email="a@x.io", attributes=seen)  # type: ignore[arg-type]
    old.desired = AUDIENCE_SET.desired(old)
    assert AudienceId("recent") in old.desired
    new = ProfileState(ts_ms=nov_1 + 40 * day_ms, offset=1, email="a@x.io", attributes=seen)  # type: ignore[arg-type]
    assert AudienceId("recent") not in AUDIENCE_SET.desired(new, old)
