"""Sorting a restored partition: what is kept encoded, re-sent, rewritten, or dropped as corrupt."""

from __future__ import annotations

from worker.core.ids import AudienceId, LeadId
from worker.core.membership import AudienceRule, Audiences
from worker.core.profile import ProfileState
from worker.core.restore import triage
from worker.core.rules import compile_rule
from worker.core.snapshot import Image, StateCodec

FR = AudienceId("fr")
AUDIENCES = Audiences([AudienceRule(FR, compile_rule('country == "FR"'))])
CODEC = StateCodec()


def saved(desired: set[AudienceId], acked: set[AudienceId]) -> bytes:
    state = ProfileState(
        ts_ms=1,
        offset=0,
        email="a@x.io",
        attributes={"country": "FR"},
        desired=frozenset(desired),
        acked=frozenset(acked),
        lead_id=LeadId(1),
    )
    return CODEC.encode(state)


def test_after_a_clean_handover_settled_states_stay_encoded_and_unsettled_ones_are_resent() -> None:
    """Only the state with an unacknowledged membership is decoded, to be sent again."""
    image = Image(
        {b"done": saved({FR}, {FR}), b"open": saved({FR}, set())}, AUDIENCES.fingerprint, set()
    )
    restored = triage(image, CODEC, AUDIENCES)
    assert (set(restored.pending), restored.changed, len(image.states)) == ({"open"}, {}, 2)


def test_a_record_that_does_not_decode_is_dropped_and_counted() -> None:
    """A corrupt record leaves the image (the next event rebuilds the profile) and is counted."""
    image = Image({b"ok": saved({FR}, {FR}), b"bad": b"\x93\x01"}, None, set())
    restored = triage(image, CODEC, AUDIENCES)
    assert (set(image.states), restored.corrupt) == ({b"ok"}, 1)


def deleted(*, erasing: bool) -> bytes:
    """A deleted profile of lead 1, out of every list; `erasing`: its person still to delete."""
    return CODEC.encode(
        ProfileState(ts_ms=2, offset=1, lead_id=LeadId(1), deleted=True, erasing=erasing)
    )


def test_a_deleted_state_whose_person_deletion_is_outstanding_is_picked_for_it() -> None:
    """With delete_persons, a clean handover still decodes the state that awaits its person's
    deletion, to queue it again; a deleted state whose deletion is done stays encoded."""
    image = Image(
        {b"open": deleted(erasing=True), b"done": deleted(erasing=False)},
        AUDIENCES.fingerprint,
        set(),
    )
    restored = triage(image, CODEC, AUDIENCES, delete_persons=True)
    assert (set(restored.erasing), restored.pending) == ({"open"}, {})


def test_without_delete_persons_no_person_deletion_is_picked() -> None:
    """The setting turned off: an outstanding deletion of an earlier run is not sent."""
    image = Image({b"open": deleted(erasing=True)}, None, set())
    assert triage(image, CODEC, AUDIENCES).erasing == {}
