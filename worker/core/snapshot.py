"""Profile state as compact bytes, for the changelog and for memory at rest, and back. Pure.

A state is a MessagePack array. Its head (layout, ts, offset, deleted, lead id, desired,
acknowledged) comes first, so that a restore can tell what is unacknowledged, and a list call
find lead ids, without decoding the rest. The attributes follow as values aligned to their
sorted top-level keys (the "layout") rather than a map, so no attribute name is repeated per
profile; acknowledged memberships equal to the desired ones are not repeated either. Layouts are
made as states are encoded, one per distinct set of keys (most profiles share a few), each
identified by a 64-bit hash of its keys and written to a partition as a control record
(`layout_record`) before the first state that uses it there (worker.core.store); a layout record
is never deleted, so compaction keeps it. About 180 bytes per profile of the benchmark with
every attribute kept, against 330 as JSON for a third of them. Null attributes are absent ones to
rules and mapping, so a null is not stored. Records of the earlier formats still decode: the
fixed layout of dotted leaf paths, and the JSON format, which a state MessagePack cannot hold
(an integer beyond 64 bits) is still written in.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from worker.core.ids import AudienceId, JsonValue, LeadId
from worker.core.profile import ProfileState

# Keys of the worker's own records in the state topic; a profile id never starts with NUL
# (worker.core.events refuses it), and the clean-handover marker's key is the empty key.
CONTROL_PREFIX = b"\x00"
_LAYOUT_PREFIX = CONTROL_PREFIX + b"layout/"  # names read as dotted paths (or plain keys)
_KEYS_PREFIX = CONTROL_PREFIX + b"keys/"  # names read as keys, dots and all
# the layout of a state whose attributes are one map (keys and all): used once a codec knows
# MAX_LAYOUTS layouts, so keys that differ per profile cannot grow the layouts without bound
MAP_LAYOUT = 0
MAX_LAYOUTS = 10_000
MAX_SHAPES = 4 * MAX_LAYOUTS  # key orders remembered (another order of the same keys: one more)


class _Packed(msgspec.Struct, array_like=True):
    layout: int
    t: int  # ts_ms
    o: int  # input offset of the event that made this state
    x: bool  # deleted marker
    lead: LeadId | None
    d: list[AudienceId]  # desired
    k: list[AudienceId] | None  # acknowledged by Marketo; None: all desired (the usual case)
    e: str | None  # email (the match key; the changelog is internal, like the input)
    c: str | None  # ecid (kept only when mapped)
    n: dict[str, str]  # consent
    u: dict[str, bool]  # upload-origin memberships
    a: list[Any]  # attribute values aligned to the layout's names; None when absent
    # the Marketo person is still to be deleted (ProfileState.erasing); last, with a default,
    # so that records written before it decode (and older readers ignore it)
    r: bool = False


class _Head(msgspec.Struct, array_like=True):
    """The first fields of _Packed: MessagePack arrays decode with their tail ignored."""

    layout: int
    t: int
    o: int
    x: bool
    lead: LeadId | None
    d: list[AudienceId]
    k: list[AudienceId] | None


class _Json(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """The previous format (a JSON object), read and, for big integers, still written."""

    t: int
    o: int
    e: str | None = None
    c: str | None = None
    a: dict[str, Any] = {}
    n: dict[str, str] = {}
    u: dict[str, bool] = {}
    d: list[AudienceId] = []
    k: list[AudienceId] = []
    lead: LeadId | None = None
    x: bool = False
    r: bool = False


def _no_extensions(code: int, data: memoryview) -> object:
    raise msgspec.DecodeError(f"unexpected MessagePack extension {code}")


_packer = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(_Packed, ext_hook=_no_extensions)
_unpack_head = msgspec.msgpack.Decoder(_Head, ext_hook=_no_extensions)
_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder(_Json)


class StateCodec:
    """Encodes states under the layout of their attributes' keys; decodes any layout it was told
    of (or made itself)."""

    def __init__(self) -> None:
        self._layouts: dict[int, _Layout] = {}  # by id: every layout a state may be under
        # the keys of an attributes map, in its own order, to their layout: one dict lookup per
        # encode. A cache: cleared when full, while the layouts themselves stay
        self._shapes: dict[tuple[str, ...], _Layout] = {}

    def layout_record(self, layout_id: int) -> tuple[bytes, bytes]:
        """The control record (key, value) that lets a later reader decode this layout."""
        layout = self._layouts[layout_id]
        prefix = _KEYS_PREFIX if layout.dotted_keys else _LAYOUT_PREFIX
        return prefix + str(layout_id).encode(), _json_encoder.encode(layout.names)

    def learn(self, key: bytes, value: bytes) -> int | None:
        """Remember a layout read back from the state topic; return its id, or None when the
        record is not a readable layout (states under an unreadable one fail to decode)."""
        keys = key.startswith(_KEYS_PREFIX)
        prefix = _KEYS_PREFIX if keys else _LAYOUT_PREFIX
        if not key.startswith(prefix):
            return None
        try:
            layout_id = int(key[len(prefix) :])
            names = msgspec.json.decode(value, type=list[str])
        except (ValueError, msgspec.DecodeError):
            return None
        self._layouts.setdefault(layout_id, _Layout(layout_id, names, keys=keys))
        return layout_id

    def encode(self, state: ProfileState, unknown: frozenset[AudienceId] = frozenset()) -> bytes:
        """Serialize a state under its attributes' layout. Memberships `unknown` (a call for
        them is buffered or in flight) are written as unacknowledged, whatever the state says,
        so that a restore sends them again."""
        acked = state.acked
        if unknown:
            acked = (acked - unknown) | (unknown - state.desired)
        attributes = state.attributes
        layout = self._shapes.get(tuple(attributes)) or self._intern(attributes)
        packed = _Packed(
            layout=layout.id,
            t=state.ts_ms,
            o=state.offset,
            x=state.deleted,
            d=sorted(state.desired),
            k=None if acked == state.desired else sorted(acked),
            e=state.email,
            c=state.ecid,
            lead=state.lead_id,
            n=state.consent,
            u=state.uploaded,
            a=layout.values(attributes),
            r=state.erasing,
        )
        try:
            return _packer.encode(packed)
        except OverflowError:  # an integer beyond 64 bits: JSON numbers have no such bound
            fields = msgspec.structs.asdict(packed)
            del fields["layout"]
            fields.update(a=attributes, k=sorted(acked))
            return _json_encoder.encode(_Json(**fields))

    def _intern(self, attributes: Mapping[str, JsonValue]) -> _Layout:
        """The layout of these keys (sorted: another order of the same keys shares it)."""
        shape = tuple(attributes)
        if len(self._shapes) >= MAX_SHAPES:
            self._shapes.clear()
        names = sorted(shape)
        if len(self._layouts) >= MAX_LAYOUTS:  # keys that vary per profile: one map each
            layout = self._layouts.setdefault(MAP_LAYOUT, _Layout(MAP_LAYOUT, (), keys=True))
        else:
            text = _json_encoder.encode(names)  # as its record has them: ("",) is not ()
            layout_id = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")
            layout = self._layouts.setdefault(layout_id, _Layout(layout_id, names, keys=True))
        self._shapes[shape] = layout
        return layout

    def decode(self, data: bytes) -> ProfileState:
        """Read a state back; raises msgspec.DecodeError on a corrupt or unknown record."""
        if data[:1] == b"{":
            snap = _json_decoder.decode(data)
            return _state(snap, snap.a)
        packed = _unpack.decode(data)
        layout = self._layouts.get(packed.layout)
        if layout is None or not layout.fits(packed.a):
            raise msgspec.DecodeError(f"state written under unknown layout {packed.layout}")
        return _state(packed, layout.attributes(packed.a))

    def unacknowledged(self, data: bytes) -> bool:
        """Tell whether a state wants a membership Marketo has not acknowledged (head only)."""
        if data[:1] == b"{":
            snap = _json_decoder.decode(data)
            return sorted(snap.d) != sorted(snap.k)
        head = _unpack_head.decode(data)
        return head.k is not None and head.k != head.d  # both are written sorted

    def may_be_erasing(self, data: bytes) -> bool:
        """Tell whether a state could have a person deletion outstanding (deleted, with a lead
        id; head only): the few that could are decoded to know."""
        if data[:1] == b"{":
            snap = _json_decoder.decode(data)
            return snap.x and snap.lead is not None
        head = _unpack_head.decode(data)
        return head.x and head.lead is not None

    def memberships(
        self, data: bytes
    ) -> tuple[bool, tuple[AudienceId, ...], tuple[AudienceId, ...]]:
        """A state's deleted marker, desired and acknowledged memberships (head only)."""
        if data[:1] == b"{":
            snap = _json_decoder.decode(data)
            return snap.x, tuple(sorted(snap.d)), tuple(sorted(snap.k))
        head = _unpack_head.decode(data)
        desired = tuple(head.d)
        return head.x, desired, desired if head.k is None else tuple(head.k)

    def lead_id(self, data: bytes) -> LeadId | None:
        """The Marketo lead id of a state (head only)."""
        if data[:1] == b"{":
            return _json_decoder.decode(data).lead
        return _unpack_head.decode(data).lead


def layout_of(data: bytes) -> int | None:
    """The layout id a record was written under (None: the JSON format, which has none), read
    from its first bytes: the commit asks it of every record it writes."""
    if data[:1] == b"{" or len(data) < 2:
        return None
    tag = data[1]  # data[0] is the array's header; the layout id is its first item
    if tag < 0x80:  # a positive fixint
        return tag
    size = _UINT_SIZES.get(tag)
    return None if size is None else int.from_bytes(data[2 : 2 + size], "big")


_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}  # MessagePack's unsigned integer tags


class _Layout:
    """Attribute names in a fixed order: attributes to aligned values, and back.

    A layout the codec makes names top-level keys: a nested object is one value (a map with its
    own keys), so the layout stays the same when an inner value comes or goes. A layout of the
    earlier format names dotted leaf paths (`address.city`), still read. A key layout without a
    dot reads the same either way, so it is written as a plain layout record, which workers of
    the earlier format read too; one with a dotted key is written as a keys record.
    """

    def __init__(self, layout_id: int, names: Iterable[str], *, keys: bool) -> None:
        self.id = layout_id
        self.names = tuple(names)
        self.size = len(self.names)
        self.dotted_keys = keys and any("." in name for name in self.names)
        self.parts = tuple((name,) if keys else tuple(name.split(".")) for name in self.names)
        self.heads = tuple(p[0] for p in self.parts)
        self.nested = tuple((i, p) for i, p in enumerate(self.parts) if len(p) > 1)
        # the leading top-level names (all of them, in key layouts) are read and rebuilt in one
        # C-level pass; the rest, path by path
        self.prefix = self.heads[: self.nested[0][0] if self.nested else self.size]
        self.flat = not self.nested
        # one C call for every value, in the layout's order
        self._get: Callable[[Mapping[str, JsonValue]], Any] = (
            operator.itemgetter(*self.heads) if self.size > 1 else _single(self.heads)
        )

    def fits(self, values: list[Any]) -> bool:
        """Tell whether a record's values can be this layout's."""
        if self.id == MAP_LAYOUT:
            return len(values) == 1 and isinstance(values[0], dict)
        return len(values) == self.size

    def values(self, attributes: Mapping[str, JsonValue]) -> list[JsonValue]:
        """One value per name, None where absent."""
        if self.id == MAP_LAYOUT:
            return [attributes]  # type: ignore[list-item]
        if self.flat:  # a layout made for these keys: each one is there
            values = self._get(attributes)
            return cast(list[JsonValue], values if self.size != 1 else [values])
        values = list(map(attributes.get, self.heads))
        for index, parts in self.nested:
            value = values[index]
            for part in parts[1:]:
                value = value.get(part) if isinstance(value, dict) else None
            values[index] = value
        return values

    def attributes(self, values: list[Any]) -> dict[str, JsonValue]:
        """The attributes the values stand for: `address.city` becomes {"address": {...}}."""
        if self.id == MAP_LAYOUT:
            return cast(dict[str, JsonValue], values[0])
        if self.flat and None not in values:
            return dict(zip(self.heads, values, strict=True))
        attributes = {k: v for k, v in zip(self.prefix, values, strict=False) if v is not None}
        for index in range(len(self.prefix), self.size):
            value = values[index]
            if value is None:
                continue
            target = attributes
            parts = self.parts[index]
            for part in parts[:-1]:
                inner = target.get(part)
                if not isinstance(inner, dict):
                    inner = target[part] = {}
                target = inner
            target[parts[-1]] = value
        return attributes


def _single(heads: tuple[str, ...]) -> Callable[[Mapping[str, JsonValue]], Any]:
    """The getter of a layout of one name or none (itemgetter needs one and returns it bare)."""
    if not heads:
        return lambda _attributes: []
    return operator.itemgetter(heads[0])


def _state(snap: _Packed | _Json, attributes: dict[str, JsonValue]) -> ProfileState:
    desired = frozenset(snap.d)
    return ProfileState(
        ts_ms=snap.t,
        offset=snap.o,
        email=snap.e,
        ecid=snap.c,
        attributes=attributes,
        consent=snap.n,
        uploaded=snap.u,
        desired=desired,
        acked=desired if snap.k is None else frozenset(snap.k),
        lead_id=snap.lead,
        deleted=snap.x,
        erasing=snap.r,
    )


# The key of the record written to each state partition after a clean shutdown, when every
# Marketo call was answered and its effect written: the next owner can trust the state as it
# finds it. Its value is the audiences' fingerprint: other rules mean evaluating afresh.
CLEAN_HANDOVER = b""


@dataclass(slots=True)
class Image:
    """A state partition as read back: each profile's last state, still encoded, by its key."""

    states: dict[bytes, bytes]  # record key (the UTF-8 profile id) -> encoded state
    marker: bytes | None  # the clean-handover marker's value, when the partition ends with it
    layouts: set[int]  # the layouts whose control records were found (the codec learnt them)


def read_image(batches: Iterable[list[tuple[bytes, bytes | None]]], codec: StateCodec) -> Image:
    """Keep the last record per key (until compaction a key has many) without decoding states:
    decoding is the cost of a restore, and a state at rest stays encoded."""
    latest: dict[bytes, bytes | None] = {}
    last: tuple[bytes, bytes | None] | None = None
    for batch in batches:
        latest.update(batch)
        if batch:
            last = batch[-1]
    marker = last[1] if last is not None and last[0] == CLEAN_HANDOVER else None
    latest.pop(CLEAN_HANDOVER, None)
    layouts: set[int] = set()
    # tombstones (the profile is gone) and control records are not states; they are few
    for key in [k for k, v in latest.items() if v is None or k[:1] == CONTROL_PREFIX]:
        value = latest.pop(key)
        layout = None if value is None else codec.learn(key, value)
        if layout is not None:
            layouts.add(layout)
    return Image(cast(dict[bytes, bytes], latest), marker, layouts)  # no None value is left
