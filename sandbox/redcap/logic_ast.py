"""The syntax tree of REDCap logic, shared by the lexer, parser and evaluator.

See :mod:`sandbox.redcap.logic` for the grammar and the semantics (REDCAP_API.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

# A logic value as PHP would hold it: a boolean, a number (int and float both become float;
# NaN stands for a blank numeric field) or a string.
Value = bool | float | str


class LogicError(Exception):
    """The logic uses syntax the simulator does not accept; ``str(e)`` names the problem."""


@dataclass(frozen=True)
class FieldRef:
    """One ``[event][field(choice)][instance]`` reference, as written in the logic."""

    event: str | None
    field: str
    choice: str | None
    instance: str | None

    def __str__(self) -> str:
        event = f"[{self.event}]" if self.event is not None else ""
        choice = f"({self.choice})" if self.choice is not None else ""
        instance = f"[{self.instance}]" if self.instance is not None else ""
        return f"{event}[{self.field}{choice}]{instance}"


@dataclass(frozen=True)
class Literal:
    value: Value


@dataclass(frozen=True)
class Ref:
    ref: FieldRef


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Arith:
    op: str  # "+", "-", "*" or "/"
    left: Node
    right: Node


@dataclass(frozen=True)
class Power:
    """``(base)^(exponent)``: REDCap only accepts both sides in parentheses."""

    base: Node
    exponent: Node


@dataclass(frozen=True)
class Compare:
    op: str  # normalised: "==", "!=", "<", "<=", ">", ">="
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Literal | Ref | Not | Arith | Power | Compare | BoolOp | Call
