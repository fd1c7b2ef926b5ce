"""The specialised rule evaluator gives exactly the results of the generic one it replaced.

The oracle is `reference`, a frozen copy of the evaluator before specialisation; every
comparison here is three-valued (evaluate), so false and unknown are told apart.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Protocol

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.unit.core.rules import reference
from tests.unit.core.rules.strategies import (
    PATHS,
    TOKENS,
    attribute_maps,
    conditions,
    json_values,
    literals,
)
from tests.unit.core.rules.support import TS_MS
from worker.core.rules import compile_rule
from worker.errors import RuleError


class Count(int):
    """An int subclass: a number to the rules, but not one of JSON's own types."""


class Text(str):
    """A str subclass: a string to the rules, but not JSON's own str type."""


# Values chosen to collide across types: true/1/1.0, false/0, "1"/1, NaN, huge ints, containers.
EDGE_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    0.0,
    1.0,
    2.5,
    10**20,
    1e20,
    math.nan,
    math.inf,
    -math.inf,
    Count(1),
    "",
    "1",
    "vip",
    "a",
    "avip",
    "vipa",
    Text("vip"),
    "2026-11-01T00:00:00Z",
    [],
    ["vip"],
    ["a", "vip"],
    [1],
    [1.0, "a"],
    [True],
    [None],
    ("vip", 1),
    {},
    {"vip": 1},
    {"a": {"b": 1}},
    types.MappingProxyType({"vip": 1}),
]
EDGE_LITERALS = [
    "0",
    "1",
    "1.0",
    "-1",
    "2.5",
    "100000000000000000000",
    "1e999",
    "true",
    "false",
    "null",
    '""',
    '"1"',
    '"vip"',
    '"a"',
    '"2026-11-01T00:00:00Z"',
    "[]",
    '["vip", "a"]',
    "[1, 2.5]",
    '[1, "a"]',
    "[true]",
    "[null]",
    "[[1]]",
]
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]

# One rule per specialised form, each reading `x`; the targeted test feeds it every edge value.
SPECIALISED_FORMS = {
    "eq_string": 'x == "vip"',
    "ne_string": 'x != "vip"',
    "eq_bool": "x == true",
    "ne_bool": "x != false",
    "eq_int": "x == 1",
    "eq_zero": "x == 0",
    "ne_float": "x != 1.0",
    "lt_number": "x < 1",
    "le_number": "x <= 1.0",
    "gt_number": "x > -1",
    "ge_number": "x >= 1e20",
    "lt_string": 'x < "vip"',
    "ge_string": 'x >= "a"',
    "literal_left_order": "1 < x",
    "literal_left_eq": '"vip" == x',
    "in_strings": 'x in ["vip", "a"]',
    "not_in_strings": 'x not in ["vip", "a"]',
    "in_numbers": "x in [1, 2.5]",
    "in_mixed_keys": 'x in [1, "a"]',
    "in_empty": "x in []",
    "string_in": '"vip" in x',
    "string_not_in": '"vip" not in x',
    "eq_null": "x == null",
    "ne_null": "x != null",
    "exists": "exists(x)",
    "not_exists": "not exists(x)",
    "bare_boolean": "x",
    "startswith": 'startswith(x, "vi")',
    "endswith": 'endswith(x, "ip")',
    "len_order": "len(x) >= 1",
    "lower_eq": 'lower(x) == "vip"',
    "days_since_order": "days_since(x) < 30",
    "dotted_path": 'x.y == "vip"',
    "keyed_junction_and": 'x == "vip" and y >= 1 and "a" in z and not exists(w)',
    "keyed_junction_or": 'x == "vip" or y >= 1 or "a" in z or not exists(w) or x < 1',
    "mixed_junction": 'x.y == "vip" and y > 0 and z != "a" or len(x) > 1 and y < 2',
}


def evaluations(
    text: str, attributes: Mapping[str, object], ts_ms: int = TS_MS
) -> tuple[tuple[bool | None, bool], tuple[bool | None, bool]]:
    """Return (evaluate, matches) from the new evaluator and from the reference."""
    new, old = compile_rule(text), reference.compile_rule(text)
    return (
        (new.evaluate(attributes, ts_ms), new.matches(attributes, ts_ms)),
        (old.evaluate(attributes, ts_ms), old.matches(attributes, ts_ms)),
    )


class Compiled(Protocol):
    """What both compilers return: here only the paths are compared."""

    @property
    def paths(self) -> frozenset[str]: ...


def outcome(compile_fn: Callable[[str], Compiled], text: str) -> tuple[str, object]:
    """Return what compiling gives: the paths, or the error's message and column."""
    try:
        return ("rule", compile_fn(text).paths)
    except RuleError as error:
        return ("error", (str(error), error.column))


# --- targeted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", list(SPECIALISED_FORMS.values()), ids=list(SPECIALISED_FORMS))
def test_specialised_form_agrees_with_reference_on_edge_values(text: str) -> None:
    """Each specialised form gives the reference's result for every edge value, in every slot."""
    for value in EDGE_VALUES:
        for attributes in ({"x": value, "y": value, "z": value}, {"x": {"y": value}}, {}):
            new, old = evaluations(text, attributes)
            assert new == old, (text, attributes)


@pytest.mark.parametrize("operator", OPERATORS)
def test_path_against_every_edge_literal_agrees_with_reference(operator: str) -> None:
    """`x OP literal` and `literal OP x` match the reference on all edge literals and values."""
    for literal in EDGE_LITERALS:
        for text in (f"x {operator} {literal}", f"{literal} {operator} x"):
            for value in EDGE_VALUES:
                new, old = evaluations(text, {"x": value})
                assert new == old, (text, value)


@pytest.mark.parametrize("size", [2, 3, 4, 5, 8, 9])
@pytest.mark.parametrize("joiner", ["and", "or"])
def test_flat_junction_of_every_size_agrees_with_reference(size: int, joiner: str) -> None:
    """Flat and/or chains (inlined in runs of four) agree with the reference part by part."""
    parts = ['x == "vip"', "x.y > 1", "y >= 1", "not exists(z)", 'y in ["a", "b"]', "w"]
    text = f" {joiner} ".join(parts[i % len(parts)] for i in range(size))
    for x in [{"y": 2}, "vip", None]:
        for y in [0, 1, "a", None]:
            for w in [True, False, None]:
                attributes = {"x": x, "y": y, "w": w}
                new, old = evaluations(text, attributes)
                assert new == old, (text, attributes)


def test_very_long_junction_evaluates_like_the_reference() -> None:
    """A 3 000-part `or` neither recurses too deeply nor differs from the reference."""
    text = " or ".join(f"x == {n}" for n in range(3000))
    for value in (2999, 3000, None, "1"):
        new, old = evaluations(text, {"x": value})
        assert new == old, value


def test_attributes_that_are_read_only_mappings_agree_with_reference() -> None:
    """A Mapping that is not a dict reads the same, at the top and inside a path."""
    attributes = types.MappingProxyType(
        {"x": "vip", "y": types.MappingProxyType({"y": "vip"}), "z": ["a"]}
    )
    for text in SPECIALISED_FORMS.values():
        new, old = evaluations(text.replace("x.y", "y.y"), attributes)
        assert new == old, text


# --- properties ----------------------------------------------------------------------------------

edge_values = st.sampled_from(EDGE_VALUES)
values_with_edges = json_values | edge_values
attributes_with_edges = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=2),
    values_with_edges | st.dictionaries(st.sampled_from(["a", "d"]), values_with_edges),
)
edge_literals = st.sampled_from(EDGE_LITERALS) | literals
targeted_leaves = st.one_of(
    st.tuples(st.sampled_from(PATHS), st.sampled_from(OPERATORS), edge_literals).map(" ".join),
    st.tuples(edge_literals, st.sampled_from(OPERATORS), st.sampled_from(PATHS)).map(" ".join),
    st.sampled_from(PATHS).map(lambda p: f"exists({p})"),
    st.tuples(
        st.sampled_from(["startswith", "endswith"]), st.sampled_from(PATHS), edge_literals
    ).map(lambda c: f"{c[0]}({c[1]}, {c[2]})"),
)


def _flat(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    parts = st.lists(children.map(lambda c: f"({c})"), min_size=2, max_size=7)
    junction = st.tuples(st.sampled_from([" and ", " or "]), parts).map(lambda t: t[0].join(t[1]))
    return junction | children.map(lambda c: f"not ({c})")


targeted_rules = st.recursive(targeted_leaves, _flat, max_leaves=12)


@settings(max_examples=3000, deadline=None)
@given(text=conditions, attributes=attribute_maps, ts_ms=st.integers())
def test_property_grammar_rules_evaluate_like_the_reference(
    text: str, attributes: dict[str, object], ts_ms: int
) -> None:
    """Any rule of the grammar, on any JSON-like attributes, gives the same result."""
    new, old = evaluations(text, attributes, ts_ms)
    assert new == old


@settings(max_examples=2000, deadline=None)
@given(text=targeted_rules, attributes=attributes_with_edges)
def test_property_specialised_rules_evaluate_like_the_reference(
    text: str, attributes: dict[str, object]
) -> None:
    """Flat junctions of specialised leaves over colliding edge values give the same result."""
    new, old = evaluations(text, attributes)
    assert new == old


@settings(max_examples=1000, deadline=None)
@given(
    text=conditions
    | targeted_rules
    | st.text()
    | st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join)
)
def test_property_compiling_gives_the_same_paths_or_the_same_error(text: str) -> None:
    """The compiler reads the same paths and rejects the same text at the same column."""
    assume("`" not in text)  # quoted names came after the reference: test_parser covers them
    assert outcome(compile_rule, text) == outcome(reference.compile_rule, text)
