"""The audience rules language: operators, functions, nulls, paths, compile errors."""

from __future__ import annotations

import types
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.rules import JsonValue, Rule, compile_rule
from worker.errors import ConfigError, RuleError

TS_MS = 1_795_867_200_000  # 2026-11-28T12:00:00Z, the event's ts
DAY_MS = 86_400_000
PROFILE: dict[str, JsonValue] = {
    "country": "FR",
    "ltv": 1200.5,
    "tags": ["vip", "beta"],
    "email": "Ann@Example.com",
    "address": {"city": "Lyon", "geo": {"zip": "69001"}},
    "opted_in": True,
    "visits": 3,
}


def matches(text: str, attributes: Mapping[str, object] = PROFILE, ts_ms: int = TS_MS) -> bool:
    return compile_rule(text).matches(attributes, ts_ms)


def rule_error(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        compile_rule(text)
    return caught.value


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


# --- paths -------------------------------------------------------------------------------------


def test_nested_path_reads_nested_objects() -> None:
    """`address.geo.zip` reads attributes["address"]["geo"]["zip"]."""
    assert matches('address.city == "Lyon" and address.geo.zip == "69001"')


@pytest.mark.parametrize("text", ["country.code == null", "tags.first == null", "nope.x == null"])
def test_path_through_a_non_object_or_missing_value_is_null(text: str) -> None:
    """A path through a string, a list or a missing key reads null."""
    assert matches(text)


def test_paths_lists_every_attribute_path_the_rule_reads() -> None:
    """Every path is collected: both comparison sides, function arguments, nested paths."""
    rule = compile_rule(
        'a == b and lower(c.d) in ["x"] and startswith(e, f.g.h) or not exists(i) or j == null'
    )
    assert rule.paths == frozenset({"a", "b", "c.d", "e", "f.g.h", "i", "j"})


def test_paths_excludes_literals_and_function_names() -> None:
    """true, false, null and function names are not attribute paths."""
    assert compile_rule("x == true or x == false or x == null or len(y) > 1").paths == {"x", "y"}


# --- quoted names ------------------------------------------------------------------------------

HYPHENATED: dict[str, JsonValue] = {"first-name": "Ann", "address": {"post-code": "69001"}}


def test_backticks_quote_an_attribute_name_with_a_hyphen() -> None:
    """`first-name` reads the attribute named first-name, not first minus name."""
    assert matches('`first-name` == "Ann"', HYPHENATED)


def test_a_quoted_name_can_be_one_part_of_a_path() -> None:
    """address.`post-code` reads attributes["address"]["post-code"], in functions too."""
    assert matches('startswith(address.`post-code`, "69")', HYPHENATED)


def test_quoted_names_are_collected_as_paths_unquoted() -> None:
    """The paths of a rule name quoted attributes as the events spell them."""
    rule = compile_rule('`first-name` == "x" or exists(address.`post-code`)')
    assert rule.paths == frozenset({"first-name", "address.post-code"})


def test_a_quoted_keyword_is_an_attribute_not_a_literal() -> None:
    """`null` and `true` in backticks are attributes with those names."""
    assert compile_rule("`null` == 1 or `true`").paths == frozenset({"null", "true"})


def test_a_backtick_inside_a_string_literal_is_a_character() -> None:
    """Backticks in a string literal quote nothing: the literal is compared as written."""
    assert matches('note == "a `b` c"', {"note": "a `b` c"})


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("x == 1 and `first-name == 2", "unclosed `", 12),
        ("`` == 1", "a quoted name is empty", 1),
        ("`address.city` == 1", "a quoted name has a '.'", 1),
    ],
)
def test_a_malformed_quoted_name_points_at_its_column(text: str, message: str, column: int) -> None:
    """An unclosed, empty or dotted quoted name is a rule error at its opening backtick."""
    error = rule_error(text)
    assert (message in str(error), error.column) == (True, column)


def test_columns_after_a_quoted_name_stay_exact() -> None:
    """An error after a quoted name points at the column of the original text."""
    assert rule_error("`first-name` == 1 and foo(x)").column == 23


def test_matches_accepts_any_mapping() -> None:
    """The attributes may be any Mapping, nested ones included, e.g. read-only proxies."""
    frozen = types.MappingProxyType({"a": types.MappingProxyType({"b": 1})})
    assert matches("a.b == 1", frozen)


# --- type mismatches ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['ltv > "100"', '"100" < ltv', "country >= 1", "tags < [1]"])
def test_ordering_between_incompatible_types_is_false_both_ways(text: str) -> None:
    """str vs number (or lists) are unordered: the test and its negation are both false."""
    assert not matches(text)
    assert not matches(f"not ({text})")


@pytest.mark.parametrize("text", ['ltv > "1000"', '"1000" <= ltv', 'address.zip >= " 7.5e3 "'])
def test_attribute_ordered_against_a_quoted_number_is_a_doubt(text: str) -> None:
    """An attribute ordered against a number in quotes compiles with a doubt at the literal."""
    (doubt,) = compile_rule(text).doubts
    assert "is ordered against the text" in doubt
    assert "without quotes" in doubt


@pytest.mark.parametrize(
    "text",
    ['country < "GB"', "ltv > 1000", 'ltv == "1000"', 'lower(zip) >= "75000"', 'd > "2026-01-01"'],
)
def test_other_comparisons_have_no_doubt(text: str) -> None:
    """Text orderings, numeric literals, equality and functions of a path are not doubted."""
    assert compile_rule(text).doubts == ()


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


# --- compile errors ----------------------------------------------------------------------------


def test_rule_error_is_a_config_error_carrying_the_rule_and_column() -> None:
    """A bad rule stops start-up like any configuration error and says where it is."""
    error = rule_error('country == "FR" and foo(x)')
    assert isinstance(error, ConfigError)
    assert (error.rule, error.column) == ('country == "FR" and foo(x)', 21)


def test_unknown_function_is_rejected_at_its_name() -> None:
    """An unknown function names itself and the known ones."""
    error = rule_error('country == "FR" and upper(country) == "FR"')
    assert error.column == 21
    assert "unknown function 'upper'" in str(error)
    assert "startswith" in str(error)


@pytest.mark.parametrize(
    ("text", "column"), [('country = "FR"', 9), ("a and b c", 9), ("x == (1", 6), ("x ==", 5)]
)
def test_syntax_error_points_at_the_column(text: str, column: int) -> None:
    """Unparsable text is rejected where Python's parser stops (the end if the rule is cut)."""
    assert rule_error(text).column == column


def test_arithmetic_is_rejected() -> None:
    """Arithmetic is not part of the language."""
    error = rule_error('country == "FR" and ltv * 2 > 1000')
    assert (error.column, "arithmetic" in str(error)) == (21, True)


def test_call_on_an_attribute_is_rejected() -> None:
    """Methods cannot be called, so nothing reaches Python objects."""
    error = rule_error('email.lower() == "a" or __import__("os").system("x")')
    assert (error.column, "calls on attributes" in str(error)) == (1, True)


def test_subscript_is_rejected() -> None:
    """Subscripts are not supported; paths use dots."""
    error = rule_error('visits > 1 and tags[0] == "vip"')
    assert (error.column, "subscripts" in str(error)) == (16, True)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("len(a, b) > 1", 1, "len() takes 1 argument, got 2"),
        ("x and startswith(email) or y", 7, "startswith() takes 2 arguments, got 1"),
        ("exists()", 1, "exists() takes 1 argument, got 0"),
    ],
)
def test_wrong_number_of_arguments_is_rejected(text: str, column: int, message: str) -> None:
    """Each function checks its arity at compile time."""
    error = rule_error(text)
    assert (error.column, message in str(error)) == (column, True)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_rule_is_rejected(text: str) -> None:
    """A blank rule is an error, not a rule that never matches."""
    error = rule_error(text)
    assert (error.column, "empty rule" in str(error)) == (1, True)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("lambda: 1", 1, "lambda"),
        ("x in [y for y in z]", 6, "comprehensions"),
        ("x and (y := 1)", 8, "assignment expressions"),
        ('x == f"{y}"', 6, "f-strings"),
        ("x == (1 if y else 2)", 7, "conditional expressions"),
        ("x in (1, 2)", 6, "tuples"),
        ("x in {1, 2}", 6, "sets"),
        ('x == {"a": 1}', 6, "dicts"),
        ("x == ~1", 6, "arithmetic"),
        ("-x > 1", 1, "arithmetic"),
        ('x == b"a"', 6, "only strings, numbers"),
        ("x == 1j", 6, "only strings, numbers"),
        ("x is None", 6, "'is' is not supported"),
        ("x in [y]", 7, "list elements must be literals"),
        ("(x == 1) == true", 2, "a condition cannot be used as a value"),
        ("(not x) == true", 2, "a condition cannot be used as a value"),
        ('startswith(x, prefix="a")', 15, "keyword arguments"),
        ("len(*x) > 1", 5, "unsupported syntax (Starred)"),
        ('"x".y == 1', 1, "'.' must follow an attribute name"),
        ('"FR"', 1, "expected a condition"),
        ("len(tags)", 1, "expected a condition"),
        ("null", 1, "expected a condition"),
        ("x == 1 and [1]", 12, "expected a condition"),
    ],
)
def test_unsupported_construct_is_rejected_at_its_column(
    text: str, column: int, message: str
) -> None:
    """Every construct outside the allow-list is a RuleError pointing at where it starts."""
    error = rule_error(text)
    assert (error.column, message in str(error)) == (column, True)


def test_column_counts_characters_not_utf8_bytes() -> None:
    """Non-ASCII text before the error does not shift the column."""
    assert rule_error('city == "Zürich" and ville == "Genève" and f(1)').column == 44


def test_column_counts_leading_whitespace_and_earlier_lines() -> None:
    """The column is an offset in the whole rule text, newlines included."""
    assert rule_error("  a > 1 and f(1)").column == 13
    assert rule_error("(a > 1 and\n f(1))").column == 13


@pytest.mark.parametrize(("text", "column"), [("a == 'x\x00'", 8), ("a == '\ud800'", 7)])
def test_characters_the_parser_refuses_are_rejected_at_their_column(text: str, column: int) -> None:
    """NUL and lone surrogates are errors with a position, not crashes."""
    assert rule_error(text).column == column


def test_invalid_escape_sequence_is_rejected() -> None:
    """A warning from the parser is an error, whatever the host's warning filters."""
    assert "invalid escape sequence" in str(rule_error(r'x == "\d"'))


@pytest.mark.parametrize("text", ["not " * 60 + "x", "a." * 60 + "b", "not " * 5000 + "x"])
def test_deeply_nested_rule_is_rejected(text: str) -> None:
    """Nesting is bounded, so evaluation can never exhaust the stack."""
    assert "nested too deeply" in str(rule_error(text))


# --- the Rule value ----------------------------------------------------------------------------


def test_rule_keeps_its_text_and_equals_a_rule_with_the_same_text() -> None:
    """A Rule is a value: its text, its paths, and equality by them."""
    rule = compile_rule("x == 1")
    assert rule.text == "x == 1"
    assert rule == compile_rule("x == 1")
    assert rule != compile_rule("x == 2")


def test_evaluate_reports_unknown_as_none() -> None:
    """evaluate() tells false from unknown; matches() is true only for true."""
    rule = compile_rule("x > 1")
    assert [rule.evaluate(a, TS_MS) for a in ({"x": 2}, {"x": 0}, {})] == [True, False, None]


# --- properties --------------------------------------------------------------------------------

KEYS = ["a", "b", "c", "d"]
PATHS = ["a", "b", "c", "c.d", "d.a.b"]
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=4)
    | st.sampled_from(["2026-11-01T00:00:00Z", "2026-11-01", "vip"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=2), children, max_size=3)
    ),
    max_leaves=8,
)
attribute_maps = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=2), json_values)

scalar_literals = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=4).map(repr),
    st.sampled_from(["true", "false", "null", "True", "False", "None", '"2026-11-01T00:00:00Z"']),
)
literals = scalar_literals | st.lists(scalar_literals, max_size=3).map(
    lambda items: "[" + ", ".join(items) + "]"
)
paths = st.sampled_from(PATHS)
unary_calls = st.tuples(st.sampled_from(["lower", "len", "days_since", "exists"]), paths | literals)
binary_calls = st.tuples(st.sampled_from(["startswith", "endswith"]), paths, paths | literals)
values = (
    paths
    | literals
    | unary_calls.map(lambda c: f"{c[0]}({c[1]})")
    | binary_calls.map(lambda c: f"{c[0]}({c[1]}, {c[2]})")
)
comparisons = st.tuples(values, st.sampled_from(OPERATORS), values).map(" ".join)
leaf_conditions = comparisons | paths | st.sampled_from(["true", "false", "exists(a)"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    both = st.tuples(children, st.sampled_from(["and", "or"]), children)
    return both.map(lambda t: f"({t[0]}) {t[1]} ({t[2]})") | children.map(lambda c: f"not ({c})")


conditions = st.recursive(leaf_conditions, _combine, max_leaves=6)


def _kleene_not(value: bool | None) -> bool | None:
    return None if value is None else not value


@settings(max_examples=400, deadline=None)
@given(text=conditions, attributes=attribute_maps, ts_ms=st.integers())
def test_property_matches_never_raises_and_returns_a_bool(
    text: str, attributes: dict[str, JsonValue], ts_ms: int
) -> None:
    """Any rule from the grammar, on any JSON-like attributes, evaluates to a bool."""
    assert type(compile_rule(text).matches(attributes, ts_ms)) is bool


@settings(max_examples=300, deadline=None)
@given(text=conditions, attributes=attribute_maps)
def test_property_not_is_the_complement_exactly_when_the_rule_is_known(
    text: str, attributes: dict[str, JsonValue]
) -> None:
    """`not X` is Kleene's negation: the complement of X unless X is unknown (both false)."""
    rule, negated = compile_rule(text), compile_rule(f"not ({text})")
    known = rule.evaluate(attributes, TS_MS)
    assert negated.evaluate(attributes, TS_MS) == _kleene_not(known)
    if known is None:
        assert not rule.matches(attributes, TS_MS)
        assert not negated.matches(attributes, TS_MS)
    else:
        assert negated.matches(attributes, TS_MS) is not rule.matches(attributes, TS_MS)


non_null_values = json_values.filter(lambda v: v is not None)
non_null_literals = literals.filter(lambda lit: lit not in ("null", "None"))
null_free_leaves = st.tuples(paths, st.sampled_from(["==", "!="]), non_null_literals).map(
    " ".join
) | paths.map(lambda p: f"exists({p})")


@settings(max_examples=300, deadline=None)
@given(
    text=st.recursive(null_free_leaves, _combine, max_leaves=6),
    a=non_null_values,
    b=non_null_values,
    c=non_null_values,
    d=non_null_values,
)
def test_property_rule_without_nulls_is_known_so_not_is_its_complement(
    text: str, a: JsonValue, b: JsonValue, c: JsonValue, d: JsonValue
) -> None:
    """With ==/!= against non-null literals, exists, and no null attribute, X is never unknown."""
    attributes = {"a": a, "b": b, "c": {"d": c}, "d": {"a": {"b": d}}}
    rule, negated = compile_rule(text), compile_rule(f"not ({text})")
    assert rule.evaluate(attributes, TS_MS) is not None
    assert negated.matches(attributes, TS_MS) is not rule.matches(attributes, TS_MS)


def _compile_or_error(text: str) -> Rule | RuleError:
    try:
        return compile_rule(text)
    except RuleError as error:
        return error


TOKENS = [
    *PATHS,
    *OPERATORS,
    *["and", "or", "not", "(", ")", "[", "]", ",", ".", "'x'", "1", "-", "+", "*", ":="],
    *["len", "lower", "exists", "days_since", "startswith", "null", "true", "lambda", "if", "é"],
]


@settings(max_examples=500, deadline=None)
@given(text=st.text() | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join))
def test_property_compile_rule_returns_a_rule_or_raises_rule_error(text: str) -> None:
    """Arbitrary text never escapes as anything but RuleError, with a column inside the text."""
    outcome = _compile_or_error(text)
    assert isinstance(outcome, Rule) or 1 <= outcome.column <= len(text) + 1
