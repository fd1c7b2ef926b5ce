"""Input events: decode one Kafka record into a ProfileUpdate, or say why not.

Pure: no I/O. The wire contract is schemas/profile-update.schema.json; a test keeps the two in
agreement. Error messages name the offending field but never echo identity values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal, cast

import msgspec

from worker.core.ids import JsonValue, ProfileId
from worker.errors import PoisonMessage

__all__ = [
    "MAX_TS_MS",
    "MIN_TS_MS",
    "RFC3339_PATTERN",
    "EventOp",
    "ProfileUpdate",
    "TsWindow",
    "decode",
]

# 9999-12-31T23:59:59.999Z: the last instant an RFC 3339 string can name, so both forms agree.
MAX_TS_MS: Final = 253_402_300_799_999
# a day before 0001-01-01T00:00:00Z: below the first instant an RFC 3339 string can name
MIN_TS_MS: Final = -62_135_683_200_000
# RFC 3339 date-time with an upper-case "T" and an explicit offset; the schema carries the same
# pattern. Leap seconds (":60") and year 0000 are refused because datetime cannot hold them.
RFC3339_PATTERN: Final = (
    r"^(?!0000)[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# msgspec quotes the bad value in enum errors; a producer may have put an email there.
_QUOTED_VALUE = re.compile(r"Invalid enum value '.*?' - at")


class EventOp(StrEnum):
    """What an event does to the profile's attributes."""

    UPSERT = "upsert"
    PATCH = "patch"
    DELETE = "delete"


Status = Literal["realized", "existing", "exited"]


class _Wire(msgspec.Struct, forbid_unknown_fields=True):
    """The JSON value exactly as produced; unknown top-level fields are a schema violation."""

    profile_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    ts: str | Annotated[int, msgspec.Meta(ge=0, le=MAX_TS_MS)]
    op: EventOp
    identities: dict[str, str] = {}
    attributes: dict[str, object] = {}
    consent: dict[str, str] = {}
    audiences: dict[str, Status] = {}


class ProfileUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One decoded profile event; `attributes` keeps JSON nulls (a patch deletes those keys)."""

    profile_id: ProfileId
    ts_ms: int
    op: EventOp
    identities: dict[str, str] = {}
    attributes: dict[str, JsonValue] = {}
    consent: dict[str, str] = {}
    audiences: dict[str, str] = {}

    @property
    def email(self) -> str | None:
        """The Marketo match key: identities.email trimmed and lower-cased; None when blank."""
        raw = self.identities.get("email")
        if raw is None:
            return None
        return raw.strip().lower() or None

    @property
    def ecid(self) -> str | None:
        """The Experience Cloud id, when the event carries one."""
        return self.identities.get("ecid") or None


@dataclass(frozen=True, slots=True)
class TsWindow:
    """The event times accepted, in epoch ms: a ts far in the future would make every later
    event of its profile stale for ever, and one before any plausible event is a unit mistake."""

    earliest_ms: int
    latest_ms: int

    @classmethod
    def around(cls, now_ms: int, *, earliest_ms: int, max_future_ms: int) -> TsWindow:
        """From `earliest_ms` to `max_future_ms` after `now_ms` (the caller's clock)."""
        return cls(earliest_ms, now_ms + max_future_ms)


_DECODER = msgspec.json.Decoder(_Wire)
_ANY_TS = TsWindow(MIN_TS_MS, MAX_TS_MS)


def decode(
    key: bytes | None, value: bytes | None, *, max_bytes: int, ts_window: TsWindow = _ANY_TS
) -> ProfileUpdate:
    """Decode one record's key and value, or raise PoisonMessage saying what is wrong."""
    if not value:
        raise PoisonMessage("empty", "record has no value (a tombstone or an empty payload)")
    if len(value) > max_bytes:
        raise PoisonMessage("oversize", f"value is {len(value)} bytes, over the {max_bytes} limit")
    wire = _decode_wire(value)
    ts_ms = wire.ts if isinstance(wire.ts, int) else _parse_ts(wire.ts)
    _check_key(key, wire.profile_id)
    if wire.profile_id[0] == "\x00":
        raise PoisonMessage(
            "schema", "profile_id starts with NUL, reserved for the worker's own records"
        )
    _check_ts(ts_ms, ts_window)
    return ProfileUpdate(
        profile_id=ProfileId(wire.profile_id),
        ts_ms=ts_ms,
        op=wire.op,
        identities=wire.identities,
        # a JSON decoder can produce nothing but JSON values
        attributes=cast(dict[str, JsonValue], wire.attributes),
        consent=wire.consent,
        audiences=cast(dict[str, str], wire.audiences),
    )


def _decode_wire(value: bytes) -> _Wire:
    try:
        return _DECODER.decode(value)
    except msgspec.ValidationError as exc:
        message = _QUOTED_VALUE.sub("Invalid enum value - at", str(exc))
        raise PoisonMessage("schema", message) from None
    except msgspec.DecodeError as exc:
        raise PoisonMessage("bad_json", str(exc)) from None
    except RecursionError:
        # msgspec recurses per nesting level; a hostile producer can nest arrays 30,000 deep
        raise PoisonMessage("bad_json", "JSON is nested too deeply") from None


def _parse_ts(text: str) -> int:
    if _RFC3339.match(text) is None:
        raise PoisonMessage(
            "bad_ts", "ts is neither RFC 3339 with an offset nor epoch ms - at $.ts"
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise PoisonMessage("bad_ts", "ts names a day that does not exist - at $.ts") from None
    # floor division of timedeltas is exact; float timestamps would round .123 to .122999
    return (moment - _EPOCH) // _ONE_MS


def _check_ts(ts_ms: int, window: TsWindow) -> None:
    if ts_ms > window.latest_ms:
        raise PoisonMessage(
            "ts_future", f"ts {_iso(ts_ms)} is later than {_iso(window.latest_ms)} - at $.ts"
        )
    if ts_ms < window.earliest_ms:
        hint = ""
        if window.earliest_ms <= ts_ms * 1000 <= MAX_TS_MS:  # a producer sending seconds
            hint = f" (as epoch seconds it would be {_iso(ts_ms * 1000)}: ts is epoch ms)"
        raise PoisonMessage(
            "ts_too_old",
            f"ts {_iso(ts_ms)} is earlier than {_iso(window.earliest_ms)}{hint} - at $.ts",
        )


def _iso(ts_ms: int) -> str:
    moment = _EPOCH + ts_ms * _ONE_MS
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_key(key: bytes | None, profile_id: str) -> None:
    if key is None:
        raise PoisonMessage("key_mismatch", "record has no key; the key must equal profile_id")
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise PoisonMessage("key_mismatch", "record key is not valid UTF-8") from None
    if text != profile_id:
        raise PoisonMessage("key_mismatch", "record key does not equal $.profile_id")
