"""State snapshots: compact MessagePack that round-trips, survives a layout change, reads the old
JSON format, and a partition image keeps each profile's last record."""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.ids import AudienceId, LeadId
from worker.core.profile import ProfileState, project
from worker.core.snapshot import CLEAN_HANDOVER, MAX_LAYOUTS, StateCodec, layout_of, read_image

PATHS = ("address.city", "country", "ltv", "tags")
CODEC = StateCodec()
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
# any keys (dotted ones too), any values but null: a state never holds a null attribute
any_attributes = st.dictionaries(
    st.sampled_from(["a", "b", "c.d", "e", "f.g.h", ""]) | st.text(max_size=6),
    json_values.filter(lambda v: v is not None),
    max_size=8,
)


def fixed_layout(paths: tuple[str, ...], data: ProfileState) -> tuple[tuple[bytes, bytes], bytes]:
    """The layout record and the state record the earlier format wrote: values aligned to one
    fixed layout of dotted paths (top-level ones first), identified by their CRC."""
    top = sorted(p for p in paths if "." not in p)
    layout = (*top, *sorted(set(paths) - set(top)))
    layout_id = zlib.crc32("\n".join(layout).encode())
    values = []
    for path in layout:
        value: Any = data.attributes
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values.append(value)
    acked = None if data.acked == data.desired else sorted(data.acked)
    head = [layout_id, data.ts_ms, data.offset, data.deleted, data.lead_id, sorted(data.desired)]
    rest = [data.email, data.ecid, data.consent, data.uploaded, values, data.erasing]
    record = (b"\x00layout/" + str(layout_id).encode(), msgspec.json.encode(list(layout)))
    return record, msgspec.msgpack.encode([*head, acked, *rest])


def layout_record(codec: StateCodec, data: bytes) -> tuple[bytes, bytes]:
    """The control record of the layout `data` was written under."""
    layout = layout_of(data)
    assert layout is not None
    return codec.layout_record(layout)


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
    """Whatever an event's attributes, their projection on retained paths reads back equal."""
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


def test_a_state_of_the_fixed_layout_format_decodes_once_its_layout_is_learnt() -> None:
    """A state the earlier format wrote (values aligned to dotted paths) still reads back."""
    original = state(attributes={"country": "DE", "address": {"city": "Lyon"}, "ltv": 3})
    record, data = fixed_layout(PATHS, original)
    reader = StateCodec()
    with pytest.raises(msgspec.DecodeError):
        reader.decode(data)
    assert reader.learn(*record) == layout_of(data)
    assert reader.decode(data) == original


def test_a_state_round_trips_through_a_reader_that_learnt_its_layout() -> None:
    """Another codec (a later owner) decodes a state once it has the layout's control record."""
    data = CODEC.encode(state(attributes={"plan": "pro", "address": {"city": "Lyon", "zip": 1}}))
    reader = StateCodec()
    reader.learn(*layout_record(CODEC, data))
    assert reader.decode(data) == CODEC.decode(data)


@settings(max_examples=300, deadline=None)
@given(attributes=any_attributes)
def test_any_attributes_round_trip_through_a_fresh_reader(attributes: dict[str, Any]) -> None:
    """Whatever the keys (dotted ones too) and nesting, the state reads back equal elsewhere."""
    original = state(attributes=attributes)
    data = CODEC.encode(original)
    reader = StateCodec()
    if data[:1] != b"{":  # the JSON fallback needs no layout
        reader.learn(*layout_record(CODEC, data))
    assert reader.decode(data) == original


def test_profiles_of_one_shape_share_one_layout_whatever_their_key_order() -> None:
    """A layout names a set of keys: other values, or another order, write the same one."""
    first = CODEC.encode(state(attributes={"country": "FR", "plan": "pro"}))
    second = CODEC.encode(state(attributes={"plan": "team", "country": "DE"}))
    other = CODEC.encode(state(attributes={"country": "FR"}))
    assert layout_of(first) == layout_of(second) != layout_of(other)


def test_a_layout_of_plain_keys_is_readable_as_the_fixed_layout_format() -> None:
    """Keys without a dot are written as a plain layout record, which the earlier format reads
    as paths to the same values (a rollback still decodes); a dotted key gets a keys record."""
    plain = CODEC.encode(state(attributes={"country": "FR", "address": {"city": "Lyon"}}))
    dotted = CODEC.encode(state(attributes={"a.b": 1}))
    plain_key, plain_value = layout_record(CODEC, plain)
    dotted_key, _ = layout_record(CODEC, dotted)
    assert (plain_key[:8], dotted_key[:6]) == (b"\x00layout/", b"\x00keys/")
    assert msgspec.json.decode(plain_value) == ["address", "country"]


def test_keys_that_differ_per_profile_fall_back_to_a_map_past_the_layout_bound() -> None:
    """Past MAX_LAYOUTS layouts a state is written with its keys (one map), and reads back."""
    codec = StateCodec()
    for n in range(MAX_LAYOUTS):
        codec.encode(state(attributes={f"k{n}": n}))
    original = state(attributes={"one-more": 1})
    data = codec.encode(original)
    reader = StateCodec()
    reader.learn(*layout_record(codec, data))
    assert (layout_of(data), reader.decode(data)) == (0, original)


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
    image = read_image(batches, StateCodec())
    assert image.states == {b"p1": second}


def test_the_image_has_the_marker_only_when_the_partition_ends_with_it() -> None:
    """A clean-handover marker followed by more state is not a clean handover."""
    data = CODEC.encode(state())
    ends_clean = read_image([[(b"p1", data), (CLEAN_HANDOVER, b"fp")]], CODEC)
    written_after = read_image([[(CLEAN_HANDOVER, b"fp")], [(b"p1", data)]], CODEC)
    assert (ends_clean.marker, written_after.marker) == (b"fp", None)


def test_the_image_learns_layouts_from_their_records_which_are_not_profiles() -> None:
    """A layout record, read before the states, teaches the codec and is not a profile."""
    data = CODEC.encode(state(attributes={"plan": "pro"}))
    record, old = fixed_layout(("plan",), state(attributes={"plan": "team"}))
    reader = StateCodec()
    image = read_image([[layout_record(CODEC, data), record, (b"p1", data), (b"p2", old)]], reader)
    assert (set(image.states), image.layouts) == ({b"p1", b"p2"}, {layout_of(data), layout_of(old)})
    decoded = [reader.decode(image.states[key]).attributes for key in (b"p1", b"p2")]
    assert decoded == [{"plan": "pro"}, {"plan": "team"}]


def test_acknowledged_memberships_equal_to_the_desired_ones_are_stored_once() -> None:
    """The usual state (all acknowledged) does not repeat its audience ids, and reads back."""
    settled = state(desired=frozenset({FR, DE}), acked=frozenset({FR, DE}))
    pending = state(desired=frozenset({FR, DE}), acked=frozenset({DE}))
    assert len(CODEC.encode(settled)) < len(CODEC.encode(pending))
    assert CODEC.decode(CODEC.encode(settled)) == settled
