"""REDCap's reading of a POST body: PHP-style arrays and the normalised common parameters.

PHP turns ``fields[0]=a&fields[1]=b`` and ``fields[]=a`` into arrays and leaves ``fields=a,b`` a
string, which the API then splits on commas (REDCAP_API.md §1.2). :class:`ApiCall` carries the
parsed body plus what the API layer settled (project, format, returnFormat, action), and answers
the questions every method asks the same way REDCap's ``API/index.php`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sandbox.redcap.model import Project

Param = str | list[str]
_ARRAY_KEY = re.compile(r"^([^\[\]]+)\[([^\[\]]*)\]$")


def php_form(fields: dict[str, list[str]]) -> dict[str, Param]:
    """Fold a decoded form body the way PHP builds ``$_POST`` (last scalar wins)."""
    result: dict[str, Param] = {}
    indexed: dict[str, dict[str, str]] = {}
    for key, values in fields.items():
        match = _ARRAY_KEY.match(key)
        if match is None:
            result[key] = values[-1]
            indexed.pop(key, None)
            continue
        name, index = match.groups()
        slots = indexed.setdefault(name, {})
        for value in values:
            if index == "":
                # ``name[]`` appends after the highest integer key, as PHP does.
                numeric = [int(k) for k in slots if k.lstrip("-").isdigit()]
                slots[str(max(numeric) + 1 if numeric else 0)] = value
            else:
                slots[index] = value
        result[name] = list(slots.values())
    return result


@dataclass
class ApiCall:
    """One authorised API request, as the methods see it."""

    params: dict[str, Param]
    project: Project
    content: str
    action: str
    format: str  # json, csv, xml or odm (REDCap's default is xml)
    return_format: str  # json, csv or xml: the shape of error bodies
    now: datetime  # server-local naive time (SimClock.local_naive)
    base_url: str  # http://127.0.0.1:PORT, for survey links
    version: str = "15.7.6"  # what content=version reports

    def text(self, name: str) -> str:
        """A scalar parameter; ``""`` when missing or sent as an array."""
        value = self.params.get(name, "")
        return value if isinstance(value, str) else ""

    def has(self, name: str) -> bool:
        return name in self.params

    def is_list(self, name: str) -> bool:
        """True when the parameter came as PHP array syntax (``name[...]``)."""
        return isinstance(self.params.get(name), list)

    def array(self, name: str) -> list[str]:
        """An array parameter: its items, or a string split on commas; ``[]`` when empty."""
        value = self.params.get(name, "")
        if isinstance(value, list):
            return list(value)
        return value.split(",") if value != "" else []

    def flag(self, name: str) -> bool:
        """REDCap's boolean reading: true only for ``1`` or, any case, ``true``."""
        value = self.text(name)
        return value == "1" or value.lower() == "true"
