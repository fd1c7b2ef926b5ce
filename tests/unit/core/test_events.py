"""Decoding input events: every poison kind, ts forms, email normalisation, robustness."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.events import EventOp, ProfileUpdate, TsWindow, decode
from worker.core.ids import ProfileId
from worker.errors import PoisonMessage

MAX = 65_536
EVENT: dict[str, object] = {
    "profile_id": "p-42",
    "ts": "2026-11-28T12:00:00.123Z",
    "op": "upsert",
    "identities": {"email": "ann@example.com", "ecid": "3951724619547421111122345678"},
    "attributes": {"firstName": "Ann", "ltv": 1200.5, "tags": ["vip"], "address": {"city": "Lyon"}},
    "consent": {"marketing": "y"},
    "audiences": {"webinar-2026": "realized"},
}


_DROP = object()


def _raw(**changes: object) -> bytes:
    event = {**EVENT, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not _DROP}).encode()


def _kind(key: bytes | None, value: bytes | None, max_bytes: int = MAX) -> str:
    with pytest.raises(PoisonMessage) as info:
        decode(key, value, max_bytes=max_bytes)
    return info.value.kind


def test_decode_returns_every_field_of_a_valid_event() -> None:
    """A complete event decodes into a ProfileUpdate carrying each of its fields."""
    update = decode(b"p-42", _raw(), max_bytes=MAX)
    assert update == ProfileUpdate(
        profile_id=ProfileId("p-42"),
        ts_ms=1_795_867_200_123,
        op=EventOp.UPSERT,
        identities={"email": "ann@example.com", "ecid": "3951724619547421111122345678"},
        attributes={
            "firstName": "Ann",
            "ltv": 1200.5,
            "tags": ["vip"],
            "address": {"city": "Lyon"},
        },
        consent={"marketing": "y"},
        audiences={"webinar-2026": "realized"},
    )


def test_optional_objects_default_to_empty() -> None:
    """An event with only profile_id, ts and op has empty identities, attributes and maps."""
    raw = json.dumps({"profile_id": "p-1", "ts": 5, "op": "delete"}).encode()
    update = decode(b"p-1", raw, max_bytes=MAX)
    assert (update.identities, update.attributes, update.consent, update.audiences) == (
        {},
        {},
        {},
        {},
    )


def test_null_attributes_are_kept_for_patches() -> None:
    """A null attribute survives decoding, because in a patch it deletes the attribute."""
    update = decode(b"p-42", _raw(op="patch", attributes={"plan": None}), max_bytes=MAX)
    assert update.op is EventOp.PATCH
    assert update.attributes == {"plan": None}


def test_oversize_value_is_poison() -> None:
    """A value longer than max_bytes is rejected as oversize before it is parsed."""
    raw = _raw()
    assert _kind(b"p-42", raw, max_bytes=len(raw) - 1) == "oversize"


def test_value_of_exactly_max_bytes_is_accepted() -> None:
    """The limit is inclusive: a value of exactly max_bytes decodes."""
    raw = _raw()
    assert decode(b"p-42", raw, max_bytes=len(raw)).profile_id == "p-42"


@pytest.mark.parametrize("value", [None, b""])
def test_missing_value_is_empty_poison(value: bytes | None) -> None:
    """A tombstone (no value) or an empty payload on the input topic is poison of kind empty."""
    assert _kind(b"p-42", value) == "empty"


@pytest.mark.parametrize(
    "value", [b"{", b"not json", b'{"profile_id": "p-42",}', b"\xff\xfe", b"   "]
)
def test_malformed_json_is_bad_json(value: bytes) -> None:
    """Bytes that are not JSON are poison of kind bad_json."""
    assert _kind(b"p-42", value) == "bad_json"


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"profile_id": ""}, "$.profile_id"),
        ({"profile_id": "x" * 257}, "$.profile_id"),
        ({"profile_id": 42}, "$.profile_id"),
        ({"op": "merge"}, "$.op"),
        ({"op": _DROP}, "op"),
        ({"identities": {"email": 7}}, "$.identities"),
        ({"consent": {"marketing": True}}, "$.consent"),
        ({"audiences": {"a": "member"}}, "$.audiences"),
        ({"attributes": []}, "$.attributes"),
        ({"extra": 1}, "extra"),
    ],
)
def test_schema_violations_name_the_field(changes: dict[str, object], path: str) -> None:
    """A value that breaks the schema is poison of kind schema, naming the offending field."""
    with pytest.raises(PoisonMessage) as info:
        decode(b"p-42", _raw(**changes), max_bytes=MAX)
    assert info.value.kind == "schema"
    assert path in str(info.value)


def test_top_level_array_is_a_schema_violation() -> None:
    """Valid JSON that is not an object is poison of kind schema."""
    assert _kind(b"p-42", b"[1, 2]") == "schema"


@pytest.mark.parametrize(
    ("ts", "ts_ms"),
    [
        ("2026-11-28T12:00:00Z", 1_795_867_200_000),
        ("2026-11-28T14:00:00+02:00", 1_795_867_200_000),
        ("2026-11-28T09:30:00-02:30", 1_795_867_200_000),
        ("2026-11-28T12:00:00.5Z", 1_795_867_200_500),
        ("2026-11-28T12:00:00.123456789Z", 1_795_867_200_123),
        (1_795_867_200_123, 1_795_867_200_123),
        (0, 0),
    ],
)
def test_ts_forms_convert_to_epoch_ms(ts: object, ts_ms: int) -> None:
    """RFC 3339 with Z or an offset and integer epoch ms all become the same epoch ms."""
    assert decode(b"p-42", _raw(ts=ts), max_bytes=MAX).ts_ms == ts_ms


@pytest.mark.parametrize(
    "ts",
    [
        "yesterday",
        "2026-11-28T12:00:00",  # no offset: ambiguous
        "2026-11-28",
        "20261128T120000Z",  # ISO 8601 basic format, not RFC 3339
        "2026-11-28 12:00:00Z",
        "2026-02-30T12:00:00Z",  # no such day
        "2026-11-28T12:00:60Z",  # leap second: datetime cannot hold it
    ],
)
def test_unparsable_ts_strings_are_bad_ts(ts: str) -> None:
    """A ts string that is not an RFC 3339 instant is poison of kind bad_ts."""
    assert _kind(b"p-42", _raw(ts=ts)) == "bad_ts"


@pytest.mark.parametrize("ts", [True, -1, 1.5, 1e12, None, 253_402_300_800_000])
def test_ts_that_is_not_a_valid_integer_is_a_schema_violation(ts: object) -> None:
    """Booleans, negatives, floats, null and ms beyond year 9999 are not epoch milliseconds."""
    assert _kind(b"p-42", _raw(ts=ts)) == "schema"


@pytest.mark.parametrize("key", [None, b"p-43", b"\xff", b""])
def test_key_must_equal_profile_id(key: bytes | None) -> None:
    """A missing, undecodable or different key is poison of kind key_mismatch."""
    assert _kind(key, _raw()) == "key_mismatch"


def test_poison_messages_never_contain_the_email() -> None:
    """Even when an email lands in a field it breaks, the message does not repeat it."""
    email = "secret.person@example.com"
    for changes in ({"op": email}, {"audiences": {"a": email}}, {"ts": email}):
        with pytest.raises(PoisonMessage) as info:
            decode(b"p-42", _raw(**changes), max_bytes=MAX)
        assert email not in str(info.value)


@pytest.mark.parametrize(
    ("identities", "email"),
    [
        ({"email": "  Ann.Lee@Example.COM "}, "ann.lee@example.com"),
        ({"email": "   "}, None),
        ({"email": ""}, None),
        ({}, None),
    ],
)
def test_email_is_trimmed_and_lower_cased(identities: dict[str, str], email: str | None) -> None:
    """The match key is identities.email stripped and lower-cased, None when absent or blank."""
    assert decode(b"p-42", _raw(identities=identities), max_bytes=MAX).email == email


def test_ecid_is_exposed_when_present() -> None:
    """The ecid property returns identities.ecid, and None without one."""
    assert decode(b"p-42", _raw(), max_bytes=MAX).ecid == "3951724619547421111122345678"
    assert decode(b"p-42", _raw(identities={}), max_bytes=MAX).ecid is None


def test_profile_update_is_frozen() -> None:
    """A decoded update cannot be reassigned by the code that consumes it."""
    update = decode(b"p-42", _raw(), max_bytes=MAX)
    with pytest.raises(AttributeError):
        update.ts_ms = 0  # type: ignore[misc]  # the very assignment mypy refuses, tried at run time


def test_deeply_nested_attributes_are_poison_not_a_crash() -> None:
    """Pathologically nested JSON is refused as poison instead of overflowing the stack."""
    depth = 30_000
    raw = b'{"profile_id":"p","ts":1,"op":"upsert","attributes":{"a":' + b"[" * depth
    raw += b"]" * depth + b"}}"
    assert _kind(b"p", raw, max_bytes=len(raw)) == "bad_json"


@settings(max_examples=500)
@given(key=st.none() | st.binary(max_size=20), value=st.none() | st.binary(max_size=600))
def test_decode_raises_only_poison_on_arbitrary_bytes(
    key: bytes | None, value: bytes | None
) -> None:
    """Whatever the bytes, decode either returns an update or raises PoisonMessage."""
    kind = None
    try:
        decode(key, value, max_bytes=512)
    except PoisonMessage as exc:
        kind = exc.kind
    assert kind in {None, "oversize", "empty", "bad_json", "schema", "bad_ts", "key_mismatch"}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300)
@given(value=_json)
def test_decode_raises_only_poison_on_arbitrary_json(value: object) -> None:
    """Any JSON document, object or not, is decoded or refused as poison, never a crash."""
    kind = None
    try:
        decode(b"p", json.dumps(value).encode(), max_bytes=MAX)
    except PoisonMessage as exc:
        kind = exc.kind
    assert kind in {None, "schema", "bad_ts", "key_mismatch"}


def test_a_profile_id_starting_with_nul_is_poison() -> None:
    """Keys starting with NUL are the worker's own state records; no profile may take one."""
    value = _raw(profile_id="\x00layout/1")
    assert _kind(b"\x00layout/1", value) == "schema"


NOW_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z
WINDOW = TsWindow.around(NOW_MS, earliest_ms=946_684_800_000, max_future_ms=86_400_000)


def _ts_refusal(ts: object) -> PoisonMessage:
    with pytest.raises(PoisonMessage) as info:
        decode(b"p-42", _raw(ts=ts), max_bytes=MAX, ts_window=WINDOW)
    return info.value


@pytest.mark.parametrize("ts", ["9999-12-31T23:59:59Z", NOW_MS + 86_400_001])
def test_ts_beyond_the_allowed_future_is_ts_future(ts: object) -> None:
    """A ts more than the allowed future after now is poison of kind ts_future."""
    assert _ts_refusal(ts).kind == "ts_future"


@pytest.mark.parametrize("ts", ["1999-12-31T23:59:59Z", 0])
def test_ts_before_the_earliest_is_ts_too_old(ts: object) -> None:
    """A ts before the earliest accepted instant is poison of kind ts_too_old."""
    assert _ts_refusal(ts).kind == "ts_too_old"


def test_ts_in_epoch_seconds_is_refused_with_a_hint() -> None:
    """Epoch seconds read as ms fall in January 1970: the message says it looks like seconds."""
    refusal = _ts_refusal(1_796_186_000)
    assert refusal.kind == "ts_too_old"
    assert "as epoch seconds it would be 2026-12-02T04:33:20.000Z" in str(refusal)


def test_ts_old_but_not_like_seconds_gets_no_hint() -> None:
    """A ts whose thousandfold is no plausible time either is refused without the seconds hint."""
    assert "epoch seconds" not in str(_ts_refusal(5))


@pytest.mark.parametrize("ts", [NOW_MS + 86_400_000, 946_684_800_000, NOW_MS])
def test_ts_within_the_window_is_accepted(ts: int) -> None:
    """The window's bounds themselves and now are accepted."""
    assert decode(b"p-42", _raw(ts=ts), max_bytes=MAX, ts_window=WINDOW).ts_ms == ts


def test_key_mismatch_is_reported_before_the_ts_window() -> None:
    """A record with a wrong key and an old ts is a key_mismatch: the key is checked first."""
    with pytest.raises(PoisonMessage) as info:
        decode(b"p-other", _raw(ts=0), max_bytes=MAX, ts_window=WINDOW)
    assert info.value.kind == "key_mismatch"
