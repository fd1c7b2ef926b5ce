"""Hypothesis strategies for rules and attributes: texts from the grammar, JSON-like values."""

from __future__ import annotations

from hypothesis import strategies as st

from worker.core.ids import JsonValue

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


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    both = st.tuples(children, st.sampled_from(["and", "or"]), children)
    return both.map(lambda t: f"({t[0]}) {t[1]} ({t[2]})") | children.map(lambda c: f"not ({c})")


conditions = st.recursive(leaf_conditions, combine, max_leaves=6)

non_null_values = json_values.filter(lambda v: v is not None)

non_null_literals = literals.filter(lambda lit: lit not in ("null", "None"))

null_free_leaves = st.tuples(paths, st.sampled_from(["==", "!="]), non_null_literals).map(
    " ".join
) | paths.map(lambda p: f"exists({p})")

TOKENS = [
    *PATHS,
    *OPERATORS,
    *["and", "or", "not", "(", ")", "[", "]", ",", ".", "'x'", "1", "-", "+", "*", ":="],
    *["len", "lower", "exists", "days_since", "startswith", "null", "true", "lambda", "if", "é"],
]
