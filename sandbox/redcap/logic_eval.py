"""Evaluates a parsed logic tree against one row, with REDCap's value rules (REDCAP_API.md §3)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

from sandbox.redcap.logic_ast import (
    Arith,
    BoolOp,
    Call,
    Compare,
    Literal,
    Node,
    Not,
    Power,
    Ref,
    Value,
)
from sandbox.redcap.logic_functions import IMPLS, isblankormissingcode
from sandbox.redcap.logic_values import (
    NAN,
    EvalAbort,
    chk_null,
    chk_null_compare,
    holds,
    is_nan_null,
    is_numeric_value,
    loose_order,
    to_number,
    truthy,
)


class LogicEnv(Protocol):
    """What the evaluator reads from the row being tested."""

    def lookup(
        self, event: str | None, field: str, choice: str | None, instance: str | None
    ) -> str:
        """Raw stored value ('' when blank). event None = the row being evaluated; choice =
        checkbox code for [f(code)] ('1' or '0'); instance None = the current row's instance,
        else the suffix text ('2', 'current-instance', 'first-instance', ...)."""
        ...

    def is_numeric(self, field: str) -> bool:
        """Whether REDCap wraps the field in chkNull() (number/integer, calc, yesno, ...)."""
        ...

    def now(self) -> datetime:
        """Server-local naive time, for 'today' and 'now'."""
        ...


def _is_blank_literal(node: Node) -> bool:
    return isinstance(node, Literal) and isinstance(node.value, str) and node.value == ""


class Evaluator:
    """Evaluates nodes for one row; raises :class:`EvalAbort` where PHP would throw."""

    def __init__(self, env: LogicEnv) -> None:
        self._env = env

    def value(self, node: Node) -> Value:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Ref):
            return self._ref(node)
        if isinstance(node, Not):
            return not truthy(self.value(node.operand))
        if isinstance(node, BoolOp):
            left = truthy(self.value(node.left))
            if node.op == "and":
                return left and truthy(self.value(node.right))
            return left or truthy(self.value(node.right))
        if isinstance(node, Compare):
            return self._compare(node)
        if isinstance(node, Arith):
            return self._arith(node)
        if isinstance(node, Power):
            return _power(self.value(node.base), self.value(node.exponent))
        return self._call(node)

    def _ref(self, node: Ref) -> Value:
        raw = self._raw(node)
        return chk_null(raw) if self._numeric(node) else raw

    def _raw(self, node: Ref) -> str:
        ref = node.ref
        return self._env.lookup(ref.event, ref.field, ref.choice, ref.instance)

    def _numeric(self, node: Ref) -> bool:
        """Whether REDCap reads the field through chkNull(): every checkbox choice, and
        fields of numeric type."""
        return node.ref.choice is not None or self._env.is_numeric(node.ref.field)

    def _compare(self, node: Compare) -> bool:
        op, left_node, right_node = node.op, node.left, node.right
        if op in ("==", "!=") and (_is_blank_literal(left_node) or _is_blank_literal(right_node)):
            # REDCap rewrites X = "" into is_nan_null(X), so it is a blank test for any field.
            other = right_node if _is_blank_literal(left_node) else left_node
            blank = is_nan_null(self.value(other))
            return blank if op == "==" else not blank
        if (
            isinstance(left_node, Ref)
            and isinstance(right_node, Ref)
            and self._numeric(left_node)
            and self._numeric(right_node)
        ):
            left_number = chk_null(self._raw(left_node))
            return chk_null_compare(left_number, chk_null(self._raw(right_node)), op)
        left = self.value(left_node)
        return holds(loose_order(left, self.value(right_node)), op)

    def _arith(self, node: Arith) -> float:
        left = to_number(self.value(node.left))
        right = to_number(self.value(node.right))
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        if right == 0:
            raise EvalAbort("division by zero")
        return left / right

    def _call(self, node: Call) -> Value:
        if node.name == "if":
            condition, then, otherwise = node.args
            return self.value(then if truthy(self.value(condition)) else otherwise)
        if node.name == "isblankormissingcode":
            (arg,) = node.args
            # REDCap strips the chkNull() around a field here, so it sees the raw value.
            value = self._raw(arg) if isinstance(arg, Ref) else self.value(arg)
            return isblankormissingcode(value)
        args = [self.value(arg) for arg in node.args]
        return IMPLS[node.name](args, self._env.now)


def _power(base: Value, exponent: Value) -> float:
    """REDCap's powRC(): NaN for non-numbers; odd roots of negatives stay real."""
    if not is_numeric_value(base) or not is_numeric_value(exponent):
        return NAN
    x, y = to_number(base), to_number(exponent)
    if x == 0 and y < 0:
        return math.inf  # PHP's pow(0, -n)
    if x < 0 and abs(y) < 1:
        if y == 0:
            raise EvalAbort("division by zero")  # PHP computes 1 / $exponent first
        if int(1 / y) % 2 == 0:
            return NAN
        return -math.pow(abs(x), y)
    try:
        return math.pow(x, y)
    except OverflowError:
        return math.inf
    except ValueError:
        return NAN
