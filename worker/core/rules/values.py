"""What JSON-like values mean to audience rules: equality, ordering, membership, functions.

Pure: no I/O. Every test returns True, False or None (unknown: a null or a type mismatch), and
every function returns null for null or a wrong type; nothing here raises on JSON-like input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeAlias, TypeGuard

Test: TypeAlias = Callable[[object, object], bool | None]

_MS_PER_DAY = 86_400_000
# datetime's own range, so epoch milliseconds and RFC 3339 strings accept the same instants.
_MS_MIN = -62_135_596_800_000
_MS_MAX = 253_402_300_799_999
# Type tuples built once: `isinstance(v, int | float)` builds the union on every call (5x slower).
_NUMBERS: Final = (int, float)
_SCALARS: Final = (bool, int, float, str)
_SEQUENCES: Final = (list, tuple)
_NESTED: Final = (list, tuple, dict)
_TEXT_OR_OBJECT: Final = (str, dict)
_SIZED: Final = (str, list, tuple, dict)


def is_number(v: object) -> TypeGuard[int | float]:
    """Tell whether `v` is an int or float; booleans are not numbers (true >= 1 is false)."""
    return isinstance(v, _NUMBERS) and not isinstance(v, bool)


def is_scalar(v: object) -> TypeGuard[bool | int | float | str | None]:
    """Tell whether `v` is a JSON scalar."""
    return v is None or isinstance(v, _SCALARS)


def _scalar_equal(x: object, y: object) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x == y
    if is_number(x) and is_number(y):
        return x == y
    if isinstance(x, str) and isinstance(y, str):
        return x == y
    return x is None and y is None


def _equal(x: object, y: object) -> bool:
    """JSON equality: 1 == 1.0, true != 1; iterative so deep nesting cannot overflow the stack."""
    if not isinstance(x, _NESTED):  # the common case, without building a stack
        return _scalar_equal(x, y)
    pending = [(x, y)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            if len(a) != len(b):
                return False
            pending.extend(zip(a, b, strict=True))
        elif isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                return False
            pending.extend((a[k], b[k]) for k in a)
        elif not _scalar_equal(a, b):
            return False
    return True


def _sign(x: object, y: object) -> int | None:
    """Order two numbers or two strings; anything else is unordered (None)."""
    if is_number(x) and is_number(y):
        if x != x or y != y:  # NaN is unordered
            return None
        return (x > y) - (x < y)
    if isinstance(x, str) and isinstance(y, str):
        return (x > y) - (x < y)
    return None


def _contains(container: object, item: object) -> bool | None:
    if item is None or container is None:
        return None
    if isinstance(container, _SEQUENCES):
        if isinstance(item, str):  # a str equals only a str, so Python's `in` is already exact
            return item in container
        return any(_equal(item, element) for element in container)
    if isinstance(container, _TEXT_OR_OBJECT):  # substring, or key of an object
        return item in container if isinstance(item, str) else None
    return None


def eq(x: object, y: object) -> bool | None:
    """`==`: unknown with a null side (`== null` is compiled apart, as a null test)."""
    return None if x is None or y is None else _equal(x, y)


def ne(x: object, y: object) -> bool | None:
    """`!=`: unknown with a null side, like `==`."""
    return None if x is None or y is None else not _equal(x, y)


def _ordering(sign_test: Callable[[int], bool]) -> Test:
    def test(x: object, y: object) -> bool | None:
        sign = _sign(x, y)
        return None if sign is None else sign_test(sign)

    return test


# Ordering holds between two numbers or two strings; any other pair is unknown.
lt = _ordering(lambda sign: sign < 0)
le = _ordering(lambda sign: sign <= 0)
gt = _ordering(lambda sign: sign > 0)
ge = _ordering(lambda sign: sign >= 0)


def is_in(x: object, y: object) -> bool | None:
    """`x in y`: element of a list, substring of a string, key of an object; else unknown."""
    return _contains(y, x)


def is_not_in(x: object, y: object) -> bool | None:
    """`x not in y`: unknown whenever `x in y` is (a null or a non-container), never true."""
    found = _contains(y, x)
    return None if found is None else not found


def _epoch_ms(v: object) -> float | None:
    if is_number(v):
        return v if _MS_MIN <= v <= _MS_MAX else None  # also rejects NaN and infinities
    if not isinstance(v, str):
        return None
    try:
        instant = datetime.fromisoformat(v)
    except ValueError:
        return None
    if instant.tzinfo is None:  # no offset: read as UTC rather than the host's zone
        instant = instant.replace(tzinfo=UTC)
    return instant.timestamp() * 1000


def _days_since(v: object, ts_ms: int) -> float | None:
    then_ms = _epoch_ms(v)
    if then_ms is None or not _MS_MIN <= ts_ms <= _MS_MAX:
        return None
    return (ts_ms - then_ms) / _MS_PER_DAY


def _lower(v: object, _ts_ms: int) -> str | None:
    return v.lower() if isinstance(v, str) else None


def _len(v: object, _ts_ms: int) -> int | None:
    return len(v) if isinstance(v, _SIZED) else None


def _startswith(s: object, prefix: object) -> bool | None:
    return s.startswith(prefix) if isinstance(s, str) and isinstance(prefix, str) else None


def _endswith(s: object, suffix: object) -> bool | None:
    return s.endswith(suffix) if isinstance(s, str) and isinstance(suffix, str) else None


# Unary functions also receive the event's ts in epoch ms; only days_since needs it.
UNARY_FUNCTIONS: dict[str, Callable[[object, int], object]] = {
    "exists": lambda v, _ts_ms: v is not None,
    "lower": _lower,
    "len": _len,
    "days_since": _days_since,
}
BINARY_FUNCTIONS: dict[str, Callable[[object, object], object]] = {
    "startswith": _startswith,
    "endswith": _endswith,
}
PREDICATES = frozenset({"exists", "startswith", "endswith"})  # return booleans: usable as tests
