"""What a compiled audience rule is made of: comparisons specialised on the literal's type.

Pure: no I/O. Kleene's three values are two bool predicates, `holds` (true) and `fails` (false);
neither means unknown. Checks of one value agree exactly with the generic tests of `values`,
which stay the fallback for every form not specialised here; junctions combine conditions without
them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Final, TypeAlias

from worker.core.ids import JsonValue
from worker.core.rules import values as rv

Attributes: TypeAlias = Mapping[str, object]
ValueFn: TypeAlias = Callable[[Attributes, int], object]
Predicate: TypeAlias = Callable[[Attributes, int], bool]
ValueTest: TypeAlias = Callable[[object], bool]
# A single-name path is kept as its key, read with one `get` and no closure call.
Operand: TypeAlias = str | ValueFn
_Order: TypeAlias = Callable[[float | str, float | str], bool]


@dataclass(frozen=True, slots=True)
class Check:
    """A test of one value: true when `holds`, false when `fails`, unknown when neither."""

    holds: ValueTest
    fails: ValueTest

    def negated(self) -> Check:
        """Return Kleene's negation: true and false swap, unknown stays unknown."""
        return Check(holds=self.fails, fails=self.holds)


# exists(x) and x != null; never unknown.
PRESENT = Check(holds=lambda v: v is not None, fails=lambda v: v is None)
# A bare value used as a condition: only a boolean is known.
BOOLEAN = Check(holds=lambda v: v is True, fails=lambda v: v is False)
# The literal on the left is the mirrored test with it on the right: 1 < x is x > 1.
_MIRRORED: dict[rv.Test, rv.Test] = {
    rv.eq: rv.eq,
    rv.ne: rv.ne,
    rv.lt: rv.gt,
    rv.le: rv.ge,
    rv.gt: rv.lt,
    rv.ge: rv.le,
}
# Each ordering with its complement; both are false for NaN, which is unordered (unknown).
_ORDERS: dict[rv.Test, tuple[_Order, _Order]] = {
    rv.lt: (operator.lt, operator.ge),
    rv.le: (operator.le, operator.gt),
    rv.gt: (operator.gt, operator.le),
    rv.ge: (operator.ge, operator.lt),
}
# Built once: an `X | Y` written inside isinstance() is rebuilt on every call.
_CONTAINERS: Final = (list, tuple, str, dict)
_NEGATED: dict[rv.Test, rv.Test] = {rv.ne: rv.eq, rv.is_not_in: rv.is_in}
_AFFIXES: dict[str, Callable[[str, str], bool]] = {
    "startswith": str.startswith,
    "endswith": str.endswith,
}


def against(test: rv.Test, literal: JsonValue) -> Check:
    """Return `value OP literal` as a check of the value (`OP` is a test of `values`)."""
    base = _NEGATED.get(test, test)
    check: Check | None = None
    if base is rv.eq:
        check = _equal_to(literal)
    elif base is rv.is_in:
        check = _member_of(literal)
    elif base in _ORDERS:
        check = _ordered(*_ORDERS[base], literal)
    if check is None:
        return _generic(lambda v: test(v, literal))
    return check if base is test else check.negated()


def against_left(test: rv.Test, literal: JsonValue) -> Check:
    """Return `literal OP value` as a check of the value."""
    mirrored = _MIRRORED.get(test)
    if mirrored is not None:
        return against(mirrored, literal)
    if not isinstance(literal, str):  # `literal in value`, or `not in`, from here on
        return _generic(lambda v: test(literal, v))
    check = _containing(literal)
    return check if test is rv.is_in else check.negated()


def affix(function: str, literal: JsonValue) -> Check | None:
    """Return `startswith(value, literal)` (or `endswith`) as a check, when the literal is a str."""
    has = _AFFIXES.get(function)
    if has is None or not isinstance(literal, str):
        return None
    return Check(
        holds=lambda v: isinstance(v, str) and has(v, literal),
        fails=lambda v: isinstance(v, str) and not has(v, literal),
    )


def _generic(test: Callable[[object], bool | None]) -> Check:
    return Check(holds=lambda v: test(v) is True, fails=lambda v: test(v) is False)


def _equal_to(literal: JsonValue) -> Check | None:
    # Across types equality is a definite False; only a null value is unknown.
    if isinstance(literal, bool):
        return Check(
            holds=lambda v: v is literal, fails=lambda v: v is not None and v is not literal
        )
    if isinstance(literal, str):
        return Check(holds=lambda v: v == literal, fails=lambda v: v is not None and v != literal)
    if rv.is_number(literal):
        # Python has true == 1, rules do not: a bool equal to the literal is still unequal.
        return Check(
            holds=lambda v: v == literal and type(v) is not bool,
            fails=lambda v: v is not None and (v != literal or type(v) is bool),
        )
    return None


def _ordered(order: _Order, complement: _Order, literal: JsonValue) -> Check | None:
    if isinstance(literal, str):
        return Check(
            holds=lambda v: isinstance(v, str) and order(v, literal),
            fails=lambda v: isinstance(v, str) and complement(v, literal),
        )
    if rv.is_number(literal):
        return Check(holds=_number_test(order, literal), fails=_number_test(complement, literal))
    return None


def _number_test(order: _Order, literal: float) -> ValueTest:
    def test(v: object) -> bool:
        if type(v) is float or type(v) is int:  # JSON's own number types: the cheap common case
            return order(v, literal)
        return rv.is_number(v) and order(v, literal)

    return test


def _is_key(v: object) -> bool:
    """Tell whether `v` is a string or a number, the literals hashed into a membership set."""
    return isinstance(v, str) or rv.is_number(v)


def _member_of(literal: JsonValue) -> Check | None:
    # Booleans would collide with 1 and 0 in a set, and nulls or lists need JSON equality.
    if not isinstance(literal, list) or not all(_is_key(item) for item in literal):
        return None
    options = frozenset(literal)

    def holds(v: object) -> bool:
        if type(v) is str:
            return v in options
        return _is_key(v) and v in options

    return Check(holds=holds, fails=lambda v: v is not None and not holds(v))


def _containing(literal: str) -> Check:
    # A list element, a substring or an object key; any other container is unknown.
    def holds(v: object) -> bool:
        if type(v) is list:
            return literal in v
        return isinstance(v, _CONTAINERS) and literal in v

    def fails(v: object) -> bool:
        return isinstance(v, _CONTAINERS) and literal not in v

    return Check(holds=holds, fails=fails)


# --- conditions on the attributes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule or a part of one: true when `holds`, false when `fails`, unknown when neither."""

    holds: Predicate
    fails: Predicate
    # Set on `key OP literal` leaves, so that a junction can read the key itself, saving a call.
    keyed: tuple[str, Check] | None = None

    def negated(self) -> Condition:
        """Return Kleene's negation: true and false swap, unknown stays unknown."""
        keyed = None if self.keyed is None else (self.keyed[0], self.keyed[1].negated())
        return Condition(holds=self.fails, fails=self.holds, keyed=keyed)


def bind(operand: Operand, check: Check) -> Condition:
    """Return the condition that `check` holds of the operand's value."""
    holds, fails = check.holds, check.fails
    if isinstance(operand, str):
        key = operand
        return Condition(
            holds=lambda attributes, _ts: holds(attributes.get(key)),
            fails=lambda attributes, _ts: fails(attributes.get(key)),
            keyed=(key, check),
        )
    fn = operand
    return Condition(
        holds=lambda attributes, ts_ms: holds(fn(attributes, ts_ms)),
        fails=lambda attributes, ts_ms: fails(fn(attributes, ts_ms)),
    )


def pair(test: rv.Test, left: ValueFn, right: ValueFn) -> Condition:
    """Return the generic `left OP right`, for operands that are neither of them a literal."""

    def truth(attributes: Attributes, ts_ms: int) -> bool | None:
        return test(left(attributes, ts_ms), right(attributes, ts_ms))

    return Condition(
        holds=lambda attributes, ts_ms: truth(attributes, ts_ms) is True,
        fails=lambda attributes, ts_ms: truth(attributes, ts_ms) is False,
    )


def junction(parts: tuple[Condition, ...], *, decisive: bool) -> Condition:
    """`and` (decisive False) or `or` (decisive True), in Kleene's three-valued logic."""
    merged: list[Condition] = []
    for keyed, group in groupby(parts, key=lambda part: part.keyed is not None):
        run = tuple(group)
        merged.extend(_inline_keys(run, decisive=decisive) if keyed else run)
    holds = tuple(part.holds for part in merged)
    fails = tuple(part.fails for part in merged)
    if decisive:  # or: true when any part is, false when every part is
        return Condition(holds=_any(holds), fails=_every(fails))
    return Condition(holds=_every(holds), fails=_any(fails))


def _inline_keys(run: tuple[Condition, ...], *, decisive: bool) -> list[Condition]:
    """Merge keyed parts, four at a time, into conditions that read the keys themselves."""
    merged: list[Condition] = []
    for start in range(0, len(run), 4):
        chunk = [keyed for part in run[start : start + 4] if (keyed := part.keyed) is not None]
        if len(chunk) == 1:
            merged.append(run[start])
            continue
        holds = tuple((key, check.holds) for key, check in chunk)
        fails = tuple((key, check.fails) for key, check in chunk)
        if decisive:
            merged.append(Condition(holds=_keyed_any(holds), fails=_keyed_every(fails)))
        else:
            merged.append(Condition(holds=_keyed_every(holds), fails=_keyed_any(fails)))
    return merged


def _every(preds: tuple[Predicate, ...]) -> Predicate:
    # Short chains are inlined, rules having mostly 2-5 parts; longer ones loop, never recurse.
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda attributes, ts_ms: p(attributes, ts_ms) and q(attributes, ts_ms)
    if len(preds) == 3:
        p, q, r = preds
        return lambda a, ts_ms: p(a, ts_ms) and q(a, ts_ms) and r(a, ts_ms)
    return _loop(preds, want=False)


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        p, q = preds
        return lambda attributes, ts_ms: p(attributes, ts_ms) or q(attributes, ts_ms)
    if len(preds) == 3:
        p, q, r = preds
        return lambda a, ts_ms: p(a, ts_ms) or q(a, ts_ms) or r(a, ts_ms)
    return _loop(preds, want=True)


def _loop(preds: tuple[Predicate, ...], *, want: bool) -> Predicate:
    def test(attributes: Attributes, ts_ms: int) -> bool:
        for pred in preds:
            if pred(attributes, ts_ms) is want:
                return want
        return not want

    return test


def _keyed_every(tests: tuple[tuple[str, ValueTest], ...]) -> Predicate:
    (k1, t1), (k2, t2) = tests[0], tests[1]
    if len(tests) == 2:
        return lambda a, _ts: t1(a.get(k1)) and t2(a.get(k2))
    k3, t3 = tests[2]
    if len(tests) == 3:
        return lambda a, _ts: t1(a.get(k1)) and t2(a.get(k2)) and t3(a.get(k3))
    k4, t4 = tests[3]
    return lambda a, _ts: t1(a.get(k1)) and t2(a.get(k2)) and t3(a.get(k3)) and t4(a.get(k4))


def _keyed_any(tests: tuple[tuple[str, ValueTest], ...]) -> Predicate:
    (k1, t1), (k2, t2) = tests[0], tests[1]
    if len(tests) == 2:
        return lambda a, _ts: t1(a.get(k1)) or t2(a.get(k2))
    k3, t3 = tests[2]
    if len(tests) == 3:
        return lambda a, _ts: t1(a.get(k1)) or t2(a.get(k2)) or t3(a.get(k3))
    k4, t4 = tests[3]
    return lambda a, _ts: t1(a.get(k1)) or t2(a.get(k2)) or t3(a.get(k3)) or t4(a.get(k4))
