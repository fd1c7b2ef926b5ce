"""Parsing a rule's text: quoted names, syntax errors and the columns errors point at."""

from __future__ import annotations

import pytest

from tests.unit.core.rules.support import matches, rule_error
from worker.core.ids import JsonValue
from worker.core.rules import compile_rule

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


# --- syntax and columns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column"), [('country = "FR"', 9), ("a and b c", 9), ("x == (1", 6), ("x ==", 5)]
)
def test_syntax_error_points_at_the_column(text: str, column: int) -> None:
    """Unparsable text is rejected where Python's parser stops (the end if the rule is cut)."""
    assert rule_error(text).column == column


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_rule_is_rejected(text: str) -> None:
    """A blank rule is an error, not a rule that never matches."""
    error = rule_error(text)
    assert (error.column, "empty rule" in str(error)) == (1, True)


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
