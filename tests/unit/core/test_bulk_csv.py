"""Bulk import files written from sync-leads records, and Marketo's report and export files read."""

from __future__ import annotations

import csv

import msgspec
import pytest

from worker.core import bulk_csv
from worker.core.bulk_csv import import_files, read_export, read_failures, read_warnings
from worker.core.fields import Converter, FieldSpec
from worker.core.ids import JsonValue
from worker.core.profile import ProfileState
from worker.flusher import LeadFields

TRICKY = 'Smith, Jr. "Bud"\nthe second'


def rows_of(data: bytes) -> list[list[str]]:
    """The file's rows as Python's csv reader reads them."""
    return list(csv.reader(data.decode("utf-8").splitlines(keepends=True)))


def people(count: int) -> list[dict[str, object]]:
    """`count` distinct sync-leads records."""
    return [{"email": f"p{i}@example.com", "firstName": f"Name {i}"} for i in range(count)]


def test_a_name_with_a_comma_a_quote_and_a_newline_round_trips() -> None:
    """RFC 4180 quoting keeps such a value one cell, intact."""
    (file,) = import_files([{"email": "a@example.com", "lastName": TRICKY}], lookup_field="email")
    assert rows_of(file.data) == [["email", "lastName"], ["a@example.com", TRICKY]]


def test_rows_end_with_crlf_and_the_file_is_utf8_without_a_bom() -> None:
    """Lines end with \\r\\n; non-ASCII text is UTF-8 and no byte-order mark precedes it."""
    (file,) = import_files([{"email": "a@example.com", "city": "Zürich"}], lookup_field="email")
    assert file.data == "email,city\r\na@example.com,Zürich\r\n".encode()


def test_the_lookup_field_is_the_first_column_then_fields_as_records_name_them() -> None:
    """The header puts the lookup field first, then each field at its first appearance."""
    records: list[dict[str, object]] = [
        {"firstName": "A", "email": "a@x.io"},
        {"email": "b@x.io", "score": 3},
    ]
    (file,) = import_files(records, lookup_field="email")
    assert rows_of(file.data) == [
        ["email", "firstName", "score"],
        ["a@x.io", "A", ""],
        ["b@x.io", "", "3"],
    ]


def test_files_stay_under_the_limit_and_every_row_lands_in_exactly_one() -> None:
    """A split keeps each file (header included) within max_bytes, every record in one file."""
    records = people(500)
    files = import_files(records, lookup_field="email", max_bytes=2_000)
    assert len(files) > 1
    assert all(len(f.data) <= 2_000 for f in files)
    assert all(rows_of(f.data)[0] == ["email", "firstName"] for f in files)
    written = [row[0] for f in files for row in rows_of(f.data)[1:]]
    assert written == [r["email"] for r in records]
    assert sorted(i for f in files for s in f.rows.values() for i in s) == list(range(500))


def test_the_default_limit_is_under_marketos_10_mb_with_headroom() -> None:
    """Files default to under 10,000,000 bytes less room for the multipart envelope."""
    assert bulk_csv.DEFAULT_FILE_BYTES + bulk_csv.HEADROOM_BYTES == 10_000_000
    assert bulk_csv.HEADROOM_BYTES >= 4096


def test_a_record_too_large_for_any_file_is_refused() -> None:
    """One row that alone exceeds the limit cannot be split: ValueError."""
    with pytest.raises(ValueError, match="record 0"):
        import_files(
            [{"email": "a@x.io", "lastName": "x" * 500}], lookup_field="email", max_bytes=100
        )


def test_records_sharing_a_lookup_value_become_one_row_naming_every_record() -> None:
    """Duplicates (emails case-insensitively) are one row: the last values, all the indexes."""
    records = [
        {"email": "A@x.io", "firstName": "old"},
        {"email": "b@x.io", "firstName": "B"},
        {"email": "a@x.io", "firstName": "new"},
    ]
    (file,) = import_files(records, lookup_field="email")
    assert rows_of(file.data)[1:] == [["a@x.io", "new"], ["b@x.io", "B"]]
    assert file.rows == {"a@x.io": (0, 2), "b@x.io": (1,)}


def test_a_record_without_its_lookup_value_is_refused() -> None:
    """A row Marketo could not match, and we could not match back, is a caller's bug."""
    with pytest.raises(ValueError, match="no email"):
        import_files([{"firstName": "A"}], lookup_field="email")


def test_no_records_make_no_file() -> None:
    """Nothing to import is no file at all (not a header alone)."""
    assert import_files([], lookup_field="email") == []


def test_cells_are_the_values_a_lead_sync_sends() -> None:
    """Converted through the REST path's LeadFields, each cell is the value's JSON text."""
    fields = {
        "email": FieldSpec("email", "email", 255, True),
        "score": FieldSpec("score", "integer", None, True),
        "ratio": FieldSpec("ratio", "float", None, True),
        "vip": FieldSpec("vip", "boolean", None, True),
        "born": FieldSpec("born", "date", None, True),
        "seen": FieldSpec("seen", "datetime", None, True),
    }
    mapping = [("score", "score"), ("ratio", "ratio"), ("vip", "vip")]
    mapping += [("born", "born"), ("seen", "seen")]
    lead = LeadFields("email", Converter(mapping, fields), match_only=False)
    attributes: dict[str, JsonValue] = {"score": "42", "ratio": 0.1, "vip": "yes"}
    attributes |= {"born": 0, "seen": "2024-05-01T10:00:00+02:00"}
    state = ProfileState(1, 1, email="a@x.io", attributes=attributes)
    record, refusals = lead.record("a@x.io", state)
    assert refusals == []
    (file,) = import_files([record], lookup_field="email")
    header, row = rows_of(file.data)
    sent = msgspec.json.decode(msgspec.json.encode(record))
    assert dict(zip(header, row, strict=True)) == {
        name: value if isinstance(value, str) else msgspec.json.encode(value).decode()
        for name, value in sent.items()
    }
    assert dict(zip(header, row, strict=True))["vip"] == "true"


def test_an_unconvertible_value_is_a_type_error() -> None:
    """Only what the Converter produces (text, numbers, booleans) can be a cell."""
    with pytest.raises(TypeError, match="list"):
        bulk_csv.cell(["a"])


FAILURES = (
    b"email,lastName,leadScore,Import Failure Reason\r\n"
    b'a@x.io,"Smith, Jr.",abc,Invalid data type in field Lead Score\r\n'
    b'b@x.io,"two\nlines",x,Invalid data type in field Lead Score\r\n'
)


def test_a_failures_file_reads_as_lookup_values_and_reasons() -> None:
    """Each failed row gives its lookup value as sent and Marketo's reason."""
    assert read_failures(FAILURES, lookup_field="email") == [
        ("a@x.io", "Invalid data type in field Lead Score"),
        ("b@x.io", "Invalid data type in field Lead Score"),
    ]


def test_a_warnings_file_reads_its_own_reason_column() -> None:
    """The warnings file's reason column is Import Warning Reason."""
    data = b"\xef\xbb\xbfemail,Import Warning Reason\r\nnot-an-email,Invalid email address\r\n"
    assert read_warnings(data, lookup_field="email") == [("not-an-email", "Invalid email address")]


def test_a_report_without_the_lookup_column_is_refused() -> None:
    """A file that cannot be matched back to profiles is an error, not an empty report."""
    with pytest.raises(ValueError, match="'email'"):
        read_failures(b"id,Import Failure Reason\r\n1,Lead not found\r\n", lookup_field="email")


def test_a_misshapen_failed_row_keeps_its_reason() -> None:
    """A row Marketo refused for its shape still gives the reason (and no lookup value)."""
    data = b"email,lastName,Import Failure Reason\r\n,Invalid row: 1 values for 2 columns\r\n"
    assert read_failures(data, lookup_field="email") == [
        ("", "Invalid row: 1 values for 2 columns")
    ]


def test_an_export_file_reads_null_as_none() -> None:
    """Marketo writes an empty field as the literal null."""
    data = b'id,email,firstName\r\n5,a@x.io,null\r\n6,b@x.io,"Smith, Jr."\r\n'
    assert read_export(data) == [
        {"id": "5", "email": "a@x.io", "firstName": None},
        {"id": "6", "email": "b@x.io", "firstName": "Smith, Jr."},
    ]
