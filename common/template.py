"""The SMS template: ``{survey_link}``, ``{record_id}`` and ``{field:NAME}`` placeholders."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

MAX_BODY = 1600  # Twilio refuses longer bodies (21617; TWILIO_API.md §3.3)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# A survey link is at most ~100 characters; leave room for it when checking the length up front.
_LINK_ALLOWANCE = 120


@dataclass(frozen=True)
class SmsTemplate:
    text: str
    fields: tuple[str, ...]  # REDCap fields named as {field:NAME}

    @classmethod
    def parse(cls, text: str) -> SmsTemplate:
        """Check the placeholders; ValueError says which one is wrong and what is allowed."""
        if not text.strip():
            raise ValueError("is empty; it must contain {survey_link}")
        fields: list[str] = []
        has_link = False
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(
                f"has a stray brace ({exc}); write a literal brace as {{{{ or }}}}"
            ) from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            # str.format reads "{field:NAME}" as field "field" with format spec "NAME".
            if name == "field" and not conversion and _NAME.match(spec or ""):
                fields.append(str(spec))
            elif name in ("survey_link", "record_id") and not spec and not conversion:
                has_link = has_link or name == "survey_link"
            else:
                shown = (
                    name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
                )
                raise ValueError(
                    f"placeholder {{{shown}}} is not allowed; use {{survey_link}}, "
                    "{record_id} or {field:NAME} with a REDCap variable name"
                )
        if not has_link:
            raise ValueError("must contain {survey_link}, the participant's personal link")
        if len(text) + _LINK_ALLOWANCE > MAX_BODY:
            raise ValueError(f"is too long: an SMS body can hold at most {MAX_BODY} characters")
        return cls(text=text, fields=tuple(dict.fromkeys(fields)))

    def render(self, survey_link: str, record_id: str, values: Mapping[str, str]) -> str:
        """The message body for one participant."""
        pieces: list[str] = []
        for literal, name, spec, _ in string.Formatter().parse(self.text):
            pieces.append(literal)
            if name == "survey_link":
                pieces.append(survey_link)
            elif name == "record_id":
                pieces.append(record_id)
            elif name == "field":
                pieces.append(values.get(str(spec), ""))
        return "".join(pieces)
