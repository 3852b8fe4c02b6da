"""What a participant's text back means: a rule's answers (YES / NO ...), opt-out and opt-in.

A rule that takes replies lists its answers and the words meaning each, and may give an
auto-answer per answer (and one for a reply it cannot read)::

    replies.confirmed = ["yes", "y", "si", "sí", "ok"]
    replies.cancelled = ["no", "n"]
    answer_confirmed = "Thank you, your visit is confirmed."
    answer_cancelled = "Thank you. We will call you to find another time."
    answer_unclear = "Sorry, we did not understand. Please reply YES or NO."

A reply is read as a whole: case, accents, surrounding punctuation, spaces and emoji are
ignored ("Yes!", " yes. ", "SÍ 👍" are "yes"; "yes please" is not). Twilio's opt-out words
(STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT) opt the participant out of every
rule; START and UNSTOP, and YES from someone opted out, opt them back in, as Twilio's own
handling does. Twilio answers those words itself, so no auto-answer ever follows them; HELP and
INFO are Twilio's too and are recorded as ``help``, without an auto-answer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from common.field_types import Kind

OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN_WORDS = frozenset({"start", "unstop"})  # and "yes" from someone opted out
HELP_WORDS = frozenset({"help", "info"})
RESERVED = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS
UNCLEAR = "unclear"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"
HELP = "help"  # Twilio answers HELP / INFO itself
# A text from a phone several records share, when more than one of their messages waits for an
# answer: written on each of those records for a person to place; never auto-answered.
AMBIGUOUS = "ambiguous"
KEYWORD_MEANINGS = frozenset({OPTED_OUT, OPTED_IN, HELP})  # never auto-answered by us
NOT_ANSWERS = frozenset({UNCLEAR, AMBIGUOUS, *KEYWORD_MEANINGS})  # no answer name may be one
# The record's own reply fields, in REDCAP_EVENT (form "relay"): its opt-out ("1" while opted
# out, when, and the SID of the inbound message that last opted the participant out or in), and
# the replies the poller has read from the participant's numbers within the lookback window (so
# a restart knows what is done, whatever each reply meant).
OPT_OUT, OPT_OUT_AT, OPT_SID = "relay_opted_out", "relay_opted_out_at", "relay_opt_sid"
REPLIES_READ = "relay_replies_read"
OPT_OUT_KINDS = {OPT_OUT: Kind.TEXT, OPT_OUT_AT: Kind.TIME, OPT_SID: Kind.TEXT}
RECORD_KINDS = {**OPT_OUT_KINDS, REPLIES_READ: Kind.TEXT}
ANSWER_NAME = re.compile(r"[a-z][a-z0-9_]{0,29}")
MAX_WORD = 40


def normalize(text: str) -> str:
    """``text`` as replies are compared: case-folded, accents and surrounding punctuation,
    symbols and emoji removed, inner spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = re.findall(r"[^\W_]+", kept)
    return " ".join(words)


def keyword(body: str, opted_out: bool = False) -> str | None:
    """What Twilio's own keywords in ``body`` mean, whatever the rule: OPTED_OUT (STOP...),
    OPTED_IN (START, UNSTOP, and YES from someone opted out), HELP; None for any other text."""
    said = normalize(body)
    if said in OPT_OUT_WORDS:
        return OPTED_OUT
    if said in OPT_IN_WORDS or (opted_out and said == "yes"):
        return OPTED_IN
    if said in HELP_WORDS:
        return HELP
    return None


@dataclass(frozen=True)
class Replies:
    """A rule's answers: word (normalized) -> answer name."""

    words: Mapping[str, str] = field(default_factory=dict)

    @property
    def answers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.words.values()))

    def interpret(self, body: str, opted_out: bool = False) -> str:
        """The answer ``body`` gives: one of the rule's answers, a keyword's meaning (OPTED_OUT,
        OPTED_IN, HELP) or UNCLEAR."""
        return keyword(body, opted_out) or self.words.get(normalize(body), UNCLEAR)

    def is_answer(self, meaning: str) -> bool:
        """``meaning`` is one of the rule's own answers (a clear one), not unclear or a keyword."""
        return meaning in self.words.values()

    @staticmethod
    def parse(table: object, where: str) -> Replies:
        """From ``replies.<answer> = ["word", ...]``; ValueError naming what is wrong."""
        if not isinstance(table, Mapping):
            raise ValueError(
                f'{where}: replies must be a table of answers, e.g. replies.confirmed = ["yes"]'
            )
        words: dict[str, str] = {}
        for answer, listed in table.items():
            if not ANSWER_NAME.fullmatch(str(answer)) or answer in NOT_ANSWERS:
                raise ValueError(
                    f"{where}: replies.{answer}: an answer is a lower-case name (not unclear, "
                    "ambiguous, opted_out, opted_in or help), e.g. replies.confirmed"
                )
            if not isinstance(listed, list) or not listed:
                raise ValueError(
                    f'{where}: replies.{answer} must list its words, e.g. ["yes", "y", "si"]'
                )
            for word in listed:
                said = normalize(word) if isinstance(word, str) else ""
                if not said or len(said) > MAX_WORD:
                    raise ValueError(f"{where}: replies.{answer}: {word!r} is not a word to match")
                if said in RESERVED:
                    raise ValueError(
                        f"{where}: replies.{answer}: {word!r} is one of Twilio's keywords (STOP, "
                        "START, HELP...), which Twilio answers itself; choose another word"
                    )
                if words.get(said, answer) != answer:
                    raise ValueError(
                        f"{where}: {word!r} is listed for both replies.{words[said]} and "
                        f"replies.{answer}"
                    )
                words[said] = answer
        return Replies(MappingProxyType(words))
