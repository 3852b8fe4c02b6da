"""A recursive-descent parser from :mod:`logic_lexer` tokens to a :mod:`logic_ast` tree.

Precedence follows the PHP that REDCap generates from the logic, loosest first: ``or``;
``and``; ``= <>`` (no chaining); ``< <= > >=`` (no chaining); ``+ -``; ``* /``; ``not``/``!``
(binds to the next operand, as PHP's ``!`` does); operands, including ``(x)^(y)``.
"""

from __future__ import annotations

from collections.abc import Callable

from sandbox.redcap.logic_ast import (
    Arith,
    BoolOp,
    Call,
    Compare,
    FieldRef,
    Literal,
    LogicError,
    Node,
    Not,
    Power,
    Ref,
)
from sandbox.redcap.logic_functions import ARITY, UNSUPPORTED_FUNCTIONS
from sandbox.redcap.logic_lexer import Token

_EQUALITY = {"=": "==", "==": "==", "<>": "!=", "!=": "!="}
_RELATIONAL = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}


class Parser:
    """Parses one token list; ``refs`` collects every field reference in order of appearance."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self.refs: list[FieldRef] = []

    def parse(self) -> Node:
        node = self._or()
        token = self._peek()
        if token.kind == ")":
            raise LogicError(f"unbalanced parentheses: unexpected {token.describe()}")
        if token.kind != "end":
            raise LogicError(f"expected an operator before {token.describe()}")
        return node

    # -- token access ------------------------------------------------------------------------
    def _peek(self) -> Token:
        return self._tokens[self._index]

    def _take(self) -> Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def _close(self, opening: Token, what: str) -> None:
        token = self._take()
        if token.kind == ")":
            return
        if token.kind == "end":
            raise LogicError(f"unbalanced parentheses: missing ')' for {opening.describe()}")
        raise LogicError(f"expected {what} but found {token.describe()}")

    # -- binary levels -----------------------------------------------------------------------
    def _or(self) -> Node:
        return self._left_associative(("or",), self._and, BoolOp)

    def _and(self) -> Node:
        return self._left_associative(("and",), self._equality, BoolOp)

    def _left_associative(
        self,
        kinds: tuple[str, ...],
        operand: Callable[[], Node],
        make: Callable[[str, Node, Node], Node],
    ) -> Node:
        """``operand (op operand)*`` for the operator kinds ``kinds``, grouped from the left (the
        node gets the kind: ``||`` and ``OR`` are ``or``)."""
        node = operand()
        while self._peek().kind in kinds:
            node = make(self._take().kind, node, operand())
        return node

    def _equality(self) -> Node:
        return self._comparison(_EQUALITY, self._relational)

    def _relational(self) -> Node:
        return self._comparison(_RELATIONAL, self._additive)

    def _comparison(self, table: dict[str, str], operand: Callable[[], Node]) -> Node:
        """One level of comparison: ``operand (op operand)?``; a second op needs parentheses."""
        node = operand()
        if self._is_cmp(table):
            op = self._take()
            node = Compare(table[op.text], node, operand())
            if self._is_cmp(table):
                raise LogicError(
                    f"chained comparison at {self._peek().describe()}: add parentheses"
                )
        return node

    def _is_cmp(self, table: dict[str, str]) -> bool:
        token = self._peek()
        return token.kind == "cmp" and token.text in table

    def _additive(self) -> Node:
        return self._left_associative(("+", "-"), self._multiplicative, Arith)

    def _multiplicative(self) -> Node:
        return self._left_associative(("*", "/"), self._unary, Arith)

    def _unary(self) -> Node:
        if self._peek().kind == "not":
            self._take()
            return Not(self._unary())
        return self._operand()

    # -- operands ----------------------------------------------------------------------------
    def _operand(self) -> Node:
        before = self._tokens[self._index - 1] if self._index > 0 else None
        token = self._take()
        node: Node
        if token.kind == "(":
            return self._group(token)
        if token.kind == "num":
            node = Literal(float(token.text))
        elif token.kind in ("+", "-"):
            number = self._take()
            if number.kind != "num":
                raise LogicError(f"a sign can only come before a number: {token.describe()}")
            node = Literal(float(token.text + number.text))
        elif token.kind == "str":
            node = Literal(token.text[1:-1])
        elif token.kind in ("true", "false"):
            node = Literal(token.kind == "true")
        elif token.kind == "ref" and token.ref is not None:
            if token.ref not in self.refs:
                self.refs.append(token.ref)
            node = Ref(token.ref)
        elif token.kind == "word":
            node = self._call(token)
        elif token.kind == "end":
            after = f" after {before.describe()}" if before is not None else ""
            raise LogicError(f"expected a value{after} but the logic ended")
        else:
            raise LogicError(f"expected a value but found {token.describe()}")
        if self._peek().kind == "^":
            raise LogicError(
                f"'^' needs both sides in parentheses, as (x)^(y): {self._peek().describe()}"
            )
        return node

    def _group(self, opening: Token) -> Node:
        """``( expr )``, optionally raised to a power ``(x)^(y)``."""
        inner = self._or()
        self._close(opening, "')'")
        if self._peek().kind != "^":
            return inner
        caret = self._take()
        exponent_open = self._take()
        if exponent_open.kind != "(":
            raise LogicError(f"'^' needs both sides in parentheses, as (x)^(y): {caret.describe()}")
        exponent = self._or()
        self._close(exponent_open, "')'")
        if self._peek().kind == "^":
            raise LogicError(
                f"chained '^' is not supported, write ((x)^(y))^(z): {self._peek().describe()}"
            )
        return Power(inner, exponent)

    def _call(self, name_token: Token) -> Node:
        name = name_token.text
        if self._peek().kind != "(":
            raise LogicError(f"unknown word {name_token.describe()}")
        if name in UNSUPPORTED_FUNCTIONS:
            raise LogicError(f"function '{name}' is not supported by the simulator")
        if name not in ARITY:
            raise LogicError(f"unknown function '{name}' at character {name_token.pos + 1}")
        opening = self._take()
        args: list[Node] = []
        if self._peek().kind != ")":
            args.append(self._or())
            while self._peek().kind == ",":
                self._take()
                args.append(self._or())
        self._close(opening, f"',' or ')' in {name}()")
        low, high = ARITY[name]
        if len(args) < low or (high is not None and len(args) > high):
            wanted = f"{low}" if low == high else f"{low} to {high}" if high else f"{low} or more"
            raise LogicError(f"{name}() takes {wanted} arguments, got {len(args)}")
        return Call(name, tuple(args))
