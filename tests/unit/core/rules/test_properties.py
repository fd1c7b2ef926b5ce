"""Properties of any rule from the grammar: it evaluates, `not` is Kleene's, errors: RuleError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.core.rules.strategies import (
    TOKENS,
    attribute_maps,
    combine,
    conditions,
    non_null_values,
    null_free_leaves,
)
from tests.unit.core.rules.support import TS_MS
from worker.core.ids import JsonValue
from worker.core.rules import Rule, compile_rule
from worker.errors import RuleError


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


@settings(max_examples=300, deadline=None)
@given(
    text=st.recursive(null_free_leaves, combine, max_leaves=6),
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


@settings(max_examples=500, deadline=None)
@given(text=st.text() | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join))
def test_property_compile_rule_returns_a_rule_or_raises_rule_error(text: str) -> None:
    """Arbitrary text never escapes as anything but RuleError, with a column inside the text."""
    outcome = _compile_or_error(text)
    assert isinstance(outcome, Rule) or 1 <= outcome.column <= len(text) + 1
