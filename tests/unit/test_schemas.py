"""The committed JSON Schemas agree with the code: generated config schema, event decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from worker.core.events import decode
from worker.errors import PoisonMessage
from worker.settings import config_json_schema

ROOT = Path(__file__).resolve().parents[2]
CONFIG_SCHEMA = ROOT / "schemas" / "config.schema.json"
EVENT_SCHEMA = ROOT / "schemas" / "profile-update.schema.json"
REGENERATE = ".venv/bin/python -m worker.settings --schema > schemas/config.schema.json"


def _validator(path: Path) -> Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


EVENTS = _validator(EVENT_SCHEMA)


def test_committed_config_schema_matches_the_models() -> None:
    """schemas/config.schema.json is exactly what the settings models generate."""
    committed = json.loads(CONFIG_SCHEMA.read_text(encoding="utf-8"))
    assert committed == config_json_schema(), f"schema is stale; regenerate with: {REGENERATE}"


def test_local_config_satisfies_the_config_schema() -> None:
    """deploy/local/config.yaml is valid against the published schema, not only the models."""
    config = yaml.safe_load((ROOT / "deploy" / "local" / "config.yaml").read_text("utf-8"))
    assert list(_validator(CONFIG_SCHEMA).iter_errors(config)) == []


def test_config_schema_refuses_credentials() -> None:
    """The schema, like the loader, has no place for Marketo credentials."""
    config = {
        "marketo": {"base_url": "https://x.mktorest.com", "client_secret": "s"},
        "audiences": [{"id": "a", "name": "A", "rule": "x == 1", "list": {"id": 1}}],
    }
    assert not _validator(CONFIG_SCHEMA).is_valid(config)


def _decodes(event: object) -> bool:
    """Whether decode accepts the event, keyed by its own profile_id when it has one."""
    key = event.get("profile_id") if isinstance(event, dict) else None
    raw_key = key.encode() if isinstance(key, str) else b"k"
    kind = None
    try:
        decode(raw_key, json.dumps(event).encode(), max_bytes=1 << 20)
    except PoisonMessage as exc:
        kind = exc.kind
    assert kind in {None, "schema", "bad_ts"}
    return kind is None


BASE: dict[str, Any] = {"profile_id": "p-1", "ts": "2026-11-28T12:00:00Z", "op": "upsert"}


@pytest.mark.parametrize(
    "event",
    [
        BASE,
        {**BASE, "ts": 0},
        {**BASE, "ts": "2026-11-28T12:00:00.123456+05:30", "op": "patch"},
        {**BASE, "op": "delete", "identities": {"email": "a@b.c", "ecid": "1", "crm": "x"}},
        {**BASE, "attributes": {"a": None, "b": [1, {"c": True}]}, "consent": {"marketing": "n"}},
        {**BASE, "audiences": {"w": "realized", "x": "existing", "y": "exited"}},
    ],
)
def test_schema_and_decode_accept_the_same_valid_events(event: dict[str, Any]) -> None:
    """Each valid example passes both the schema and decode."""
    assert (EVENTS.is_valid(event), _decodes(event)) == (True, True)


@pytest.mark.parametrize(
    "event",
    [
        {"ts": 1, "op": "upsert"},
        {**BASE, "profile_id": ""},
        {**BASE, "profile_id": "x" * 257},
        {**BASE, "ts": -1},
        {**BASE, "ts": True},
        {**BASE, "ts": "2026-11-28T12:00:00"},
        {**BASE, "ts": "2026-11-28T12:00:00z"},
        {**BASE, "ts": "2026-13-01T12:00:00Z"},
        {**BASE, "op": "merge"},
        {**BASE, "identities": {"email": None}},
        {**BASE, "attributes": ["a"]},
        {**BASE, "consent": {"marketing": False}},
        {**BASE, "audiences": {"w": "member"}},
        {**BASE, "unknown": 1},
        ["not", "an", "object"],
    ],
)
def test_schema_and_decode_refuse_the_same_invalid_events(event: object) -> None:
    """Each invalid example fails both the schema and decode."""
    assert (EVENTS.is_valid(event), _decodes(event)) == (False, False)


@pytest.mark.parametrize(
    "event",
    [
        {**BASE, "ts": "2026-02-30T12:00:00Z"},  # the pattern cannot know month lengths
        {**BASE, "ts": 1e12},  # JSON Schema counts a number without fraction as an integer
    ],
)
def test_documented_differences_are_refused_only_by_decode(event: dict[str, Any]) -> None:
    """The two differences stated in the schema's description: schema accepts, decode refuses."""
    assert (EVENTS.is_valid(event), _decodes(event)) == (True, False)


def _rfc3339(moment: datetime, offset_min: int, fraction: str) -> str:
    sign = "-" if offset_min < 0 else "+"
    zone = "Z" if offset_min == 0 else f"{sign}{abs(offset_min) // 60:02}:{abs(offset_min) % 60:02}"
    day = f"{moment.year:04}-{moment.month:02}-{moment.day:02}"
    return f"{day}T{moment.hour:02}:{moment.minute:02}:{moment.second:02}{fraction}{zone}"


_text = st.text(max_size=8)
_json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_text, inner, max_size=2),
    max_leaves=6,
)
_any = _json_value
_ts = st.one_of(
    st.builds(
        _rfc3339,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.integers(-23 * 60 - 59, 23 * 60 + 59),
        st.sampled_from(["", ".5", ".123", ".123456789"]),
    ),
    st.integers(min_value=-5, max_value=253_402_300_800_005),
    st.sampled_from(["2026-11-28", "2026-11-28T12:00:00", "now", ""]),
    _any,
)
_strings = st.dictionaries(_text, _text, max_size=3)
_status = st.sampled_from(["realized", "existing", "exited", "member"])
FIELDS = {
    "profile_id": st.text(max_size=3) | st.text(min_size=255, max_size=258) | _any,
    "ts": _ts,
    "op": st.sampled_from(["upsert", "patch", "delete", "merge"]) | _any,
    "identities": _strings | st.dictionaries(_text, _any, max_size=2) | _any,
    "attributes": st.dictionaries(_text, _json_value, max_size=3) | _any,
    "consent": _strings | _any,
    "audiences": st.dictionaries(_text, _status, max_size=3) | _any,
    "extra": _any,
}


@st.composite
def _events(draw: st.DrawFn) -> dict[str, object]:
    names = draw(st.sets(st.sampled_from(sorted(FIELDS))))
    # mostly keep the required fields so that the optional ones get exercised
    if draw(st.integers(0, 3)):
        names |= {"profile_id", "ts", "op"}
    return {name: draw(FIELDS[name]) for name in sorted(names)}


def _float_integer_ts(event: dict[str, object]) -> bool:
    ts = event.get("ts")
    return isinstance(ts, float) and ts.is_integer()


@settings(max_examples=400)
@given(event=_events())
@example(event={**BASE, "ts": datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000})
def test_decode_accepts_exactly_what_the_schema_validates(event: dict[str, object]) -> None:
    """Random events built from the schema's pieces: decode accepts iff the schema validates.

    The one difference generated here is stated in the schema: a float ts without a fraction.
    """
    expected = EVENTS.is_valid(event) and not _float_integer_ts(event)
    assert _decodes(event) == expected
