"""Compiling a rule: the paths it reads, its doubts, the forms the language refuses, the Rule."""

from __future__ import annotations

import types

import pytest

from tests.unit.core.rules.support import TS_MS, matches, rule_error
from worker.core.rules import compile_rule
from worker.errors import ConfigError

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


def test_matches_accepts_any_mapping() -> None:
    """The attributes may be any Mapping, nested ones included, e.g. read-only proxies."""
    frozen = types.MappingProxyType({"a": types.MappingProxyType({"b": 1})})
    assert matches("a.b == 1", frozen)


# --- doubts ------------------------------------------------------------------------------------


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


# --- refused forms -----------------------------------------------------------------------------


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
