"""Compile a parsed rule into closures (rules/compare.py builds its tests), to match fast.

Pure: no I/O. The parsed tree is walked against an allow-list; any other form is a RuleError at
its column. Logic is three-valued: a null or a type mismatch makes a test unknown (None), `not`
keeps unknown unknown, and a rule matches only when it is definitely true.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from worker.core.ids import JsonValue
from worker.core.rules import compare as rc
from worker.core.rules import values as rv
from worker.core.rules.compare import Attributes, Condition, Operand, Predicate, ValueFn
from worker.core.rules.parser import Source
from worker.errors import RuleError

_NAMED_LITERALS: dict[str, JsonValue] = {"true": True, "false": False, "null": None}
_TESTS: dict[type[ast.cmpop], rv.Test] = {
    ast.Eq: rv.eq,
    ast.NotEq: rv.ne,
    ast.Lt: rv.lt,
    ast.LtE: rv.le,
    ast.Gt: rv.gt,
    ast.GtE: rv.ge,
    ast.In: rv.is_in,
    ast.NotIn: rv.is_not_in,
}
_KNOWN = ", ".join(sorted([*rv.UNARY_FUNCTIONS, *rv.BINARY_FUNCTIONS]))
_ORDERINGS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled audience rule; `paths` are every attribute path it reads.

    `matches(attributes, ts_ms)` tells whether the profile is in the audience and never raises
    on JSON-like attributes. `doubts` are valid forms that are almost surely mistakes, each with
    its column (an attribute ordered against a quoted number); the configuration refuses them.
    `matches` is the compiled predicate itself, not a method wrapping it: it runs for every
    audience of every event, and the extra call was a tenth of the evaluation.
    """

    text: str
    paths: frozenset[str]
    matches: Predicate = field(repr=False, compare=False)
    _fails: Predicate = field(repr=False, compare=False)
    doubts: tuple[str, ...] = ()

    def evaluate(self, attributes: Attributes, ts_ms: int) -> bool | None:
        """Return True, False, or None when a null or a type mismatch leaves it unknown."""
        if self.matches(attributes, ts_ms):
            return True
        return False if self._fails(attributes, ts_ms) else None


def compile_rule(text: str) -> Rule:
    """Parse and compile `text`, or raise RuleError pointing at the offending column."""
    source = Source(text)
    compiler = _Compiler(source)
    condition = compiler.condition(source.parse())
    paths, doubts = frozenset(compiler.paths), tuple(compiler.doubts)
    return Rule(text, paths, matches=condition.holds, _fails=condition.fails, doubts=doubts)


# --- value closures: what a rule reads; its tests are built by rules/compare.py ----------------


def _constant(value: JsonValue) -> ValueFn:
    return lambda _a, _ts: value


def _getter(parts: tuple[str, ...]) -> ValueFn:
    head, rest = parts[0], parts[1:]
    if not rest:
        return lambda attributes, _ts: attributes.get(head)

    def get(attributes: Attributes, _ts: int) -> object:
        value = attributes.get(head)
        for part in rest:
            # A path through a non-object is null; `type is dict` first skips the slow ABC check.
            if type(value) is not dict and not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return get


def _value_fn(operand: Operand) -> ValueFn:
    return _getter((operand,)) if isinstance(operand, str) else operand


def _call(name: str, args: list[Operand]) -> ValueFn:
    if name in rv.UNARY_FUNCTIONS:
        unary, (arg,) = rv.UNARY_FUNCTIONS[name], args
        if isinstance(arg, str):
            key = arg
            return lambda attributes, ts_ms: unary(attributes.get(key), ts_ms)
        fn = arg
        return lambda attributes, ts_ms: unary(fn(attributes, ts_ms), ts_ms)
    binary, (first, second) = rv.BINARY_FUNCTIONS[name], map(_value_fn, args)
    return lambda attributes, ts_ms: binary(first(attributes, ts_ms), second(attributes, ts_ms))


# --- compiling: the parsed ast -> closures -------------------------------------------------------

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


class _Compiler:
    """Walks the allow-listed ast into closures, collecting the attribute paths it reads."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.paths: set[str] = set()
        self.doubts: list[str] = []

    def condition(self, node: ast.expr) -> Condition:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.condition(value) for value in node.values)
            return rc.junction(parts, decisive=isinstance(node.op, ast.Or))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.condition(node.operand).negated()
        if isinstance(node, ast.Compare):
            return self.compare(node)
        operand = self.operand(node)
        if not _is_condition_like(node):
            raise self.source.error(node, "expected a condition (comparison, predicate or boolean)")
        if isinstance(node, ast.Call):
            return self.predicate(node, operand)
        return rc.bind(operand, rc.BOOLEAN)

    def predicate(self, node: ast.Call, call: Operand) -> Condition:
        """Specialise exists(x) and startswith/endswith(x, literal) as checks of x."""
        name, args = _function_name(node), node.args
        if name == "exists":
            return rc.bind(self.operand(args[0]), rc.PRESENT)  # never unknown
        if name is not None and _is_literal(args[1]):
            check = rc.affix(name, self.literal(args[1]))
            if check is not None:
                return rc.bind(self.operand(args[0]), check)
        return rc.bind(call, rc.BOOLEAN)

    def compare(self, node: ast.Compare) -> Condition:
        operands = [node.left, *node.comparators]
        # A chain a < b < c means a < b and b < c, as in Python.
        tests = tuple(self.pair(op, operands[i], operands[i + 1]) for i, op in enumerate(node.ops))
        return tests[0] if len(tests) == 1 else rc.junction(tests, decisive=False)

    def pair(self, op: ast.cmpop, left: ast.expr, right: ast.expr) -> Condition:
        test = _TESTS.get(type(op))
        if test is None:
            raise self.source.error(right, "'is' is not supported (use == or !=)")
        if isinstance(op, _ORDERINGS):
            self.doubt_quoted_number(left, right)
            self.doubt_quoted_number(right, left)
        if test in (rv.eq, rv.ne) and (_is_null_literal(left) or _is_null_literal(right)):
            # The one test that sees null: == null / != null ask whether the value is missing.
            other = left if _is_null_literal(right) else right
            present = rc.PRESENT if test is rv.ne else rc.PRESENT.negated()
            return rc.bind(self.operand(other), present)
        # Most tests are `path OP literal`: specialise them on the literal's type.
        if _is_literal(right):
            operand = self.operand(left)
            return rc.bind(operand, rc.against(test, self.literal(right)))
        if _is_literal(left):
            check = rc.against_left(test, self.literal(left))
            return rc.bind(self.operand(right), check)
        return rc.pair(test, self.value(left), self.value(right))

    def doubt_quoted_number(self, literal: ast.expr, other: ast.expr) -> None:
        """Note `path < "1000"`: text order ("900" > "1000"), and never true of a number."""
        if not (isinstance(literal, ast.Constant) and isinstance(literal.value, str)):
            return
        if _NUMBER.fullmatch(literal.value.strip()) and isinstance(other, ast.Name | ast.Attribute):
            path, number = ast.unparse(other), literal.value.strip()
            message = (
                f'{path} is ordered against the text "{literal.value}", which is never true of '
                f"a number: write {number} without quotes (to order text on purpose, compare "
                f"lower({path}))"
            )
            self.doubts.append(str(self.source.error(literal, message)))

    def operand(self, node: ast.expr) -> Operand:
        if isinstance(node, ast.Name) and node.id not in _NAMED_LITERALS:
            name = self.source.name(node.id)
            self.paths.add(name)
            return name
        return self.value(node)

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
        if isinstance(node, ast.Constant) and rv.is_scalar(value := node.value):
            return value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = node.operand  # a signed number is a literal; any other sign is arithmetic
            if isinstance(operand, ast.Constant) and rv.is_number(number := operand.value):
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
        path = tuple(self.source.name(part) for part in (base.id, *reversed(parts)))
        self.paths.add(".".join(path))
        return path

    def call(self, node: ast.Call) -> ValueFn:
        if not isinstance(node.func, ast.Name):
            raise self.source.error(node, "calls on attributes are not supported")
        name = self.source.name(node.func.id)
        arity = 1 if name in rv.UNARY_FUNCTIONS else 2 if name in rv.BINARY_FUNCTIONS else 0
        if not arity:
            raise self.source.error(node, f"unknown function {name!r} (known: {_KNOWN})")
        if node.keywords:
            raise self.source.error(node.keywords[0], "keyword arguments are not supported")
        if len(node.args) != arity:
            s = "" if arity == 1 else "s"
            message = f"{name}() takes {arity} argument{s}, got {len(node.args)}"
            raise self.source.error(node, message)
        return _call(name, [self.operand(arg) for arg in node.args])

    def unsupported(self, node: ast.expr) -> RuleError:
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.source.error(node, "a condition cannot be used as a value")
        message = _UNSUPPORTED.get(type(node), f"unsupported syntax ({type(node).__name__})")
        return self.source.error(node, message)


def _function_name(node: ast.Call) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else None


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
        return isinstance(node.func, ast.Name) and node.func.id in rv.PREDICATES
    return isinstance(node, ast.Attribute)
