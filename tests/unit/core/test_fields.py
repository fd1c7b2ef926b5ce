"""Mapping checks against describe, and profile values converted to Marketo's field types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.fields import Converter, FieldSpec, check_mapping
from worker.errors import ConfigError

Json: TypeAlias = object


def spec(
    name: str, data_type: str, length: int | None = None, updateable: bool = True
) -> FieldSpec:
    return FieldSpec(name, data_type, length, updateable)


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in [
        spec("id", "integer"),
        spec("email", "email", 255),
        spec("firstName", "string", 255),
        spec("lastName", "string", 255),
        spec("city", "string", 255),
        spec("code", "string", 5),
        spec("notes", "text"),
        spec("phone", "phone", 255),
        spec("website", "url", 255),
        spec("leadScore", "integer"),
        spec("annualRevenue", "currency"),
        spec("ratio", "float"),
        spec("share", "percent"),
        spec("unsubscribed", "boolean"),
        spec("dateOfBirth", "date"),
        spec("lastSeen", "datetime"),
        spec("leadPartitionId", "reference"),
        spec("createdAt", "datetime", updateable=False),
        spec("ecids", "string", 255, updateable=False),
        spec("visitorId", "string", 40),
    ]
}
ALL_WRITABLE = [
    ("v", name)
    for name, f in FIELDS.items()
    if f.updateable and f.data_type != "reference" and name not in {"id", "visitorId"}
]


def convert_one(field: str, value: Json) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """Convert `value` mapped from attribute `v` to `field`."""
    fields, refusals = Converter([("v", field)], FIELDS).convert({"v": value}, {})
    return fields, refusals


def converted(field: str, value: Json) -> object:
    fields, refusals = convert_one(field, value)
    assert refusals == [], refusals
    return fields[field]


def refusal(field: str, value: Json) -> str:
    fields, refusals = convert_one(field, value)
    assert fields == {}
    ((name, reason),) = refusals
    assert name == field
    return reason


# ---- check_mapping ---------------------------------------------------------------------------


def test_a_valid_mapping_has_no_problems() -> None:
    """Writable fields of supported types, and an email lookup field, pass."""
    mapping = [("firstName", "firstName"), ("identities.ecid", "city"), ("score", "leadScore")]
    assert check_mapping(mapping, FIELDS, "email") == []


def test_an_unknown_field_is_named_with_close_names() -> None:
    """A misspelt field is reported under its mapping's key, with the likely name suggested."""
    (problem,) = check_mapping([("a", "firstName"), ("b", "lastNmae")], FIELDS)
    assert problem.startswith("mapping[1].to: no Marketo field named 'lastNmae'")
    assert "did you mean lastName" in problem


def test_an_unknown_field_without_a_close_name_gets_no_suggestion() -> None:
    """Nothing is suggested when no field name is close."""
    (problem,) = check_mapping([("a", "zzzzzz")], FIELDS)
    assert problem == "mapping[0].to: no Marketo field named 'zzzzzz'"


@pytest.mark.parametrize("name", ["ecids", "createdAt"])
def test_a_read_only_field_is_a_problem(name: str) -> None:
    """Fields describe marks not updateable cannot be mapped."""
    (problem,) = check_mapping([("a", name)], FIELDS)
    assert problem == f"mapping[0].to: {name} is read-only in Marketo (describe: updateable false)"


def test_a_reference_field_is_a_problem() -> None:
    """A field type no profile value can become is refused at start-up."""
    (problem,) = check_mapping([("a", "leadPartitionId")], FIELDS)
    assert problem.startswith("mapping[0].to: leadPartitionId is a reference field")


def test_the_lead_id_cannot_be_mapped() -> None:
    """`id` is assigned by Marketo; sync with createOrUpdate refuses it (1003)."""
    (problem,) = check_mapping([("a", "id")], FIELDS)
    assert problem.startswith("mapping[0].to: id is the lead id")


def test_an_identity_into_a_non_text_field_is_a_problem() -> None:
    """Identities are text: mapping one to an integer field is type-incompatible."""
    (problem,) = check_mapping([("identities.ecid", "leadScore")], FIELDS)
    assert problem == "mapping[0].to: leadScore is an integer field, but identities.ecid is text"


def test_an_identity_the_profile_does_not_keep_is_a_problem() -> None:
    """Only identities.email and identities.ecid are kept in the profile state."""
    (problem,) = check_mapping([("identities.phone", "phone")], FIELDS)
    assert problem.startswith("mapping[0].from: only identities.email and identities.ecid")


def test_mapping_another_value_to_the_lookup_field_is_a_problem() -> None:
    """A mapped value in the lookup field would change whom the record matches."""
    (problem,) = check_mapping([("workEmail", "email")], FIELDS, "email")
    assert problem.startswith("mapping[0].to: email is marketo.lookup_field")


def test_mapping_the_email_identity_to_the_lookup_field_is_fine() -> None:
    """identities.email is the lookup value itself."""
    assert check_mapping([("identities.email", "email")], FIELDS, "email") == []


def test_an_unknown_lookup_field_is_a_problem() -> None:
    """The lookup field must exist in describe."""
    (problem,) = check_mapping([], FIELDS, "emial")
    assert problem.startswith("marketo.lookup_field: no Marketo field named 'emial'")
    assert "did you mean email" in problem


def test_a_non_text_lookup_field_is_a_problem() -> None:
    """The lookup value is the profile's email, which an integer field cannot hold."""
    (problem,) = check_mapping([], FIELDS, "leadScore")
    assert problem.startswith("marketo.lookup_field: leadScore is an integer field")


def test_every_problem_is_reported() -> None:
    """Problems are collected, not stopped at the first."""
    problems = check_mapping([("a", "nope"), ("b", "ecids")], FIELDS, "nothing")
    assert [p.split(":")[0] for p in problems] == [
        "mapping[0].to",
        "mapping[1].to",
        "marketo.lookup_field",
    ]


def test_a_converter_refuses_a_mapping_with_problems() -> None:
    """Building a converter for an unusable mapping is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=r"mapping\[0\]\.to: ecids is read-only"):
        Converter([("a", "ecids")], FIELDS)


# ---- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Lyon", "Lyon"), (42, "42"), (2.5, "2.5"), (True, "true"), (False, "false"), ("", "")],
)
def test_text_fields_take_scalars_as_text(value: Json, expected: str) -> None:
    """Strings pass, numbers become their text, booleans become true/false."""
    assert converted("city", value) == expected


@pytest.mark.parametrize("field", ["notes", "phone", "website", "email"])
def test_every_text_type_takes_a_string(field: str) -> None:
    """text, phone, url and email fields take strings as they are."""
    assert converted(field, "a@b.example") == "a@b.example"


@pytest.mark.parametrize(("value", "kind"), [(["a"], "a list"), ({"a": 1}, "an object")])
def test_text_fields_refuse_lists_and_objects(value: Json, kind: str) -> None:
    """A list or object is not a string value."""
    assert refusal("city", value) == f"{kind} cannot be written to a text field"


def test_a_string_longer_than_the_field_is_refused_not_truncated() -> None:
    """Marketo answers 1003 past the length; the worker says so instead of cutting the value."""
    assert converted("code", "12345") == "12345"
    assert refusal("code", "123456") == "6 characters, longer than the field's 5"


def test_a_text_field_without_a_length_takes_long_strings() -> None:
    """No length in describe means no limit is applied."""
    assert converted("notes", "x" * 10_000) == "x" * 10_000


def test_an_email_field_refuses_non_ascii() -> None:
    """Marketo wants email values in ASCII."""
    assert "non-ASCII" in refusal("email", "zoë@example.com")


def test_a_reason_never_quotes_the_value() -> None:
    """Refusal reasons may reach the rejections topic; values may be personal data."""
    assert "secret-value" not in refusal("leadScore", "secret-value")


# ---- integer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(7, 7), (7.0, 7), ("42", 42), (" -3 ", -3), ("+5", 5), ("1e3", 1000), ("12.0", 12)],
)
def test_integer_fields_take_whole_numbers(value: Json, expected: int) -> None:
    """Ints, integral floats and numeric text become ints."""
    result = converted("leadScore", value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "text that is not a number cannot be written to an integer field"),
        (True, "a boolean cannot be written to an integer field"),
        (1.5, "not a whole number, which an integer field needs"),
        ("1.5", "not a whole number, which an integer field needs"),
        ([1], "a list cannot be written to an integer field"),
        (float("nan"), "not a whole number, which an integer field needs"),
        ("٣", "text that is not a number cannot be written to an integer field"),
    ],
)
def test_integer_fields_refuse_what_is_not_a_whole_number(value: Json, reason: str) -> None:
    """Text, booleans, fractions and other kinds are refused with their reason."""
    assert refusal("leadScore", value) == reason


@pytest.mark.parametrize("value", [2**31 - 1, -(2**31)])
def test_integer_fields_take_the_32_bit_bounds(value: int) -> None:
    """The extremes of a 32-bit signed integer are accepted."""
    assert converted("leadScore", value) == value


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1, "9" * 100, 1e300])
def test_integer_fields_refuse_numbers_out_of_32_bit_range(value: Json) -> None:
    """Past a 32-bit signed integer Marketo would refuse the value."""
    assert refusal("leadScore", value) == "out of the range of Marketo's 32-bit integer field"


# ---- float, currency, percent ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["ratio", "annualRevenue", "share"])
@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 2.5), (3, 3.0), ("12.75", 12.75), ("-1e2", -100.0)]
)
def test_number_fields_take_numbers_and_numeric_text(
    field: str, value: Json, expected: float
) -> None:
    """float, currency and percent fields take numbers and numeric text as floats."""
    assert converted(field, value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12 EUR", "text that is not a number cannot be written to a number field"),
        (False, "a boolean cannot be written to a number field"),
        ({"a": 1}, "an object cannot be written to a number field"),
        ("1e999", "not a finite number"),
        (float("inf"), "not a finite number"),
        (10**400, "not a finite number"),
    ],
)
def test_number_fields_refuse_what_is_not_a_finite_number(value: Json, reason: str) -> None:
    """Non-numeric text, booleans and infinities are refused."""
    assert refusal("ratio", value) == reason


# ---- boolean ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("yes", True),
        ("No", False),
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
    ],
)
def test_boolean_fields_take_booleans_and_their_words(value: Json, expected: bool) -> None:
    """Booleans, true/false/yes/no/1/0 in any case, and 0/1 become booleans."""
    assert converted("unsubscribed", value) is expected


@pytest.mark.parametrize(("value", "kind"), [("maybe", "text other than"), (2, "a number")])
def test_boolean_fields_refuse_other_values(value: Json, kind: str) -> None:
    """Other words and numbers are refused."""
    assert refusal("unsubscribed", value).startswith(kind)


# ---- date and datetime -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1990-02-28", "1990-02-28"),
        ("2024-05-01T23:30:00-05:00", "2024-05-01"),
        ("2024-05-01T10:00:00.123Z", "2024-05-01"),
        (0, "1970-01-01"),
        (1_714_608_000_000 - 1, "2024-05-01"),
        (-86_400_000, "1969-12-31"),
    ],
)
def test_date_fields_take_dates_date_times_and_epoch_ms(value: Json, expected: str) -> None:
    """A date stays, a date-time keeps its own date part, epoch ms become a UTC date."""
    assert converted("dateOfBirth", value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("01/05/2024", "text that is not a YYYY-MM-DD date cannot be written to a date field"),
        ("2023-02-30", "a day that does not exist"),
        (True, "a boolean cannot be written to a date field"),
        (10**20, "epoch milliseconds out of the range of dates"),
    ],
)
def test_date_fields_refuse_other_values(value: Json, reason: str) -> None:
    """Other text, impossible days, booleans and huge numbers are refused."""
    assert refusal("dateOfBirth", value) == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T23:30:00.999-05:00", "2024-05-02T04:30:00Z"),
        ("2024-05-01T00:15:00+02:00", "2024-04-30T22:15:00Z"),
        (1_714_557_600_000, "2024-05-01T10:00:00Z"),
        (1_714_557_600_123.0, "2024-05-01T10:00:00Z"),
    ],
)
def test_datetime_fields_become_utc_seconds(value: Json, expected: str) -> None:
    """RFC 3339 and epoch ms become YYYY-MM-DDTHH:MM:SSZ in UTC."""
    assert converted("lastSeen", value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2024-05-01T10:00:00", "text that is not an RFC 3339 date-time"),
        ("2024-05-01", "text that is not an RFC 3339 date-time"),
        ("2023-02-30T10:00:00Z", "a date-time that does not exist in UTC"),
        ("0001-01-01T00:00:00+01:00", "a date-time that does not exist in UTC"),
        ([], "a list cannot be written"),
    ],
)
def test_datetime_fields_refuse_other_values(value: Json, reason: str) -> None:
    """A date-time without offset, a bare date, impossible instants and lists are refused."""
    assert refusal("lastSeen", value).startswith(reason)


# ---- sources and records ---------------------------------------------------------------------


def test_none_and_missing_values_are_omitted() -> None:
    """A null or absent attribute is not sent (it would clear the Marketo field)."""
    converter = Converter([("a", "city"), ("b", "leadScore")], FIELDS)
    assert converter.convert({"a": None}, {}) == ({}, [])


def test_nested_attribute_paths_are_read() -> None:
    """`address.city` reads inside objects; a non-object on the way means no value."""
    converter = Converter([("address.city", "city")], FIELDS)
    assert converter.convert({"address": {"city": "Lyon"}}, {}).fields == {"city": "Lyon"}
    assert converter.convert({"address": "Lyon"}, {}).fields == {}


def test_identities_are_read_from_the_identities() -> None:
    """identities.ecid and identities.email read the profile's identities, not attributes."""
    converter = Converter([("identities.ecid", "city"), ("identities.email", "email")], FIELDS)
    identities = {"ecid": "1234567890", "email": "a@example.com"}
    result = converter.convert({"identities": {"ecid": "wrong"}}, identities)
    assert result.fields == {"city": "1234567890", "email": "a@example.com"}


def test_one_refusal_does_not_hide_the_other_fields() -> None:
    """Every field is converted; refusals are listed beside the converted fields."""
    converter = Converter([("a", "city"), ("b", "leadScore"), ("c", "unsubscribed")], FIELDS)
    fields, refusals = converter.convert({"a": "Lyon", "b": "abc", "c": "maybe"}, {})
    assert fields == {"city": "Lyon"}
    assert [name for name, _ in refusals] == ["leadScore", "unsubscribed"]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["2024-05-01", "2024-05-01T10:00:00Z", "1e999", "yes", "12.0", "9" * 5000]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.sampled_from(["v", "w"]), JSON_VALUES), st.none() | st.text())
def test_convert_never_raises_on_json_like_values(
    attributes: Mapping[str, Json], ecid: str | None
) -> None:
    """Whatever JSON a profile holds, conversion answers with fields or refusals."""
    mapping = [*ALL_WRITABLE, ("w.x", "firstName"), ("identities.ecid", "visitorId")]
    fields, refusals = Converter(mapping, FIELDS).convert(attributes, {"ecid": ecid})
    assert set(fields).isdisjoint(name for name, _ in refusals)
    assert all(value is not None for value in fields.values())
