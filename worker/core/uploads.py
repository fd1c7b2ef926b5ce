"""Custom uploads (import-audience): a CSV header and row become one membership event.

Pure: no I/O, no clock (the caller passes `ts_ms`); reading the file and producing are the
command's job. Reasons for bad rows name the problem, never the cell's value (it may be an email).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

import msgspec

from worker.core.email import is_valid_email
from worker.core.ids import AudienceId, ProfileId

__all__ = [
    "MAX_PROFILE_ID_CHARS",
    "BadRow",
    "Header",
    "Status",
    "UploadEvent",
    "derived_profile_id",
    "next_ts_ms",
    "parse_header",
    "records",
    "to_event",
]

Status = Literal["realized", "exited"]
MAX_PROFILE_ID_CHARS: Final = 256  # schemas/profile-update.schema.json: profile_id maxLength
_RESERVED: Final = ("email", "profile_id", "ecid")
# Lone surrogates: bytes that were not UTF-8, kept by the reader's "surrogateescape" handler.
_UNDECODED: Final = re.compile("[\ud800-\udfff]")
_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Header:
    """A checked CSV header: where the identity columns are, and each attribute's path."""

    width: int
    email: int
    profile_id: int | None
    ecid: int | None
    attributes: tuple[tuple[int, tuple[str, ...]], ...]  # (column, attribute path)


@dataclass(frozen=True, slots=True)
class UploadEvent:
    """One membership event ready to produce: the record key (profile_id) and JSON value."""

    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that cannot become an event: its first physical line and why."""

    line: int
    reason: str


def parse_header(names: Sequence[str]) -> Header | str:
    """Check the header row; return the Header, or a message saying what is wrong with it.

    `email`, `profile_id` and `ecid` are matched case-insensitively; every other column is an
    attribute whose dotted name is a path (`address.city` -> {"address": {"city": ...}}).
    """
    cleaned = [name.strip() for name in names]
    for column, name in enumerate(cleaned, start=1):
        # an attribute name with bad bytes cannot be encoded into the event: refuse it now
        if _UNDECODED.search(name):
            return f"column {column}'s name is not valid UTF-8"
    keys = [name.lower() if name.lower() in _RESERVED else name for name in cleaned]
    if "email" not in keys:
        return "the header has no email column"
    if "" in keys:
        return f"column {keys.index('') + 1} has no name"
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        return f"duplicate columns: {', '.join(duplicates)}"
    attributes = tuple(
        (column, tuple(key.split("."))) for column, key in enumerate(keys) if key not in _RESERVED
    )
    problem = _path_problem([path for _, path in attributes])
    if problem is not None:
        return problem
    return Header(
        width=len(keys),
        email=keys.index("email"),
        profile_id=keys.index("profile_id") if "profile_id" in keys else None,
        ecid=keys.index("ecid") if "ecid" in keys else None,
        attributes=attributes,
    )


def _path_problem(paths: list[tuple[str, ...]]) -> str | None:
    for path in paths:
        if "" in path:
            return f"column {'.'.join(path)!r} is not an attribute path (an empty part)"
    # "address" and "address.city" cannot both be set: one would overwrite the other
    prefixes = {path[:cut] for path in paths for cut in range(1, len(path))}
    clashes = sorted(".".join(path) for path in paths if path in prefixes)
    if clashes:
        return f"column {clashes[0]!r} is also the parent of another column's path"
    return None


def records(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | BadRow]]:
    """Yield each non-blank CSV record with its first line number (quoted cells may span lines).

    `lines` is an open text file (opened with newline="") or any iterable of lines.
    """
    # strict: an unterminated quote is an error at the end of the file, where the lenient reader
    # silently makes every later line part of the open cell
    reader = csv.reader(lines, strict=True)
    done_lines = 0
    while True:
        first_line = done_lines + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # e.g. a NUL byte or an oversize field: this record only
            done_lines = reader.line_num
            yield first_line, BadRow(first_line, _unreadable(exc, first_line, done_lines))
            continue
        done_lines = reader.line_num
        if cells:
            yield first_line, cells


def _unreadable(exc: csv.Error, first_line: int, last_line: int) -> str:
    if str(exc) != "unexpected end of data":
        return f"unreadable CSV: {exc}"
    lost = f"line {first_line}" if first_line == last_line else f"lines {first_line}-{last_line}"
    return (
        "unterminated quote: a quoted cell of this record runs to the end of the file "
        f"({lost} not imported: close the quote and import those lines again)"
    )


def derived_profile_id(email: str) -> ProfileId:
    """A stable profile id for a row without one: the same for any case or padding of the email."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
    return ProfileId("email:" + digest[:24])


def next_ts_ms(now_ms: int, previous_ms: int) -> int:
    """The next event time of a run: now, but never before the previous one (clocks step back).

    Not strictly increasing: at thousands of rows per second that would run ahead of the clock
    (a million rows, 16 minutes), and a later `--exit` run or a live event for the same person
    would then be stale. Equal ts are fine: one profile's rows share a key, so a partition, and
    the worker orders ties by offset.
    """
    return max(now_ms, previous_ms)


def to_event(
    header: Header,
    cells: Sequence[str],
    *,
    line: int,
    audience: AudienceId,
    status: Status,
    ts_ms: int,
    max_bytes: int,
) -> UploadEvent | BadRow:
    """Turn one CSV row into a patch event setting `audience` to `status`, or say why not."""
    if len(cells) != header.width:
        return BadRow(line, f"expected {header.width} columns, found {len(cells)}")
    if any(_UNDECODED.search(cell) for cell in cells):
        return BadRow(line, "not valid UTF-8")
    email = cells[header.email].strip()
    if not email:
        return BadRow(line, "missing email")
    if not is_valid_email(email):
        return BadRow(line, "invalid email")
    given = cells[header.profile_id].strip() if header.profile_id is not None else ""
    if len(given) > MAX_PROFILE_ID_CHARS:
        return BadRow(line, f"profile_id is longer than {MAX_PROFILE_ID_CHARS} characters")
    if given.startswith("\x00"):  # the worker keeps these ids for its own records
        return BadRow(line, "profile_id starts with NUL (reserved for the worker)")
    profile_id = given or derived_profile_id(email)
    identities = {"email": email}
    ecid = cells[header.ecid].strip() if header.ecid is not None else ""
    if ecid:
        identities["ecid"] = ecid
    event = {
        "profile_id": profile_id,
        "ts": ts_ms,
        "op": "patch",
        "identities": identities,
        "attributes": _attributes(header, cells),
        "audiences": {audience: status},
    }
    value = _ENCODER.encode(event)
    if len(value) > max_bytes:
        return BadRow(line, f"the event would be {len(value)} bytes, over the {max_bytes} limit")
    return UploadEvent(key=profile_id.encode("utf-8"), value=value)


def _attributes(header: Header, cells: Sequence[str]) -> dict[str, object]:
    attributes: dict[str, object] = {}
    for column, path in header.attributes:
        cell = cells[column]
        if not cell.strip():  # an empty cell says nothing: it neither sets nor deletes
            continue
        node = attributes
        for part in path[:-1]:
            # always a dict: parse_header refused a column that is the parent of another
            node = cast(dict[str, object], node.setdefault(part, {}))
        node[path[-1]] = cell
    return attributes
