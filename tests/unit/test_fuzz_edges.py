"""Fuzzing of the two decoders the other fuzz tests do not reach: the state snapshot
read back from the changelog, and librdkafka's statistics. No input crashes them."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from worker.core.profile import ProfileState
from worker.core.snapshot import StateCodec, layout_of
from worker.kafka.stats import consumer_lag

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
snapshot_like = st.fixed_dictionaries(
    {"t": json_values, "o": json_values},
    optional={key: json_values for key in ("e", "c", "a", "n", "u", "d", "k", "lead", "x", "zz")},
)
partition_keys = st.sampled_from(["0", "1", "-1", "07", " 1", "x", "1.5"]) | st.text(max_size=3)
partition_entries = json_values | st.fixed_dictionaries(
    {}, optional={"consumer_lag": json_values, "fetch_state": json_values}
)
partition_maps = json_values | st.dictionaries(partition_keys, partition_entries, max_size=4)
stats_like = st.fixed_dictionaries(
    {
        "topics": json_values
        | st.fixed_dictionaries(
            {"in": json_values | partition_maps.map(lambda partitions: {"partitions": partitions})}
        )
    }
)


CODEC = StateCodec()
KNOWN_LAYOUT = layout_of(CODEC.encode(ProfileState(ts_ms=0, offset=0, attributes={"a": 1})))


def _decoded(data: bytes) -> ProfileState | None:
    """The decoded state, or None when decode raised its documented error."""
    try:
        return CODEC.decode(data)
    except msgspec.DecodeError:
        return None


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=300))
def test_snapshot_decode_raises_only_decode_error_on_arbitrary_bytes(data: bytes) -> None:
    """Any bytes decode to a ProfileState or raise msgspec.DecodeError, nothing else."""
    state = _decoded(data)
    assert state is None or isinstance(state, ProfileState)


@settings(max_examples=500, deadline=None)
@given(value=snapshot_like | json_values)
def test_snapshot_decode_raises_only_decode_error_on_snapshot_shaped_json(value: Any) -> None:
    """Snapshot fields holding values of any JSON type never escape as another exception."""
    state = _decoded(json.dumps(value).encode())
    assert state is None or (isinstance(state.ts_ms, int) and isinstance(state.desired, frozenset))


@settings(max_examples=500, deadline=None)
@given(head=st.lists(json_values, max_size=13), layout=st.sampled_from([KNOWN_LAYOUT, 7]))
def test_snapshot_decode_raises_only_decode_error_on_state_shaped_msgpack(
    head: list[Any], layout: int
) -> None:
    """MessagePack arrays holding values of any type, under a known layout or not, never escape
    as another exception, and neither does the head-only check."""
    try:
        data = msgspec.msgpack.encode([layout, *head])
    except OverflowError:  # an integer MessagePack cannot hold: not a possible record
        assume(False)
    state = _decoded(data)
    assert state is None or isinstance(state.attributes, dict)
    with contextlib.suppress(msgspec.DecodeError):
        CODEC.unacknowledged(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300) | st.text(max_size=300))
def test_consumer_lag_never_raises_on_arbitrary_input(data: bytes | str) -> None:
    """Arbitrary bytes or text as statistics give a (usually empty) lag map, never an exception."""
    assert isinstance(consumer_lag(data, "in"), dict)


@settings(max_examples=1000, deadline=None)
@given(value=stats_like | json_values)
def test_consumer_lag_never_raises_and_reports_only_counts_on_stats_shaped_json(
    value: Any,
) -> None:
    """Statistics with odd shapes never raise, and every lag reported is an int >= 0."""
    lags = consumer_lag(json.dumps(value), "in")
    assert all(type(p) is int and type(lag) is int and lag >= 0 for p, lag in lags.items())
