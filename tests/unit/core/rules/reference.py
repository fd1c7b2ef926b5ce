"""Test oracle: a frozen copy of the audience-rule evaluator before its specialisation.

worker/core/rule_values.py and rules.py (now rules/values.py and rules/compiler.py) as of commit
5ef11d8, merged into one module; the equivalence tests compare the shipped evaluator against it.
Test code: never imported by the worker.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeAlias, TypeGuard

from worker.errors import RuleError

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
Test: TypeAlias = Callable[[object, object], bool | None]

_MS_PER_DAY = 86_400_000
# datetime's own range, so epoch milliseconds and RFC 3339 strings accept the same instants.
_MS_MIN = -62_135_596_800_000
_MS_MAX = 253_402_300_799_999


def is_number(v: object) -> TypeGuard[int | float]:
    """Tell whether `v` is an int or float; booleans are not numbers (true >= 1 is false)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_scalar(v: object) -> TypeGuard[bool | int | float | str | None]:
    """Tell whether `v` is a JSON scalar."""
    return v is None or isinstance(v, bool | int | float | str)


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
    if not isinstance(x, list | tuple | dict):  # the common case, without building a stack
        return _scalar_equal(x, y)
    pending = [(x, y)]
    while pending:
        a, b = pending.pop()
        if isinstance(a, list | tuple) and isinstance(b, list | tuple):
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
    if isinstance(container, list | tuple):
        if isinstance(item, str):  # a str equals only a str, so Python's `in` is already exact
            return item in container
        return any(_equal(item, element) for element in container)
    if isinstance(container, str | dict):  # substring, or key of an object
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
    return len(v) if isinstance(v, str | list | tuple | dict) else None


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

Attributes: TypeAlias = Mapping[str, object]
ValueFn: TypeAlias = Callable[[Attributes, int], object]
TruthFn: TypeAlias = Callable[[Attributes, int], bool | None]

# Deeper rules are surely mistakes, and the bound keeps evaluation far from the recursion limit.
_MAX_DEPTH = 50
_NAMED_LITERALS: dict[str, JsonValue] = {"true": True, "false": False, "null": None}
_NEWLINE = re.compile(r"\r\n|\r|\n")
_UNPARSABLE = re.compile("[\x00\ud800-\udfff]")  # NUL and lone surrogates
_TESTS: dict[type[ast.cmpop], Test] = {
    ast.Eq: eq,
    ast.NotEq: ne,
    ast.Lt: lt,
    ast.LtE: le,
    ast.Gt: gt,
    ast.GtE: ge,
    ast.In: is_in,
    ast.NotIn: is_not_in,
}
_KNOWN = ", ".join(sorted([*UNARY_FUNCTIONS, *BINARY_FUNCTIONS]))


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled audience rule; `paths` are every attribute path it reads."""

    text: str
    paths: frozenset[str]
    _truth: TruthFn = field(repr=False, compare=False)

    def evaluate(self, attributes: Attributes, ts_ms: int) -> bool | None:
        """Return True, False, or None when a null or a type mismatch leaves it unknown."""
        return self._truth(attributes, ts_ms)

    def matches(self, attributes: Attributes, ts_ms: int) -> bool:
        """Tell whether the profile is in the audience; never raises on JSON-like attributes."""
        return self._truth(attributes, ts_ms) is True


def compile_rule(text: str) -> Rule:
    """Parse and compile `text`, or raise RuleError pointing at the offending column."""
    source = _Source(text)
    compiler = _Compiler(source)
    truth = compiler.condition(source.parse())
    return Rule(text=text, paths=frozenset(compiler.paths), _truth=truth)


# --- closures ----------------------------------------------------------------------------------


def _constant(value: JsonValue) -> ValueFn:
    return lambda _a, _ts: value


def _getter(parts: tuple[str, ...]) -> ValueFn:
    head, rest = parts[0], parts[1:]
    if not rest:
        return lambda attributes, _ts: attributes.get(head)

    def get(attributes: Attributes, _ts: int) -> object:
        value = attributes.get(head)
        for part in rest:
            if not isinstance(value, Mapping):  # a path through a non-object is null
                return None
            value = value.get(part)
        return value

    return get


def _as_truth(fn: ValueFn) -> TruthFn:
    def truth(attributes: Attributes, ts_ms: int) -> bool | None:
        value = fn(attributes, ts_ms)
        return value if isinstance(value, bool) else None

    return truth


def _junction(parts: tuple[TruthFn, ...], *, decisive: bool) -> TruthFn:
    """`and` (decisive False) or `or` (decisive True), in Kleene's three-valued logic."""

    def test(attributes: Attributes, ts_ms: int) -> bool | None:
        result: bool | None = not decisive
        for part in parts:
            value = part(attributes, ts_ms)
            if value is decisive:
                return decisive
            if value is None:
                result = None
        return result

    return test


def _negate(fn: TruthFn) -> TruthFn:
    def test(attributes: Attributes, ts_ms: int) -> bool | None:
        value = fn(attributes, ts_ms)
        return None if value is None else not value

    return test


def _null_test(fn: ValueFn, *, want_null: bool) -> TruthFn:
    return lambda attributes, ts_ms: (fn(attributes, ts_ms) is None) is want_null


def _pair(test: Test, left: ValueFn, right: ValueFn) -> TruthFn:
    return lambda attributes, ts_ms: test(left(attributes, ts_ms), right(attributes, ts_ms))


def _pair_constant(test: Test, left: ValueFn, right: JsonValue) -> TruthFn:
    return lambda attributes, ts_ms: test(left(attributes, ts_ms), right)


def _call(name: str, args: list[ValueFn]) -> ValueFn:
    if name in UNARY_FUNCTIONS:
        unary, (arg,) = UNARY_FUNCTIONS[name], args
        return lambda attributes, ts_ms: unary(arg(attributes, ts_ms), ts_ms)
    binary, (first, second) = BINARY_FUNCTIONS[name], args
    return lambda attributes, ts_ms: binary(first(attributes, ts_ms), second(attributes, ts_ms))


# --- compiling: source text -> ast -> closures -------------------------------------------------

_UNSUPPORTED: dict[type[ast.AST], str] = {
    ast.BinOp: "arithmetic is not supported",
    ast.UnaryOp: "arithmetic is not supported",
    ast.Subscript: "subscripts are not supported",
    ast.Lambda: "lambda is not supported",
    ast.ListComp: "comprehensions are not supported",
    ast.SetComp: "comprehensions are not supported",
    ast.DictComp: "comprehensions are not supported",
    ast.GeneratorExp: "comprehensions are not supported",
    ast.NamedExpr: "assignment expressions (:=) are not supported",
    ast.JoinedStr: "f-strings are not supported",
    ast.IfExp: "conditional expressions are not supported",
    ast.Tuple: "tuples are not supported (use a list)",
    ast.Set: "sets are not supported (use a list)",
    ast.Dict: "dicts are not supported",
    ast.Constant: "only strings, numbers, booleans and null are literals",
    ast.BoolOp: "a condition cannot be used as a value",
    ast.Compare: "a condition cannot be used as a value",
    ast.Name: "list elements must be literals",
    ast.Attribute: "list elements must be literals",
    ast.Call: "list elements must be literals",
}


class _Source:
    """The rule text, parsed, with ast's byte offsets mapped back to 1-based character columns."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.body = text.lstrip()  # leading spaces would be an IndentationError for ast
        self.lead = len(text) - len(self.body)
        self.line_starts = [0, *(m.end() for m in _NEWLINE.finditer(self.body))]

    def parse(self) -> ast.expr:
        if not self.body.strip():
            raise RuleError("empty rule", rule=self.text, column=1)
        if bad := _UNPARSABLE.search(self.body):  # the parser rejects these without a position
            column = self.lead + bad.start() + 1
            raise RuleError("invalid character", rule=self.text, column=column)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # "\d" and the like: an error, whatever the host
                tree = ast.parse(self.body, mode="eval")
        except SyntaxError as exc:
            raise RuleError(exc.msg, rule=self.text, column=self.syntax_column(exc)) from None
        except (RecursionError, MemoryError):
            raise RuleError("rule is nested too deeply", rule=self.text, column=1) from None
        self.check_depth(tree.body)
        return tree.body

    def syntax_column(self, exc: SyntaxError) -> int:
        if not exc.offset or exc.offset < 1:  # Python gives no offset when the rule ends early
            return len(self.text.rstrip()) + 1
        return self.column_of_char(exc.lineno or 1, exc.offset - 1)

    def check_depth(self, root: ast.expr) -> None:
        pending = [(root, 1)]
        while pending:
            node, depth = pending.pop()
            if depth > _MAX_DEPTH:
                raise self.error(node, "rule is nested too deeply")
            kids = (k for k in ast.iter_child_nodes(node) if isinstance(k, ast.expr))
            pending.extend((kid, depth + 1) for kid in kids)

    def column_of_char(self, lineno: int, offset: int) -> int:
        line = min(max(lineno, 1), len(self.line_starts)) - 1
        return self.lead + self.line_starts[line] + max(offset, 0) + 1

    def error(self, node: ast.expr | ast.keyword, message: str) -> RuleError:
        start = self.line_starts[node.lineno - 1]
        line = self.body[start:].encode()
        chars = len(line[: node.col_offset].decode(errors="ignore"))  # ast counts UTF-8 bytes
        return RuleError(message, rule=self.text, column=self.column_of_char(node.lineno, chars))


class _Compiler:
    """Walks the allow-listed ast into closures, collecting the attribute paths it reads."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.paths: set[str] = set()

    def condition(self, node: ast.expr) -> TruthFn:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.condition(value) for value in node.values)
            return _junction(parts, decisive=isinstance(node.op, ast.Or))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return _negate(self.condition(node.operand))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        fn = self.value(node)
        if not _is_condition_like(node):
            raise self.source.error(node, "expected a condition (comparison, predicate or boolean)")
        return _as_truth(fn)

    def compare(self, node: ast.Compare) -> TruthFn:
        operands = [node.left, *node.comparators]
        # A chain a < b < c means a < b and b < c, as in Python.
        tests = tuple(self.pair(op, operands[i], operands[i + 1]) for i, op in enumerate(node.ops))
        return tests[0] if len(tests) == 1 else _junction(tests, decisive=False)

    def pair(self, op: ast.cmpop, left: ast.expr, right: ast.expr) -> TruthFn:
        test = _TESTS.get(type(op))
        if test is None:
            raise self.source.error(right, "'is' is not supported (use == or !=)")
        if test in (eq, ne) and (_is_null_literal(left) or _is_null_literal(right)):
            # The one test that sees null: == null / != null ask whether the value is missing.
            other = left if _is_null_literal(right) else right
            return _null_test(self.value(other), want_null=test is eq)
        if _is_literal(right):
            return _pair_constant(test, self.value(left), self.literal(right))
        return _pair(test, self.value(left), self.value(right))

    def value(self, node: ast.expr) -> ValueFn:
        if _is_literal(node):
            return _constant(self.literal(node))
        if isinstance(node, ast.Name | ast.Attribute):
            return _getter(self.path(node))
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.unsupported(node)

    def literal(self, node: ast.expr) -> JsonValue:
        if isinstance(node, ast.List):
            return [self.literal(element) for element in node.elts]
        if isinstance(node, ast.Name) and node.id in _NAMED_LITERALS:
            return _NAMED_LITERALS[node.id]
        if isinstance(node, ast.Constant) and is_scalar(value := node.value):
            return value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = node.operand  # a signed number is a literal; any other sign is arithmetic
            if isinstance(operand, ast.Constant) and is_number(number := operand.value):
                return -number if isinstance(node.op, ast.USub) else number
        raise self.unsupported(node)

    def path(self, node: ast.Name | ast.Attribute) -> tuple[str, ...]:
        parts: list[str] = []
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            base = base.value
        if not isinstance(base, ast.Name):
            raise self.source.error(base, "'.' must follow an attribute name")
        path = (base.id, *reversed(parts))
        self.paths.add(".".join(path))
        return path

    def call(self, node: ast.Call) -> ValueFn:
        if not isinstance(node.func, ast.Name):
            raise self.source.error(node, "calls on attributes are not supported")
        name = node.func.id
        arity = 1 if name in UNARY_FUNCTIONS else 2 if name in BINARY_FUNCTIONS else 0
        if not arity:
            raise self.source.error(node, f"unknown function {name!r} (known: {_KNOWN})")
        if node.keywords:
            raise self.source.error(node.keywords[0], "keyword arguments are not supported")
        if len(node.args) != arity:
            s = "" if arity == 1 else "s"
            message = f"{name}() takes {arity} argument{s}, got {len(node.args)}"
            raise self.source.error(node, message)
        return _call(name, [self.value(arg) for arg in node.args])

    def unsupported(self, node: ast.expr) -> RuleError:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.source.error(node, "a condition cannot be used as a value")
        message = _UNSUPPORTED.get(type(node), f"unsupported syntax ({type(node).__name__})")
        return self.source.error(node, message)


def _is_null_literal(node: ast.expr) -> bool:
    return (isinstance(node, ast.Constant) and node.value is None) or (
        isinstance(node, ast.Name) and node.id == "null"
    )


def _is_literal(node: ast.expr) -> bool:
    named = isinstance(node, ast.Name) and node.id in _NAMED_LITERALS
    return named or isinstance(node, ast.Constant | ast.List | ast.UnaryOp)


def _is_condition_like(node: ast.expr) -> bool:
    """Bare values usable as tests: boolean attributes, true/false, and predicate calls."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, bool)
    if isinstance(node, ast.Name):
        return node.id != "null"
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id in PREDICATES
    return isinstance(node, ast.Attribute)
