"""REDCap logic (as used in ``filterLogic``) for the REDCap simulator: parse once, evaluate per row.

The rules follow REDCAP_API.md §3 and, where it is silent, the REDCap 15.7.6 code it cites
(``LogicLexer``, ``LogicParser``, ``LogicTester``, ``init_functions.php``): REDCap turns the
logic into PHP 8 code, so values compare and convert as PHP's do.

Syntax accepted
    ``[field]``, ``[event][field]``, ``[field(code)]`` (a checkbox choice, '1' or '0'), each
    optionally followed by ``[N]`` or ``[current-instance]``, ``[previous-instance]``,
    ``[next-instance]``, ``[first-instance]``, ``[last-instance]``. Field names are lower case
    (REDCap's lexer rejects ``[Age]``); smart variables such as ``[event-name]`` are rejected.
    Numbers (``30``, ``2.5``, ``-1``: a sign only before a number), strings in single or double
    quotes (no escapes; REDCap drops every backslash), ``true``/``false``.
    Operators ``=``/``==``, ``<>``/``!=``, ``<``, ``<=``, ``>``, ``>=``; ``and``/``AND``/``&&``,
    ``or``/``OR``/``||`` (word forms need a space on each side, as in REDCap); ``not``/``!``;
    ``+ - * /``; ``(x)^(y)`` (both sides in parentheses, as REDCap documents); parentheses.
    Line breaks and tabs are spaces; a line whose first non-blank characters are ``//`` or
    ``#`` is a comment. Functions: see :mod:`sandbox.redcap.logic_functions`.

Precedence (REDCap leaves it to PHP), loosest first: ``or``; ``and``; ``= <>``; ``< <= > >=``;
``+ -``; ``* /``; ``not``/``!``; operands. So ``not`` binds to the next operand, as PHP's ``!``:
``not [x] = '1'`` means ``(not [x]) = '1'``; write ``not([x] = '1')`` to negate a comparison.
Comparisons do not chain (``1 < [x] < 3`` is a parse error, as in PHP 8).

Values (REDCAP_API.md §3 "How blanks compare")
    * A numeric field (the env's ``is_numeric``) and every checkbox choice are read through
      ``chkNull``: blank or non-numeric becomes NaN. Comparisons with NaN are false except
      ``<>``/``!=``, which is true.
    * ``X = ""`` / ``X = ''`` (and ``<>``) is a blank test on X, for numeric fields too.
    * Two numeric fields compared directly follow ``chkNullCompare``: one blank side makes
      only ``<>`` true; two blank sides make ``=``, ``<=``, ``>=`` true.
    * Other fields are strings compared as PHP 8's loose ``==``/``<``: two numeric strings,
      or a number and a numeric string, compare as numbers (``'05' = 5`` is true); otherwise
      as strings byte by byte (ISO dates order correctly). So a blank text field is
      ``< 10`` (``"" < "10"`` as strings), exactly as on REDCap.
    * Arithmetic on a non-numeric string, or a division by zero, is an error in PHP; REDCap
      then treats the row as not matching, and so does :meth:`Logic.evaluate`.

Result: REDCap keeps a row unless the logic's value is exactly ``false`` (RC
``LogicTester::applyLogic`` tests ``=== false``). Comparisons and ``and``/``or``/``not`` always
give booleans; a bare value such as ``[age]`` or ``datediff(...)`` therefore matches every row.

Empty logic: REDCap skips filtering when ``filterLogic`` is empty, so the caller decides that;
:func:`parse_logic` raises :class:`LogicError` for text that is empty once comments are removed.
REDCap also skips filtering when the logic names no field at all (``true``, ``1 = 2``:
RC ``Records::applyFilteringLogic`` returns early); callers wanting that check ``not logic.refs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.redcap.logic_ast import FieldRef, LogicError, Node
from sandbox.redcap.logic_eval import Evaluator, LogicEnv
from sandbox.redcap.logic_lexer import clean, tokenize
from sandbox.redcap.logic_parser import Parser
from sandbox.redcap.logic_values import EvalAbort

__all__ = ["FieldRef", "Logic", "LogicEnv", "LogicError", "parse_logic"]


@dataclass(frozen=True)
class Logic:
    """A parsed logic expression, ready to be evaluated against many rows."""

    text: str
    refs: tuple[FieldRef, ...]  # every distinct field reference, in order of appearance
    root: Node = field(repr=False, compare=False)

    @property
    def all_prefixed(self) -> bool:
        """Every field reference carries an event prefix (and there is at least one)."""
        return bool(self.refs) and all(ref.event is not None for ref in self.refs)

    @property
    def events(self) -> frozenset[str]:
        """The event prefixes used."""
        return frozenset(ref.event for ref in self.refs if ref.event is not None)

    def evaluate(self, env: LogicEnv) -> bool:
        """Whether REDCap keeps the row: any value but ``false``; an evaluation error drops it."""
        try:
            value = Evaluator(env).value(self.root)
        except EvalAbort:
            return False
        return value is not False


def parse_logic(text: str) -> Logic:
    """Parse REDCap logic; raises :class:`LogicError` on any syntax it does not support,
    and on logic that is empty once comments are removed (the caller treats an empty
    ``filterLogic`` as no filter, as REDCap does)."""
    cleaned = clean(text)
    if not cleaned.strip():
        raise LogicError("the logic is empty")
    parser = Parser(tokenize(cleaned))
    root = parser.parse()
    return Logic(text=text, refs=tuple(parser.refs), root=root)
