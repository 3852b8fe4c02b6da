"""One record's state for one rule, as exported from REDCap: typed reads of the rule's fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from common.pipeline import parse_time
from messaging.rules import Rule


@dataclass(frozen=True)
class RuleRow:
    """A record's exported values (its id, the rule's fields, what the rule reads) for ``rule``."""

    rule: Rule
    record_id: str
    values: dict[str, str]

    def get(self, field: str | None) -> str:
        return self.values.get(field, "") if field else ""

    @property
    def status(self) -> str:
        return self.get(self.rule.fields.status)

    @property
    def attempts(self) -> int:
        return self.count_of(self.rule.fields.attempts)

    @property
    def interrupted(self) -> int:
        return self.count_of(self.rule.fields.interrupted)

    @property
    def sent(self) -> int:
        """Messages this rule has sent the record so far (0 for the built-in rule's first)."""
        return self.count_of(self.rule.fields.count)

    def count_of(self, field: str | None) -> int:
        """A counter field; blank (never counted) is 0. A ``number`` field may say ``2.0``."""
        raw = self.get(field).strip()
        try:
            return max(int(float(raw)), 0) if raw else 0
        except ValueError:
            return 0

    def time(self, field: str, tz: ZoneInfo) -> datetime | None:
        return parse_time(self.get(field), tz)
