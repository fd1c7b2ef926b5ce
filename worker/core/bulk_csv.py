"""Bulk files: sync-leads records written as import CSV files under Marketo's size limit, and
the failures, warnings and export files read back.

Pure: no I/O. The records are the REST path's sync-leads input (the lookup value and the fields
worker/core/fields.py's Converter produced), so a value is converted once for both lanes; a
cell is the value's JSON text (what a lead sync sends) without JSON's string quotes. Files are
RFC 4180 (the csv module's QUOTE_MINIMAL, `\\r\\n`), UTF-8 without a byte-order mark, each with
its header. docs/marketo-facts.md ("Bulk Lead Import", "Bulk Lead Extract") has the facts.

A failures or warnings row carries no row number and no lead id, only the row as sent plus a
reason, so a row's identity is its lookup value: one value is written once. Records that share
one (compared case-insensitively for `email`, as Marketo matches emails) are one row, the last
record's values at the first one's place, and `ImportFile.rows` names every record behind it,
so one failed row reaches each of their profiles.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import msgspec

MAX_IMPORT_BYTES = 10_000_000  # Marketo answers HTTP 413 to an import of 10 MB or more
# The multipart envelope around the file is a few hundred bytes; the margin is far wider.
HEADROOM_BYTES = 64 * 1024
DEFAULT_FILE_BYTES = MAX_IMPORT_BYTES - HEADROOM_BYTES
FAILURE_COLUMN = "Import Failure Reason"
WARNING_COLUMN = "Import Warning Reason"
EXPORT_NULL = "null"  # an export file's empty field


@dataclass(frozen=True, slots=True)
class ImportFile:
    """One import file: its bytes, and per lookup value written (as written) the indexes of the
    input records its row carries."""

    data: bytes
    rows: dict[str, tuple[int, ...]]


class _Collector:
    """The file object csv.writer writes to: the text of the rows written since the last take."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        return text


def cell(value: object) -> str:
    """A converted value as a CSV cell: the text a lead sync's JSON carries; None is empty (an
    empty cell writes nothing, as an omitted field in a lead sync)."""
    if value is None:
        return ""
    if type(value) is str:
        return value
    if isinstance(value, bool | int | float):
        return msgspec.json.encode(value).decode()
    raise TypeError(f"a {type(value).__name__} is no converted field value")


def _identity(lookup_field: str, value: str) -> str:
    return value.lower() if lookup_field == "email" else value


def _coalesced(
    records: Sequence[Mapping[str, object]], lookup_field: str
) -> dict[str, tuple[Mapping[str, object], list[int]]]:
    """Per lookup identity: the last record with it, and the indexes of all of them."""
    rows: dict[str, tuple[Mapping[str, object], list[int]]] = {}
    for index, record in enumerate(records):
        value = record.get(lookup_field)
        if not isinstance(value, str) or not value:
            raise ValueError(f"record {index} has no {lookup_field} to match it by")
        identity = _identity(lookup_field, value)
        sources = rows[identity][1] if identity in rows else []
        sources.append(index)
        rows[identity] = (record, sources)
    return rows


def _header(records: Sequence[Mapping[str, object]], lookup_field: str) -> list[str]:
    columns = {lookup_field: None}
    for record in records:
        columns.update(dict.fromkeys(record))
    return list(columns)


def import_files(
    records: Sequence[Mapping[str, object]],
    *,
    lookup_field: str,
    max_bytes: int = DEFAULT_FILE_BYTES,
) -> list[ImportFile]:
    """The records as import files of at most `max_bytes` each (header included), in order; the
    lookup field is the first column, then every field in the order records name them."""
    rows = _coalesced(records, lookup_field)
    if not rows:
        return []
    header = _header(records, lookup_field)
    out = _Collector()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(header)
    head = out.take().encode()
    files: list[ImportFile] = []
    chunks: list[bytes] = []
    written: dict[str, tuple[int, ...]] = {}
    size = len(head)
    for record, sources in rows.values():
        writer.writerow([cell(record.get(name)) for name in header])
        line = out.take().encode()
        if len(head) + len(line) > max_bytes:
            raise ValueError(f"record {sources[-1]} alone makes a file over {max_bytes} bytes")
        if size + len(line) > max_bytes:
            files.append(ImportFile(head + b"".join(chunks), written))
            chunks, written, size = [], {}, len(head)
        chunks.append(line)
        written[str(record[lookup_field])] = tuple(sources)
        size += len(line)
    files.append(ImportFile(head + b"".join(chunks), written))
    return files


# ---- reading Marketo's files ----------------------------------------------------------------


def _lines(data: bytes) -> Iterator[str]:
    """The text's lines with their `\\n` (csv.reader joins a quoted field's lines itself); not
    str.splitlines, which also breaks at characters an unquoted cell may hold."""
    text = data.decode("utf-8-sig")
    parts = text.split("\n")
    for part in parts[:-1]:
        yield part + "\n"
    if parts[-1]:
        yield parts[-1]


def _table(data: bytes) -> tuple[list[str], list[list[str]]]:
    lines = [row for row in csv.reader(_lines(data)) if row]
    if not lines:
        raise ValueError("the file has no header")
    return [name.strip() for name in lines[0]], lines[1:]


def _report(data: bytes, lookup_field: str, reason_column: str) -> list[tuple[str, str]]:
    header, rows = _table(data)
    for wanted in (lookup_field, reason_column):
        if wanted not in header:
            raise ValueError(f"the file has no {wanted!r} column")
    key = header.index(lookup_field)
    # The reason is the last cell: a row Marketo found misshapen keeps its own cells before it.
    return [(row[key] if key < len(row) - 1 else "", row[-1]) for row in rows]


def read_failures(data: bytes, *, lookup_field: str) -> list[tuple[str, str]]:
    """A failures file as (lookup value as sent, Marketo's reason) pairs, in file order."""
    return _report(data, lookup_field, FAILURE_COLUMN)


def read_warnings(data: bytes, *, lookup_field: str) -> list[tuple[str, str]]:
    """A warnings file as (lookup value as sent, Marketo's reason) pairs, in file order."""
    return _report(data, lookup_field, WARNING_COLUMN)


def read_export(data: bytes) -> list[dict[str, str | None]]:
    """An export file's rows by column; Marketo writes an empty field as `null`, read as None
    (so a text value that is literally "null" reads as None too: the format cannot tell)."""
    header, rows = _table(data)
    return [
        {name: None if v == EXPORT_NULL else v for name, v in zip(header, row, strict=True)}
        for row in rows
    ]
