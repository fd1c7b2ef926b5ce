"""Profile values as Marketo field values, checked against Marketo's describe.

Pure: no I/O. `check_mapping` finds mappings no value could ever satisfy; a `Converter` turns one
profile's values into sync-leads fields and names each value Marketo would refuse (1003), and why.
Reasons never quote the value: it may be personal data.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple, TypeGuard

from worker.core.events import RFC3339_PATTERN
from worker.errors import ConfigError

TEXT_TYPES = frozenset({"string", "text", "email", "phone", "url"})
NUMBER_TYPES = frozenset({"float", "currency", "percent"})
WRITABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | {"integer", "boolean", "date", "datetime"}
IDENTITIES = ("email", "ecid")  # the identities a profile state keeps (core/profile.py)
IDENTITY_PREFIX = "identities."
_IDENTITY_SOURCES = frozenset(IDENTITY_PREFIX + name for name in IDENTITIES)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1  # Marketo integer fields are 32-bit signed
_MAX_DIGITS = 64  # past this a number is out of every range; int() of huge text is slow
_INTEGER = re.compile(r"[+-]?[0-9]+\Z")  # [0-9], not \d: int() would accept other scripts
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_RFC3339 = re.compile(RFC3339_PATTERN)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = {bool: "a boolean", int: "a number", float: "a number", str: "text", list: "a list"}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A Marketo lead field as describe reports it: REST name, data type, length, writable."""

    name: str
    data_type: str
    length: int | None
    updateable: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """A value Marketo would refuse, and why (without the value)."""

    reason: str


Convert = Callable[[object], object]  # the value to send, or a Refused


class Converted(NamedTuple):
    """One profile's mapped fields ready to send, and the (field, reason) pairs refused."""

    fields: dict[str, object]
    refusals: list[tuple[str, str]]


def _kind(value: object) -> str:
    return _KINDS.get(type(value), "an object" if isinstance(value, dict) else "a value")


def _a(data_type: str) -> str:
    return f"{'an' if data_type[:1] in 'aeio' else 'a'} {data_type}"


def _wrong(value: object, data_type: str) -> Refused:
    return Refused(f"{_kind(value)} cannot be written to {_a(data_type)} field")


def _as_text(value: object) -> str | Refused:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else Refused("not a finite number")
    if isinstance(value, int):
        # str() refuses ints past 4300 digits; no text field is that long anyway
        return str(value) if value.bit_length() < 4000 else Refused("a number too long for text")
    return Refused(f"{_kind(value)} cannot be written to a text field")


def _text(data_type: str, length: int | None) -> Convert:
    ascii_only = data_type == "email"  # Marketo: email values must be ASCII

    def convert(value: object) -> object:
        text = value if type(value) is str else _as_text(value)
        if isinstance(text, Refused):
            return text
        if length is not None and len(text) > length:
            return Refused(f"{len(text)} characters, longer than the field's {length}")
        if ascii_only and not text.isascii():
            return Refused("non-ASCII characters, which Marketo refuses in an email field")
        return text

    return convert


def _numeric(value: object, data_type: str) -> int | float | Refused:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _wrong(value, data_type)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not _NUMBER.match(text):
        return Refused(f"text that is not a number cannot be written to {_a(data_type)} field")
    # int() of thousands of digits is slow (and refused past 4300); such text is out of range
    return int(text) if _INTEGER.match(text) and len(text) <= _MAX_DIGITS else float(text)


def _integer(value: object) -> object:
    number = _numeric(value, "integer")
    if isinstance(number, float):
        if not math.isfinite(number) or not number.is_integer():
            return Refused("not a whole number, which an integer field needs")
        number = int(number)
    if isinstance(number, Refused) or _INT32_MIN <= number <= _INT32_MAX:
        return number
    return Refused("out of the range of Marketo's 32-bit integer field")


def _number(value: object) -> object:
    number = _numeric(value, "number")
    if isinstance(number, Refused):
        return number
    try:
        result = float(number)
    except OverflowError:  # an int past 1e308
        result = math.inf
    return result if math.isfinite(result) else Refused("not a finite number")


def _boolean(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        return Refused("text other than true/false/yes/no/1/0 cannot be written to a boolean field")
    if isinstance(value, int | float) and value in (0, 1):
        return value == 1
    return _wrong(value, "boolean")


def _from_epoch_ms(value: int | float) -> datetime | Refused:
    try:
        return _EPOCH + timedelta(milliseconds=value)
    except (OverflowError, ValueError):  # ValueError: NaN
        return Refused("epoch milliseconds out of the range of dates")


def _is_epoch(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _date(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if not (_DATE.match(text) or _RFC3339.match(text)):
            return Refused("text that is not a YYYY-MM-DD date cannot be written to a date field")
        try:
            return date.fromisoformat(text[:10]).isoformat()  # a date-time keeps its own date
        except ValueError:
            return Refused("a day that does not exist")
    if _is_epoch(value):
        moment = _from_epoch_ms(value)
        return moment if isinstance(moment, Refused) else moment.date().isoformat()
    return _wrong(value, "date")


def _utc_text(moment: datetime) -> str:
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _datetime(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if not _RFC3339.match(text):
            return Refused(
                "text that is not an RFC 3339 date-time with an offset "
                "cannot be written to a datetime field"
            )
        try:
            return _utc_text(datetime.fromisoformat(text).astimezone(UTC))
        except (ValueError, OverflowError):
            return Refused("a date-time that does not exist in UTC")
    if _is_epoch(value):
        moment = _from_epoch_ms(value)
        return moment if isinstance(moment, Refused) else _utc_text(moment)
    return _wrong(value, "datetime")


def converter_for(spec: FieldSpec) -> Convert:
    """The conversion into one field's Marketo type; KeyError for a type nothing can become."""
    if spec.data_type in TEXT_TYPES:
        return _text(spec.data_type, spec.length)
    if spec.data_type in NUMBER_TYPES:
        return _number
    return {
        "integer": _integer,
        "boolean": _boolean,
        "date": _date,
        "datetime": _datetime,
    }[spec.data_type]


def _unknown(name: str, fields: Mapping[str, FieldSpec]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"no Marketo field named {name!r}{hint}"


def _field_problem(name: str, fields: Mapping[str, FieldSpec]) -> str | None:
    spec = fields.get(name)
    if spec is None:
        return _unknown(name, fields)
    if not spec.updateable:
        return f"{name} is read-only in Marketo (describe: updateable false)"
    if spec.data_type not in WRITABLE_TYPES:
        return f"{name} is {_a(spec.data_type)} field, which no profile value can be written to"
    return None


def _source_problem(source: str, spec: FieldSpec, lookup_field: str | None) -> str | None:
    if source.startswith(IDENTITY_PREFIX):
        if source.removeprefix(IDENTITY_PREFIX) not in IDENTITIES:
            return "from: only identities.email and identities.ecid are kept from a profile"
        if spec.data_type not in TEXT_TYPES:
            return f"to: {spec.name} is {_a(spec.data_type)} field, but {source} is text"
    if spec.name == "id":
        return "to: id is the lead id Marketo assigns; it cannot be mapped"
    if spec.name == lookup_field and source != IDENTITY_PREFIX + "email":
        return (
            f"to: {spec.name} is marketo.lookup_field, filled from identities.email; "
            "another value would change which person a record matches"
        )
    return None


def _lookup_problem(name: str, fields: Mapping[str, FieldSpec]) -> str | None:
    problem = _field_problem(name, fields)
    if problem is not None:
        return problem
    spec = fields[name]
    if spec.data_type not in TEXT_TYPES:
        return f"{name} is {_a(spec.data_type)} field, but the lookup value is the profile's email"
    return None


def check_mapping(
    mapping: Sequence[tuple[str, str]],
    fields: Mapping[str, FieldSpec],
    lookup_field: str | None = None,
) -> list[str]:
    """Every `key: problem` that makes the mapping (and the lookup field) unusable in Marketo."""
    problems: list[str] = []
    for index, (source, name) in enumerate(mapping):
        problem = _field_problem(name, fields)
        if problem is not None:
            problems.append(f"mapping[{index}].to: {problem}")
            continue
        relative = _source_problem(source, fields[name], lookup_field)
        if relative is not None:
            problems.append(f"mapping[{index}].{relative}")
    if lookup_field is not None:
        problem = _lookup_problem(lookup_field, fields)
        if problem is not None:
            problems.append(f"marketo.lookup_field: {problem}")
    return problems


@dataclass(frozen=True, slots=True)
class _Slot:
    """One mapping, resolved once: where its value comes from and how it converts."""

    field: str
    identity: str | None  # set for identities.*; else the value is at `path` in the attributes
    path: tuple[str, ...]
    convert: Convert


class Converter:
    """A profile's mapped values as Marketo field values; built once, used for every record."""

    __slots__ = ("_slots",)

    def __init__(self, mapping: Sequence[tuple[str, str]], fields: Mapping[str, FieldSpec]) -> None:
        problems = check_mapping(mapping, fields)
        if problems:
            raise ConfigError("\n".join(problems))
        self._slots = tuple(
            _Slot(
                name,
                source.removeprefix(IDENTITY_PREFIX) if source in _IDENTITY_SOURCES else None,
                tuple(source.split(".")),
                converter_for(fields[name]),
            )
            for source, name in mapping
        )

    def convert(
        self, attributes: Mapping[str, object], identities: Mapping[str, str | None]
    ) -> Converted:
        """The fields to send (None values omitted) and the (field, reason) pairs refused."""
        record: dict[str, object] = {}
        refusals: list[tuple[str, str]] = []
        for slot in self._slots:
            if slot.identity is not None:
                value: object = identities.get(slot.identity)
            else:
                value = _read(attributes, slot.path)
            if value is None:
                continue
            converted = slot.convert(value)
            if type(converted) is Refused:
                refusals.append((slot.field, converted.reason))
            else:
                record[slot.field] = converted
        return Converted(record, refusals)


def _read(attributes: Mapping[str, object], path: tuple[str, ...]) -> object:
    value = attributes.get(path[0])
    for part in path[1:]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
