"""Custom uploads: a CSV header and rows become membership events, or bad rows with reasons."""

from __future__ import annotations

import csv
import io

import pytest

from worker.core.events import EventOp, decode
from worker.core.ids import AudienceId
from worker.core.uploads import (
    BadRow,
    Header,
    Status,
    UploadEvent,
    derived_profile_id,
    next_ts_ms,
    parse_header,
    records,
    to_event,
)

AUDIENCE = AudienceId("webinar-2026")
TS_MS = 1_795_000_000_000


def header(*names: str) -> Header:
    parsed = parse_header(list(names))
    assert isinstance(parsed, Header), parsed
    return parsed


NAMES = ("email", "profile_id", "ecid", "firstName")


def convert(
    cells: list[str],
    names: tuple[str, ...] = NAMES,
    *,
    line: int = 2,
    status: Status = "realized",
    max_bytes: int = 65_536,
) -> UploadEvent | BadRow:
    return to_event(
        header(*names),
        cells,
        line=line,
        audience=AUDIENCE,
        status=status,
        ts_ms=TS_MS,
        max_bytes=max_bytes,
    )


def event_of(
    cells: list[str], names: tuple[str, ...] = NAMES, *, status: Status = "realized"
) -> UploadEvent:
    result = convert(cells, names, status=status)
    assert isinstance(result, UploadEvent), result
    return result


def test_row_becomes_a_patch_realizing_the_audience() -> None:
    """A full row decodes as a patch with the identities, attributes and the audience realized."""
    result = event_of(["ann@example.com", "p-1", "ecid-1", "Ann"])
    update = decode(result.key, result.value, max_bytes=65_536)
    assert update.profile_id == "p-1"
    assert update.ts_ms == TS_MS
    assert update.op is EventOp.PATCH
    assert update.identities == {"email": "ann@example.com", "ecid": "ecid-1"}
    assert update.attributes == {"firstName": "Ann"}
    assert update.audiences == {"webinar-2026": "realized"}


def test_exit_upload_sets_the_status_exited() -> None:
    """With status exited (--exit), the event says the person left the audience."""
    result = event_of(["ann@example.com", "p-1", "", ""], status="exited")
    assert decode(result.key, result.value, max_bytes=65_536).audiences == {
        "webinar-2026": "exited"
    }


def test_key_is_the_profile_id() -> None:
    """The record key equals profile_id, as the worker requires."""
    assert event_of(["ann@example.com", "p-7", "", ""]).key == b"p-7"


def test_row_without_profile_id_gets_the_id_derived_from_the_email() -> None:
    """An empty profile_id cell falls back to the id derived from the email."""
    result = event_of(["ann@example.com", "", "", ""])
    assert result.key == derived_profile_id("ann@example.com").encode()


def test_file_without_profile_id_column_derives_ids() -> None:
    """Without a profile_id column every row's id is derived from its email."""
    result = event_of(["bob@example.com"], ("email",))
    assert result.key.decode() == derived_profile_id("bob@example.com")


def test_derived_profile_id_ignores_case_and_padding() -> None:
    """The same person written differently gets the same derived id."""
    assert derived_profile_id("  Ann@Example.COM ") == derived_profile_id("ann@example.com")


def test_derived_profile_id_is_the_documented_hash() -> None:
    """The derived id is "email:" and the first 24 hex digits of sha256(lowercased email)."""
    # sha256(b"ann@example.com"), computed apart from the code under test
    assert derived_profile_id("Ann@Example.com") == "email:71d4f55f72fa128dfb468a1a"


def test_different_emails_derive_different_ids() -> None:
    """Two people never share a derived id by accident of the derivation."""
    assert derived_profile_id("ann@example.com") != derived_profile_id("bob@example.com")


def test_empty_cells_are_omitted_from_attributes() -> None:
    """A blank cell neither sets nor deletes an attribute."""
    result = event_of(["ann@example.com", "p-1", "", "  "])
    update = decode(result.key, result.value, max_bytes=65_536)
    assert update.attributes == {}
    assert update.identities == {"email": "ann@example.com"}  # the filled cell, not the blank


def test_attribute_values_stay_strings() -> None:
    """Numbers in the CSV are published as the strings they are in the file."""
    result = event_of(["ann@example.com", "1200.50"], ("email", "ltv"))
    assert decode(result.key, result.value, max_bytes=65_536).attributes == {"ltv": "1200.50"}


def test_dotted_columns_become_nested_attribute_paths() -> None:
    """`address.city` is the attribute path rules and mappings read."""
    result = event_of(
        ["ann@example.com", "Lyon", "69001"], ("email", "address.city", "address.zip")
    )
    update = decode(result.key, result.value, max_bytes=65_536)
    assert update.attributes == {"address": {"city": "Lyon", "zip": "69001"}}


def test_email_is_trimmed() -> None:
    """Spaces around the email are not part of it."""
    result = event_of(["  ann@example.com ", "p-1", "", ""])
    assert decode(result.key, result.value, max_bytes=65_536).identities["email"] == (
        "ann@example.com"
    )


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["", "p-1", "", ""], "missing email"),
        (["   ", "p-1", "", ""], "missing email"),
        (["ann.example.com", "p-1", "", ""], "invalid email"),
        (["ann@example", "p-1", "", ""], "invalid email"),
        (["ann@@example.com", "p-1", "", ""], "invalid email"),
        (["ann lee@example.com", "p-1", "", ""], "invalid email"),
        (["ann@example..com", "p-1", "", ""], "invalid email"),
        (["ann\0@example.com", "p-1", "", ""], "invalid email"),
        (["a" * 250 + "@example.com", "p-1", "", ""], "invalid email"),
        (["ann@example.com", "p-1", ""], "expected 4 columns, found 3"),
        (["ann@example.com", "p-1", "", "", "x"], "expected 4 columns, found 5"),
        (["ann@example.com", "p" * 257, "", ""], "profile_id is longer than 256 characters"),
        (["ann@example.com", "p-1", "", "Ann\udcff"], "not valid UTF-8"),
    ],
)
def test_bad_row_is_reported_with_its_line_and_reason(cells: list[str], reason: str) -> None:
    """Each kind of bad row gives a BadRow carrying the row's line number and the reason."""
    assert convert(cells, line=17) == BadRow(17, reason)


def test_profile_id_of_the_maximum_length_is_accepted() -> None:
    """A profile_id of exactly 256 characters is valid (the schema's limit)."""
    assert event_of(["ann@example.com", "p" * 256, "", ""]).key == b"p" * 256


def test_profile_id_starting_with_nul_is_a_bad_row() -> None:
    """A profile_id the worker would dead-letter (it starts with NUL) is refused here."""
    result = convert(["ann@example.com", "\0p-1", "", ""], line=3)
    assert result == BadRow(3, "profile_id starts with NUL (reserved for the worker)")


def test_row_over_the_event_size_limit_is_bad() -> None:
    """A row whose event the worker would dead-letter as oversize is refused here."""
    result = convert(["ann@example.com", "p-1", "", "x" * 500], line=4, max_bytes=300)
    assert isinstance(result, BadRow)
    assert result.line == 4
    assert "over the 300 limit" in result.reason


def test_bad_row_reason_never_echoes_the_email() -> None:
    """Reasons go to a terminal or a CI log: they name the problem, not the value."""
    result = convert(["secret-person.example.com", "p-1", "", ""])
    assert isinstance(result, BadRow)
    assert "secret" not in result.reason


def test_header_reserved_names_match_any_case() -> None:
    """`Email`, `PROFILE_ID` and `Ecid` are the identity columns."""
    parsed = header(" Email ", "PROFILE_ID", "Ecid", "firstName")
    assert (parsed.email, parsed.profile_id, parsed.ecid) == (0, 1, 2)
    assert parsed.attributes == ((3, ("firstName",)),)


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["profile_id", "firstName"], "the header has no email column"),
        (["email", "", "x"], "column 2 has no name"),
        (["email", "plan", "plan"], "duplicate columns: plan"),
        (["email", "Email"], "duplicate columns: email"),
        (["email", "address..city"], "column 'address..city' is not an attribute path"),
        (["email", "address", "address.city"], "column 'address' is also the parent"),
    ],
)
def test_bad_header_is_refused_with_the_problem(names: list[str], problem: str) -> None:
    """A header the rows cannot be read against is refused, saying why."""
    parsed = parse_header(names)
    assert isinstance(parsed, str)
    assert parsed.startswith(problem)


def test_header_name_with_bytes_not_utf8_is_refused() -> None:
    """A column name holding bytes that are not UTF-8 is refused, naming the column."""
    assert parse_header(["email", "caf\udce9"]) == "column 2's name is not valid UTF-8"


def test_records_number_each_record_by_its_first_line() -> None:
    """Blank lines are skipped and a quoted cell spanning lines keeps later numbers right."""
    text = 'email,note\na@example.com,x\n\nb@example.com,"two\nlines"\nc@example.com,y\n'
    got = [
        (line, cells if isinstance(cells, BadRow) else cells[0])
        for line, cells in records(io.StringIO(text, newline=""))
    ]
    assert got == [
        (1, "email"),
        (2, "a@example.com"),
        (4, "b@example.com"),
        (6, "c@example.com"),
    ]


def test_unreadable_record_is_a_bad_row_and_reading_goes_on() -> None:
    """A record the csv module refuses (an oversize field) is reported, and reading goes on."""
    text = f"email\n{'x' * (csv.field_size_limit() + 1)}\nok@example.com\n"
    got = list(records(io.StringIO(text, newline="")))
    line, bad = got[1]
    assert isinstance(bad, BadRow)
    assert (line, bad.line) == (2, 2)
    assert bad.reason.startswith("unreadable CSV")
    assert got[2] == (3, ["ok@example.com"])


def test_unterminated_quote_is_a_bad_row_naming_the_lines_it_swallowed() -> None:
    """A quote left open runs to the end of the file: one bad row saying which lines were lost."""
    text = 'email,name\na@example.com,"Ann\nb@example.com,Bob\nc@example.com,Cat\n'
    got = list(records(io.StringIO(text, newline="")))
    assert got[:1] == [(1, ["email", "name"])]
    ((line, bad),) = got[1:]
    assert isinstance(bad, BadRow)
    assert line == 2
    assert bad.reason.startswith("unterminated quote:")
    assert "lines 2-4 not imported" in bad.reason


def test_text_after_a_closing_quote_is_a_bad_row() -> None:
    """`"y"z` is malformed CSV: reported as a bad row rather than read as yz."""
    got = list(records(io.StringIO('a,b\nx,"y"z\n1,2\n', newline="")))
    assert isinstance(got[1][1], BadRow)
    assert got[2] == (3, ["1", "2"])


def test_timestamps_never_go_back_within_a_run() -> None:
    """When the clock steps back, the run keeps the previous ts (a later row is never older)."""
    assert next_ts_ms(TS_MS - 5_000, TS_MS) == TS_MS


def test_timestamps_do_not_run_ahead_of_the_clock() -> None:
    """Many rows in one millisecond all get that millisecond: a big file does not drift ahead."""
    ts = TS_MS
    for _ in range(10_000):
        ts = next_ts_ms(TS_MS, ts)
    assert ts == TS_MS


def test_timestamps_follow_the_clock() -> None:
    """When the clock has moved on, ts is the clock's time."""
    assert next_ts_ms(TS_MS + 500, TS_MS) == TS_MS + 500
