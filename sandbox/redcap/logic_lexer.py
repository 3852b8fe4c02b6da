"""Turns REDCap logic text into tokens, the way REDCap's ``LogicLexer`` reads it (REDCAP_API.md §3).

Before tokenising, as REDCap does: lines whose first non-blank characters are ``//`` or ``#``
are comments, backslashes are dropped, and ``[field:value]`` means ``[field]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.redcap.logic_ast import FieldRef, LogicError

# REDCap turns line breaks and tabs into spaces before it tokenises.
WHITESPACE = " \t\r\n"

# Field names are lower case; event names may start with a digit; a checkbox code is a
# number or a word; an instance is a number or one of the relative keywords (REDCap's regex).
_REF = re.compile(
    r"\[(?:(?P<event>[a-z0-9][a-z0-9_]*)\]\[)?"
    r"(?P<field>[a-z][a-z0-9_]*)"
    r"(?:\((?P<choice>[A-Za-z0-9._-]+)\))?\]"
    r"(?:\[(?P<instance>\d+|current-instance|previous-instance|next-instance"
    r"|first-instance|last-instance)\])?"
)
_NUMBER = re.compile(r"(?:\d*\.)?\d+")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Symbol operators, longest first so "<=" wins over "<".
_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("&&", "and"),
    ("||", "or"),
    ("<>", "cmp"),
    ("<=", "cmp"),
    (">=", "cmp"),
    ("!=", "cmp"),
    ("==", "cmp"),
    ("=", "cmp"),
    ("<", "cmp"),
    (">", "cmp"),
    ("!", "not"),
    ("+", "+"),
    ("-", "-"),
    ("*", "*"),
    ("/", "/"),
    ("^", "^"),
    ("(", "("),
    (")", ")"),
    (",", ","),
)


@dataclass(frozen=True)
class Token:
    """``kind`` is one of: num str ref word ( ) , + - * / ^ cmp and or not true false end."""

    kind: str
    text: str
    pos: int
    ref: FieldRef | None = None

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the logic"
        return f"'{self.text}' at character {self.pos + 1}"


def clean(text: str) -> str:
    """The logic with comment lines blanked (offsets kept) and REDCap's textual rewrites."""
    lines = text.split("\n")
    kept = [" " * len(line) if line.strip().startswith(("//", "#")) else line for line in lines]
    return "\n".join(kept).replace("\\", "").replace(":value]", "]")


def tokenize(text: str) -> list[Token]:
    """Tokens of already :func:`clean` text, ending with an ``end`` token."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char in WHITESPACE:
            pos += 1
            continue
        token = _next_token(text, pos)
        tokens.append(token)
        pos += len(token.text)
    tokens.append(Token("end", "", len(text)))
    return tokens


def _next_token(text: str, pos: int) -> Token:
    char = text[pos]
    if char == "[":
        return _field_ref(text, pos)
    if char in "'\"":
        end = text.find(char, pos + 1)
        if end < 0:
            raise LogicError(f"unterminated string starting at character {pos + 1}")
        return Token("str", text[pos : end + 1], pos)
    number = _NUMBER.match(text, pos)
    if number:
        return Token("num", number.group(), pos)
    word = _WORD.match(text, pos)
    if word:
        return _word_token(text, pos, word.group())
    for symbol, kind in _SYMBOLS:
        if text.startswith(symbol, pos):
            return Token(kind, symbol, pos)
    raise LogicError(f"unexpected character '{char}' at character {pos + 1}")


def _field_ref(text: str, pos: int) -> Token:
    match = _REF.match(text, pos)
    if match is None:
        close = text.find("]", pos)
        if close < 0:
            raise LogicError(f"'[' at character {pos + 1} has no closing ']'")
        raise LogicError(
            f"invalid field reference '{text[pos : close + 1]}' at character {pos + 1}"
            " (field names are lower-case letters, digits and _; smart variables are not"
            " supported)"
        )
    ref = FieldRef(
        event=match.group("event"),
        field=match.group("field"),
        choice=match.group("choice"),
        instance=match.group("instance"),
    )
    return Token("ref", match.group(), pos, ref)


def _word_token(text: str, pos: int, word: str) -> Token:
    lowered = word.lower()
    if lowered in ("true", "false"):
        return Token(lowered, word, pos)
    if lowered == "not":
        return Token("not", word, pos)
    if word in ("and", "AND", "or", "OR"):
        # REDCap only recognises " and " / " or " with a space on each side.
        before = text[pos - 1] if pos > 0 else ""
        after = text[pos + len(word) : pos + len(word) + 1]
        if (before and before not in WHITESPACE) or (after and after not in WHITESPACE):
            raise LogicError(f"'{word}' at character {pos + 1} needs a space on each side")
        return Token(lowered, word, pos)
    return Token("word", word, pos)
