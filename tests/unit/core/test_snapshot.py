"""State snapshots: compact MessagePack that round-trips, survives a layout change, reads the old
JSON format, and a partition image keeps each profile's last record."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.ids import AudienceId, LeadId
from worker.core.profile import ProfileState, project
from worker.core.snapshot import CLEAN_HANDOVER, StateCodec, read_image

PATHS = ("address.city", "country", "ltv", "tags")
CODEC = StateCodec(PATHS)
FR, DE = AudienceId("fr"), AudienceId("de")

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
attribute_maps = st.dictionaries(
    st.sampled_from(["address", "country", "ltv", "tags", "other"]),
    json_values | st.fixed_dictionaries({"city": json_values}),
)


def state(**kw: Any) -> ProfileState:
    base: dict[str, Any] = {
        "ts_ms": 5,
        "offset": 9,
        "email": "a@x.io",
        "attributes": {"country": "FR", "address": {"city": "Lyon"}, "ltv": 12.5},
        "consent": {"marketing": "y"},
        "uploaded": {"w": True},
        "desired": frozenset({FR}),
        "acked": frozenset(),
        "lead_id": LeadId(3),
    }
    return ProfileState(**{**base, **kw})


def test_a_state_round_trips() -> None:
    """A state written under the current layout reads back equal."""
    original = state(ecid="e1")
    assert CODEC.decode(CODEC.encode(original)) == original


@settings(max_examples=300, deadline=None)
@given(attributes=attribute_maps)
def test_any_projected_attributes_round_trip(attributes: dict[str, Any]) -> None:
    """Whatever an event's attributes, their projection on the paths reads back equal."""
    original = state(attributes=project(attributes, PATHS))
    assert CODEC.decode(CODEC.encode(original)) == original


def test_attribute_names_are_not_stored_per_profile() -> None:
    """The encoded state is under half the size of the same state as JSON (the old format)."""
    big = state(attributes={"country": "FR", "address": {"city": "Lyon"}, "tags": ["vip"]})
    packed = CODEC.encode(big)
    as_json = CODEC.encode(state(attributes={**big.attributes, "ltv": 2**70}))  # JSON fallback
    assert (packed[:1], as_json[:1]) == (b"\x9d", b"{")  # a 13-item array; a JSON object
    assert len(packed) < len(as_json) / 2


def test_an_integer_beyond_64_bits_falls_back_to_json_and_round_trips() -> None:
    """MessagePack cannot hold 2**70; the state is written as JSON and still reads back."""
    original = state(attributes={"ltv": 2**70})
    assert CODEC.decode(CODEC.encode(original)) == original


def test_a_state_under_an_older_layout_decodes_once_its_layout_is_learnt() -> None:
    """After a rules change, states written under the old paths still read back."""
    old = StateCodec(("country", "score"))
    data = old.encode(state(attributes={"country": "DE", "score": 4}))
    with pytest.raises(msgspec.DecodeError):
        CODEC.decode(data)
    assert CODEC.learn(*old.layout_record()) == old.layout_id
    assert CODEC.decode(data).attributes == {"country": "DE", "score": 4}


def test_a_record_of_the_previous_json_format_decodes() -> None:
    """A changelog written by the JSON-snapshot version of the worker is still read."""
    data = b'{"t":7,"o":1,"e":"a@x.io","a":{"country":"FR"},"d":["fr"],"k":["fr"],"lead":4}'
    decoded = CODEC.decode(data)
    fields = (decoded.ts_ms, decoded.attributes, decoded.acked)
    assert fields == (7, {"country": "FR"}, frozenset({FR}))


def test_an_outstanding_person_deletion_round_trips_with_its_lead_id() -> None:
    """A deleted state whose Marketo person is still to be deleted reads back so, lead id kept."""
    erasing = ProfileState(ts_ms=5, offset=9, lead_id=LeadId(3), deleted=True, erasing=True)
    data = CODEC.encode(erasing)
    assert (CODEC.decode(data), CODEC.may_be_erasing(data)) == (erasing, True)


def test_a_record_written_before_the_deletion_marker_decodes_without_one() -> None:
    """A 12-item record (written before person deletions) decodes with none outstanding."""
    data = CODEC.encode(state(deleted=True))
    old = msgspec.msgpack.encode(msgspec.msgpack.decode(data)[:12])
    assert (old[:1], CODEC.decode(old)) == (b"\x9c", state(deleted=True))


@pytest.mark.parametrize(
    ("desired", "acked", "expected"),
    [({FR}, {FR}, False), ({FR}, set(), True), (set(), {DE}, True), ({FR, DE}, {DE, FR}, False)],
)
def test_unacknowledged_compares_desired_and_acknowledged(
    desired: set[AudienceId], acked: set[AudienceId], expected: bool
) -> None:
    """The head alone tells whether a membership awaits Marketo's acknowledgement."""
    data = CODEC.encode(state(desired=frozenset(desired), acked=frozenset(acked)))
    assert CODEC.unacknowledged(data) is expected


def test_the_image_keeps_the_last_record_per_profile_and_drops_tombstones() -> None:
    """Until compaction a key has many records: the last wins, and a tombstone removes it."""
    first, second = CODEC.encode(state(ts_ms=1)), CODEC.encode(state(ts_ms=2))
    batches: list[list[tuple[bytes, bytes | None]]] = [
        [(b"p1", first), (b"p2", first)],
        [(b"p1", second), (b"p2", None)],
    ]
    image = read_image(batches, StateCodec(PATHS))
    assert image.states == {b"p1": second}


def test_the_image_has_the_marker_only_when_the_partition_ends_with_it() -> None:
    """A clean-handover marker followed by more state is not a clean handover."""
    data = CODEC.encode(state())
    ends_clean = read_image([[(b"p1", data), (CLEAN_HANDOVER, b"fp")]], CODEC)
    written_after = read_image([[(CLEAN_HANDOVER, b"fp")], [(b"p1", data)]], CODEC)
    assert (ends_clean.marker, written_after.marker) == (b"fp", None)


def test_the_image_learns_layouts_from_their_records_which_are_not_profiles() -> None:
    """A layout record teaches the codec the old paths and is not taken for a profile."""
    old = StateCodec(("plan",))
    data = old.encode(state(attributes={"plan": "pro"}))
    reader = StateCodec(PATHS)
    image = read_image([[old.layout_record(), (b"p1", data)]], reader)
    assert (set(image.states), image.layouts) == ({b"p1"}, {old.layout_id})
    assert reader.decode(image.states[b"p1"]).attributes == {"plan": "pro"}


def test_acknowledged_memberships_equal_to_the_desired_ones_are_stored_once() -> None:
    """The usual state (all acknowledged) does not repeat its audience ids, and reads back."""
    settled = state(desired=frozenset({FR, DE}), acked=frozenset({FR, DE}))
    pending = state(desired=frozenset({FR, DE}), acked=frozenset({DE}))
    assert len(CODEC.encode(settled)) < len(CODEC.encode(pending))
    assert CODEC.decode(CODEC.encode(settled)) == settled
