"""The subset of CloudWatch metric math our alarms use, evaluated per timestamp.

Source: Amazon CloudWatch User Guide, "Use metric math"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html):

- "Basic arithmetic functions": ``+ - * /`` and unary ``-``. "Missing values in a time
  series are treated as 0. If the value of a data point causes a function to attempt to
  divide by zero, the data point is dropped."
- "Comparison and logical operators": ``== != <= >= < >`` and ``AND``/``&&``,
  ``OR``/``||`` give 0 or 1; between two time series "the function treats the missing
  value in the other time series as 0".
- "Using IF expressions": ``IF(condition, trueValue[, falseValue])`` per timestamp, with
  the documented rules for missing datapoints and the listed valid syntaxes.
- ``FILL(TS, S)``: the missing values of a time series filled with a number.

Supported: numbers, metric ids, parentheses, the operators above, ``IF`` and ``FILL``
with a number. Not supported, with a clear error: ``^``, every other function (``SUM``,
``METRICS``, ``SEARCH``...), ``FILL`` with ``REPEAT``, ``LINEAR`` or a time series,
arrays and strings.

Precedence (our choice where AWS documents none): ``*`` ``/`` over ``+`` ``-`` over
comparisons over ``AND``/``OR``; a comparison does not chain, and ``AND`` mixed with
``OR`` needs parentheses, because AWS does not say which binds tighter.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from paymig.errors import PaymigError

Series = dict[datetime, float]
Value = float | Series

SUPPORTED_FUNCTIONS = frozenset({"IF", "FILL"})
ARITHMETIC: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
LOGICAL: dict[str, Callable[[bool, bool], bool]] = {
    "AND": lambda a, b: a and b,
    "OR": lambda a, b: a or b,
}
_LOGICAL_SPELLINGS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR"}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/<>(),^]))"
)


class MetricMathError(PaymigError):
    """An expression this evaluator cannot parse, does not support, or cannot evaluate."""


# ---------------------------------------------------------------------------- syntax


@dataclass(frozen=True)
class Number:
    """A number literal."""

    value: float


@dataclass(frozen=True)
class MetricRef:
    """A metric (or expression) id: a time series given by the caller."""

    id: str


@dataclass(frozen=True)
class Negate:
    """Unary minus."""

    operand: Node


@dataclass(frozen=True)
class BinaryOp:
    """An arithmetic, comparison or logical operator with its two operands."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    """A call of IF or FILL."""

    function: str
    args: tuple[Node, ...]


Node = Number | MetricRef | Negate | BinaryOp | Call


def parse_expression(text: str) -> Node:
    """Parse a metric-math expression, rejecting what this evaluator does not support."""
    parser = _Parser(_tokenize(text), text)
    node = parser.logical()
    if parser.peek() is not None:
        raise MetricMathError(f"expression {text!r}: unexpected {parser.peek()!r}")
    return node


def metric_ids(node: Node) -> frozenset[str]:
    """The metric ids an expression reads."""
    if isinstance(node, MetricRef):
        return frozenset({node.id})
    if isinstance(node, Negate):
        return metric_ids(node.operand)
    if isinstance(node, BinaryOp):
        return metric_ids(node.left) | metric_ids(node.right)
    if isinstance(node, Call):
        return frozenset().union(*(metric_ids(arg) for arg in node.args))
    return frozenset()


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while text[position:].strip():
        found = _TOKEN.match(text, position)
        if found is None:
            raise MetricMathError(
                f"expression {text!r}: cannot read {text[position:].strip()[:10]!r} "
                "(strings and arrays are not supported)"
            )
        tokens.append(found.group(found.lastgroup or ""))
        position = found.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens, one method per precedence level."""

    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        lexeme = self.peek()
        if lexeme is None:
            raise MetricMathError(f"expression {self.text!r}: ends too early")
        self.position += 1
        return lexeme

    def expect(self, lexeme: str) -> None:
        if self.take() != lexeme:
            raise MetricMathError(f"expression {self.text!r}: expected {lexeme!r}")

    def logical(self) -> Node:
        node = self.comparison()
        seen: set[str] = set()
        while (spelled := self.peek()) in _LOGICAL_SPELLINGS:
            self.take()
            seen.add(_LOGICAL_SPELLINGS[str(spelled)])
            if len(seen) > 1:
                raise MetricMathError(
                    f"expression {self.text!r}: AND and OR mixed without parentheses "
                    "(AWS documents no precedence between them)"
                )
            node = BinaryOp(_LOGICAL_SPELLINGS[str(spelled)], node, self.comparison())
        return node

    def comparison(self) -> Node:
        node = self.additive()
        if self.peek() in COMPARISON:
            op = self.take()
            node = BinaryOp(op, node, self.additive())
            if self.peek() in COMPARISON:
                raise MetricMathError(f"expression {self.text!r}: comparisons do not chain")
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = BinaryOp(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/", "^"):
            op = self.take()
            if op == "^":
                raise MetricMathError(f"expression {self.text!r}: '^' is not supported")
            node = BinaryOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return Negate(self.unary())
        return self.primary()

    def primary(self) -> Node:
        lexeme = self.take()
        if lexeme == "(":
            node = self.logical()
            self.expect(")")
            return node
        if lexeme[0].isdigit() or lexeme[0] == ".":
            return Number(float(lexeme))
        if lexeme[0].isalpha() or lexeme[0] == "_":
            if self.peek() == "(":
                return self.call(lexeme)
            return MetricRef(lexeme)
        raise MetricMathError(f"expression {self.text!r}: unexpected {lexeme!r}")

    def call(self, function: str) -> Node:
        if function not in SUPPORTED_FUNCTIONS:
            raise MetricMathError(
                f"expression {self.text!r}: function {function} is not supported "
                f"(only {', '.join(sorted(SUPPORTED_FUNCTIONS))})"
            )
        self.expect("(")
        args = [self.logical()]
        while self.peek() == ",":
            self.take()
            args.append(self.logical())
        self.expect(")")
        _check_arity(self.text, function, args)
        return Call(function, tuple(args))


def _check_arity(text: str, function: str, args: Sequence[Node]) -> None:
    """IF takes 2 or 3 arguments; FILL takes a series and a number."""
    if function == "IF" and len(args) not in (2, 3):
        raise MetricMathError(f"expression {text!r}: IF takes 2 or 3 arguments")
    if function == "FILL":
        if len(args) != 2:
            raise MetricMathError(f"expression {text!r}: FILL takes 2 arguments")
        if isinstance(args[1], MetricRef) and args[1].id in ("REPEAT", "LINEAR"):
            raise MetricMathError(f"expression {text!r}: FILL with {args[1].id} is not supported")


# ---------------------------------------------------------------------------- evaluation


def evaluate_expression(
    expression: str | Node,
    series: Mapping[str, Mapping[datetime, float]],
    timestamps: Sequence[datetime],
) -> Series:
    """The expression's time series over ``timestamps`` (the query's period starts).

    ``series`` gives each metric id's datapoints; a timestamp without a datapoint is
    missing. The result holds only the timestamps that have a value.
    """
    node = parse_expression(expression) if isinstance(expression, str) else expression
    grid = tuple(timestamps)
    on_grid = set(grid)
    for metric_id, points in series.items():
        stray = [moment for moment in points if moment not in on_grid]
        if stray:
            raise MetricMathError(
                f"series {metric_id!r}: {stray[0].isoformat()} is not one of the timestamps"
            )
    result = _Evaluator(series, grid).value(node)
    if not isinstance(result, dict):
        # "The final result of any math expression must be a single time series".
        raise MetricMathError("expression: the result is a number, not a time series")
    return result


class _Evaluator:
    """Evaluates a syntax tree over aligned series."""

    def __init__(
        self, series: Mapping[str, Mapping[datetime, float]], grid: tuple[datetime, ...]
    ) -> None:
        self.series = series
        self.grid = grid

    def value(self, node: Node) -> Value:
        if isinstance(node, Number):
            return node.value
        if isinstance(node, MetricRef):
            return self.metric(node.id)
        if isinstance(node, Negate):
            return _binary("*", -1.0, self.value(node.operand))
        if isinstance(node, BinaryOp):
            return _binary(node.op, self.value(node.left), self.value(node.right))
        if node.function == "FILL":
            return self.fill(node.args)
        return self.if_(node.args)

    def metric(self, metric_id: str) -> Series:
        if metric_id not in self.series:
            raise MetricMathError(f"expression: unknown metric id {metric_id!r}")
        return {moment: float(v) for moment, v in self.series[metric_id].items()}

    def fill(self, args: tuple[Node, ...]) -> Series:
        """FILL(TS, S): every timestamp gets the series' value or the number."""
        target, filler = self.value(args[0]), self.value(args[1])
        if not isinstance(target, dict):
            raise MetricMathError("expression: FILL's first argument must be a time series")
        if isinstance(filler, dict):
            raise MetricMathError("expression: FILL with a time series is not supported")
        return {moment: target.get(moment, filler) for moment in self.grid}

    def if_(self, args: tuple[Node, ...]) -> Value:
        """IF per "Using IF expressions", including its missing-datapoint rules."""
        condition = self.value(args[0])
        when_true = self.value(args[1])
        when_false = self.value(args[2]) if len(args) == 3 else None
        if not isinstance(condition, dict):
            # Valid with a scalar condition: IF(S, TS[, TS]) only.
            if not isinstance(when_true, dict) or isinstance(when_false, float):
                raise MetricMathError(
                    "expression: with a number as condition, IF takes time series branches"
                )
            if condition:
                return when_true
            return when_false if isinstance(when_false, dict) else {}
        return _if_series(condition, when_true, when_false)


def _if_series(condition: Series, when_true: Value, when_false: Value | None) -> Series:
    """Per condition datapoint; a missing condition datapoint drops the timestamp.

    True with a series missing there gives 0; false with a series missing there, or no
    false value, drops the timestamp (the doc's tables for IF(metric1, metric2, metric3)).
    """
    result: Series = {}
    for moment, flag in condition.items():
        if flag:
            result[moment] = (
                when_true.get(moment, 0.0) if isinstance(when_true, dict) else when_true
            )
        elif isinstance(when_false, dict):
            if moment in when_false:
                result[moment] = when_false[moment]
        elif when_false is not None:
            result[moment] = when_false
    return result


def _binary(op: str, left: Value, right: Value) -> Value:
    """One operator over numbers, or per timestamp over series."""
    if not isinstance(left, dict) and not isinstance(right, dict):
        if op == "/" and right == 0:
            raise MetricMathError("expression: division of a number by zero")
        return _apply(op, left, right)
    result: Series = {}
    for moment in _moments(left, right):
        a = left.get(moment, 0.0) if isinstance(left, dict) else left
        b = right.get(moment, 0.0) if isinstance(right, dict) else right
        if op == "/" and b == 0:
            continue  # "the data point is dropped"
        result[moment] = _apply(op, a, b)
    return result


def _moments(left: Value, right: Value) -> Iterable[datetime]:
    """The timestamps a series operator yields: the union of both series' timestamps."""
    moments: set[datetime] = set()
    for side in (left, right):
        if isinstance(side, dict):
            moments |= side.keys()
    return sorted(moments)


def _apply(op: str, a: float, b: float) -> float:
    if op in ARITHMETIC:
        return ARITHMETIC[op](a, b)
    if op in COMPARISON:
        return 1.0 if COMPARISON[op](a, b) else 0.0
    return 1.0 if LOGICAL[op](a != 0, b != 0) else 0.0
