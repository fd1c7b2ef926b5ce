"""What values mean to a rule: operators, null semantics, type mismatches and functions."""

from __future__ import annotations

import pytest

from tests.unit.core.rules.support import DAY_MS, PROFILE, TS_MS, matches
from worker.core.rules import compile_rule

# --- operators ---------------------------------------------------------------------------------


def test_readme_example_matches_a_profile_that_satisfies_every_predicate() -> None:
    """The README's example rule matches a French VIP with a high LTV who never churned."""
    rule = 'country == "FR" and ltv >= 1000 and "vip" in tags and not exists(churned_at)'
    assert matches(rule)
    assert not matches(rule, {**PROFILE, "churned_at": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('country == "FR"', True),
        ('country == "DE"', False),
        ('country != "DE"', True),
        ('country != "FR"', False),
        ("visits < 4", True),
        ("visits < 3", False),
        ("visits <= 3", True),
        ("visits <= 2", False),
        ("visits > 2", True),
        ("visits > 3", False),
        ("visits >= 3", True),
        ("visits >= 4", False),
    ],
)
def test_comparison_operators_compare_values(text: str, expected: bool) -> None:
    """Each comparison operator gives the result Python would for same-typed operands."""
    assert matches(text) is expected


def test_int_and_float_compare_as_numbers() -> None:
    """3 == 3.0 and 1200.5 > 1200, as JSON numbers."""
    assert matches("visits == 3.0 and ltv > 1200")


def test_strings_order_by_code_point() -> None:
    """Strings compare lexicographically, so ISO dates order correctly."""
    assert matches('"2026-01-02" > "2026-01-01" and country < "GB"')


def test_negative_number_literal_is_accepted() -> None:
    """A signed number is a literal, not arithmetic."""
    assert matches("visits > -1 and -2.5 < ltv and +3 == visits")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"vip" in tags', True),
        ('"gold" in tags', False),
        ('country in ["FR", "DE"]', True),
        ('country in ["ES", "DE"]', False),
        ('"Example" in email', True),
        ('"city" in address', True),
        ('"street" in address', False),
        ("3 in [1, 2, 3.0]", True),
        ("[1, 2] in [[1, 2], 3]", True),
    ],
)
def test_in_tests_list_elements_substrings_and_object_keys(text: str, expected: bool) -> None:
    """`in` is list membership, substring, or object key."""
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [('"gold" not in tags', True), ('"vip" not in tags', False), ('country not in ["DE"]', True)],
)
def test_not_in_is_the_negation_of_in_for_containers(text: str, expected: bool) -> None:
    """`not in` negates `in` when both sides are known."""
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('country == "FR" and visits == 3', True),
        ('country == "FR" and visits == 4', False),
        ('country == "DE" or visits == 3', True),
        ('country == "DE" or visits == 4', False),
        ('not country == "DE"', True),
        ('not country == "FR"', False),
        ('not (country == "DE" or visits == 4) and "vip" in tags', True),
    ],
)
def test_boolean_operators_combine_conditions(text: str, expected: bool) -> None:
    """and, or, not and parentheses combine conditions as in Python."""
    assert matches(text) is expected


def test_chained_comparison_is_a_conjunction() -> None:
    """`1 < visits < 10` means `1 < visits and visits < 10`."""
    assert matches("1 < visits < 10")
    assert not matches("1 < visits < 3")


@pytest.mark.parametrize("text", ["true", "True", "not false", "not False", "true and opted_in"])
def test_boolean_literals_in_both_spellings_are_conditions(text: str) -> None:
    """true/false and Python's True/False are boolean literals."""
    assert matches(text)


def test_boolean_attribute_is_a_condition() -> None:
    """A bare attribute path is true when its value is the boolean true."""
    assert matches("opted_in")
    assert not matches("opted_in", {"opted_in": False})


@pytest.mark.parametrize("value", [1, "yes", ["x"], {"a": 1}, None])
def test_bare_non_boolean_attribute_does_not_match_either_way(value: object) -> None:
    """A non-boolean value is not truthy: neither `x` nor `not x` matches."""
    assert not matches("flag", {"flag": value})
    assert not matches("not flag", {"flag": value})


def test_list_equality_is_elementwise_json_equality() -> None:
    """Lists are equal when their elements are, in order."""
    assert matches('tags == ["vip", "beta"]')
    assert not matches('tags == ["beta", "vip"]')


def test_object_attributes_compare_by_content() -> None:
    """Two objects are equal when they have the same keys and equal values."""
    attributes = {"a": {"x": [1, {"y": None}]}, "b": {"x": [1.0, {"y": None}]}}
    assert matches("a == b", attributes)
    assert not matches("a != b", attributes)


# --- null semantics ----------------------------------------------------------------------------

NULL_COMPARISONS = [
    "x == 1",
    'x != "a"',
    "x < 1",
    "x <= 1",
    "x > 1",
    "x >= 1",
    "1 < x",
    "x in [1]",
    "x not in [1]",
    '"a" in x',
    '"a" not in x',
    "x == y",
    "x != y",
    "null < 1",
    "null in [null]",
]


@pytest.mark.parametrize("text", NULL_COMPARISONS)
@pytest.mark.parametrize("attributes", [{}, {"x": None, "y": None}], ids=["missing", "null"])
def test_every_comparison_with_null_is_false(text: str, attributes: dict[str, object]) -> None:
    """Comparing a missing or null value with anything (even null) is false."""
    assert not matches(text, attributes)


@pytest.mark.parametrize("text", NULL_COMPARISONS)
def test_not_of_a_comparison_with_null_is_also_false(text: str) -> None:
    """Unknown stays unknown under `not`, so `not (x == 1)` with x missing is false too."""
    assert not matches(f"not ({text})", {})
    assert compile_rule(f"not ({text})").evaluate({}, TS_MS) is None


@pytest.mark.parametrize("literal", ["null", "None"])
def test_eq_null_matches_missing_and_null_attributes(literal: str) -> None:
    """`x == null` is true when x is missing or null, false when it has a value."""
    assert matches(f"x == {literal}", {})
    assert matches(f"x == {literal}", {"x": None})
    assert matches(f"{literal} == x", {})
    assert not matches(f"x == {literal}", {"x": 0})


@pytest.mark.parametrize("value", [0, False, "", [], {}])
def test_ne_null_matches_any_present_value(value: object) -> None:
    """`x != null` is true for any non-null value, falsy ones included."""
    assert matches("x != null", {"x": value})
    assert not matches("x != null", {"x": None})


def test_or_with_one_unknown_side_matches_when_the_other_is_true() -> None:
    """Kleene logic: unknown or true is true."""
    assert matches('missing == 1 or country == "FR"')


def test_and_with_one_false_side_is_definitely_false_despite_unknown() -> None:
    """Kleene logic: unknown and false is false, so its negation matches."""
    assert compile_rule('missing == 1 and country == "DE"').evaluate(PROFILE, TS_MS) is False
    assert matches('not (missing == 1 and country == "DE")')


# --- type mismatches ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['ltv > "100"', '"100" < ltv', "country >= 1", "tags < [1]"])
def test_ordering_between_incompatible_types_is_false_both_ways(text: str) -> None:
    """str vs number (or lists) are unordered: the test and its negation are both false."""
    assert not matches(text)
    assert not matches(f"not ({text})")


@pytest.mark.parametrize("text", ["opted_in >= 1", "opted_in == 1", "1 in [true]", "0 == false"])
def test_booleans_are_not_numbers(text: str) -> None:
    """true is not 1 and false is not 0, unlike in Python."""
    assert not matches(text)


@pytest.mark.parametrize("text", ['"a" in visits', '"a" in opted_in', '"a" not in visits'])
def test_in_with_a_non_container_right_side_is_false(text: str) -> None:
    """`in` and `not in` with a number or boolean on the right are both false."""
    assert not matches(text)


@pytest.mark.parametrize("text", ["1 in email", "1 not in email", "1 in address"])
def test_in_with_a_non_string_into_string_or_object_is_false(text: str) -> None:
    """Only a string can be a substring or an object key; anything else is unknown."""
    assert not matches(text)


def test_nan_is_unordered() -> None:
    """A NaN (Python's json accepts it) is neither <= nor >= anything."""
    assert not matches("x <= 1 or x >= 1 or x == x", {"x": float("nan")})


def test_tuples_in_attributes_behave_as_lists() -> None:
    """Attributes frozen into tuples still support `in`, `==` and len()."""
    assert matches('"vip" in t and 1 in t and t == ["vip", 1] and len(t) == 2', {"t": ("vip", 1)})


def test_equality_across_types_is_definitely_false() -> None:
    """A string is not a number: `==` is false and `!=` is true, unlike ordering."""
    assert matches('visits != "3" and not visits == "3"')


def test_deeply_nested_attributes_compare_without_overflowing() -> None:
    """Equality is iterative, so a 100 000-deep list cannot exhaust the stack."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert matches("a == b", {"a": deep, "b": deep})


# --- functions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, False), (0, True), ("", True), ([], True)])
def test_exists_is_true_for_any_non_null_value(value: object, expected: bool) -> None:
    """exists(x) is false only for a missing or null value."""
    assert matches("exists(x)", {"x": value}) is expected


def test_exists_is_false_for_a_missing_attribute() -> None:
    """A missing attribute does not exist."""
    assert not matches("exists(x)", {})


def test_lower_lowercases_a_string() -> None:
    """lower() makes case-insensitive comparisons possible."""
    assert matches('lower(email) == "ann@example.com"')


def test_len_counts_string_list_and_object_items() -> None:
    """len() works on strings, lists and objects."""
    assert matches("len(country) == 2 and len(tags) == 2 and len(address) == 2")


def test_startswith_and_endswith_test_affixes() -> None:
    """startswith/endswith test a string's prefix and suffix."""
    assert matches('startswith(email, "Ann") and endswith(email, ".com")')
    assert not matches('startswith(email, "ann") or endswith(email, ".fr")')


def test_functions_nest() -> None:
    """A function's argument may be another function's result."""
    assert matches('startswith(lower(email), "ann") and len(lower(country)) == 2')


@pytest.mark.parametrize(
    "text",
    [
        "lower(visits) == null",
        "lower(missing) == null",
        "len(visits) == null",
        "len(opted_in) == null",
        "startswith(visits, 1) == null",
        'endswith(email, ["m"]) == null',
        "days_since(tags) == null",
    ],
)
def test_functions_given_null_or_a_wrong_type_return_null(text: str) -> None:
    """Functions never raise: null or a wrong type in, null out."""
    assert matches(text)


def test_len_of_a_missing_attribute_makes_its_comparison_false() -> None:
    """`len(x) > 2` with x missing is false, and so is its negation."""
    assert not matches("len(x) > 2", {})
    assert not matches("not len(x) > 2", {})


@pytest.mark.parametrize(
    ("seen", "days"),
    [
        ("2026-11-18T12:00:00Z", 10),
        ("2026-11-18T12:00:00.000+00:00", 10),
        ("2026-11-18T14:00:00+02:00", 10),
        ("2026-11-18T12:00:00", 10),
        ("2026-11-27T00:00:00Z", 1.5),
        ("2026-11-29T12:00:00Z", -1),
        (TS_MS - 10 * DAY_MS, 10),
        (TS_MS - 36 * 3_600_000, 1.5),
        (float(TS_MS - DAY_MS), 1),
    ],
)
def test_days_since_counts_days_from_the_attribute_to_the_event_ts(
    seen: object, days: float
) -> None:
    """days_since reads RFC 3339 (no offset = UTC) or epoch ms, in whole or fractional days."""
    assert compile_rule(f"days_since(seen) == {days}").matches({"seen": seen}, TS_MS)


def test_days_since_accepts_a_literal_date() -> None:
    """A literal RFC 3339 string is a fixed instant."""
    assert matches('days_since("2026-11-27T12:00:00Z") == 1')


GARBAGE_TIMESTAMPS = ["yesterday", "", "2026-13-01T00:00:00Z", "2026-11-18T12:00:00+25:00"]


@pytest.mark.parametrize("seen", [*GARBAGE_TIMESTAMPS, True, [1], 10**30, -1e300, float("nan")])
def test_days_since_of_garbage_is_null(seen: object) -> None:
    """Unparseable strings, booleans, lists and out-of-range epochs give null."""
    assert matches("days_since(seen) == null", {"seen": seen})
    assert not matches("days_since(seen) >= 0 or days_since(seen) < 0", {"seen": seen})
