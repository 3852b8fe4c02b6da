"""Study ID rules, the ``[[assign]]`` tables of a RULES_FILE: the model, its parsing, and what an
ID of a group looks like. How IDs are given out is :mod:`messaging.assign`.

::

    [[assign]]
    name = "study_id"              # prefix of the rule's own fields: study_id_status, ...
    field = "study_id"             # the team's field that receives the ID (a Text Box)
    when = "[eligible] = '1'"      # REDCap logic: the record gets an ID once it holds
    # event = "..."                # longitudinal: the event of `field` and the rule's fields

    [[assign.group]]
    name = "control"               # a name for reports (R_group)
    when = "[study_group] = '1'"   # which records it takes (optional with one group)
    start = 3000                   # its first number
    prefix = "HC-"                 # optional: HC-3000, HC-3001, ...
    width = 4                      # optional: zero-padded to this many digits

An ID is ``prefix`` + a number. Groups with the same prefix share one run of numbers, split by
their starts: a group ends where the next one starts (``control`` 3000 and ``patient`` 10200
without prefixes give 3000..10199 and 10200 onwards), so two groups never give the same value.
A prefix never ends in a digit, so every value reads back as exactly one prefix and number
(:meth:`AssignRule.group_of`). Every mistake is one ConfigError naming the rule, the key and the
fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from common.errors import ConfigError
from common.field_types import Kind

NAME = re.compile(r"[a-z][a-z0-9_]*")
PREFIX = re.compile(r"([A-Za-z0-9_./-]{0,19}[A-Za-z_./-])?")
KEYS = ("name", "field", "when", "event", "group")
GROUP_KEYS = ("name", "when", "start", "prefix", "width")
MAX_NUMBER = 10**12
MAX_WIDTH = 12
DIGITS = "0123456789"


class AssignStatus(StrEnum):
    """The codes of an assign rule's ``R_status`` (its own: a message rule's are in
    common.pipeline)."""

    BASELINE = "baseline"  # there before go-live (admin baseline): never given an ID by us
    ASSIGNED = "assigned"  # given an ID by the rule
    KEPT = "kept"  # the field held a value (typed by hand) when the rule first applied
    SKIPPED = "skipped"  # no ID given; the reason is in R_error_code / R_error_message
    NEEDS_REVIEW = "needs_review"  # REDCap refused the write


CODES = tuple(status.value for status in AssignStatus)
# What a person can send back to the rule (admin requeue): it then decides again.
REQUEUEABLE = frozenset({AssignStatus.SKIPPED, AssignStatus.NEEDS_REVIEW})


@dataclass(frozen=True)
class AssignFields:
    """The names of an assign rule's own REDCap fields, ``{prefix}_status`` ..., and what each
    holds (:meth:`kinds`, for the project check and ``admin instrument``)."""

    prefix: str
    form: str

    def name(self, suffix: str) -> str:
        return f"{self.prefix}_{suffix}"

    @property
    def status(self) -> str:
        return self.name("status")

    @property
    def group(self) -> str:
        return self.name("group")

    @property
    def assigned_at(self) -> str:
        return self.name("assigned_at")

    @property
    def error_code(self) -> str:
        return self.name("error_code")

    @property
    def error_message(self) -> str:
        return self.name("error_message")

    @property
    def codes(self) -> tuple[str, ...]:
        return CODES

    def kinds(self) -> dict[str, Kind]:
        """Every field of the rule and what it holds, in instrument order."""
        return {
            self.status: Kind.CHOICE,
            self.group: Kind.TEXT,
            self.assigned_at: Kind.TIME,
            self.error_code: Kind.TEXT,
            self.error_message: Kind.TEXT,
        }


@dataclass(frozen=True)
class AssignGroup:
    """One group of an assign rule: which records it takes and its run of numbers,
    ``start`` up to (not including) ``limit``, the next start of a group with its prefix."""

    name: str
    when: str  # "" for the only group: every record the rule applies to
    start: int
    prefix: str = ""
    width: int = 0
    limit: int | None = None

    def format(self, number: int) -> str:
        """The ID ``number`` gives in this group, e.g. ``HC-3000``."""
        return f"{self.prefix}{number:0{self.width}d}"

    def holds(self, number: int) -> bool:
        return self.start <= number and (self.limit is None or number < self.limit)


@dataclass(frozen=True)
class AssignRule:
    """A rule giving each record it applies to one ID from its group, written in ``field``."""

    name: str
    field: str
    when: str
    groups: tuple[AssignGroup, ...]
    fields: AssignFields
    event: str = ""

    def group_named(self, name: str) -> AssignGroup | None:
        return next((group for group in self.groups if group.name == name), None)

    def group_of(self, value: str) -> tuple[AssignGroup, int] | None:
        """The group whose run of numbers ``value`` is in, and its number; None for a value
        that is no ID of this rule (typed by hand in another form, or blank)."""
        parsed = split_id(value)
        if parsed is None:
            return None
        prefix, number = parsed
        for group in self.groups:
            if group.prefix == prefix and group.holds(number):
                return group, number
        return None

    def highest(self, values: Sequence[str]) -> dict[str, int]:
        """Per group name, the highest number among ``values`` (the IDs REDCap holds)."""
        found: dict[str, int] = {}
        for value in values:
            match = self.group_of(value)
            if match is not None:
                group, number = match
                found[group.name] = max(found.get(group.name, number), number)
        return found


def split_id(value: str) -> tuple[str, int] | None:
    """``HC-3005`` -> ``("HC-", 3005)``; None when ``value`` does not end in digits."""
    text = value.strip()
    digits = len(text) - len(text.rstrip(DIGITS))
    if not digits:
        return None
    return text[:-digits], int(text[-digits:])


# -- reading the tables ---------------------------------------------------------------------------
def parse_assign(
    tables: object, where: str, default_event: str, form: str
) -> tuple[AssignRule, ...]:
    """The ``[[assign]]`` tables of a rules file (``where`` names it); ConfigError naming the
    rule, the key and the fix. ``form`` is the instrument of the rules' own fields."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{where}: assign must be [[assign]] tables, one per ID field")
    rules: list[AssignRule] = []
    for number, table in enumerate(tables, 1):
        rule = _rule(table, f"{where}: assign {number}", default_event, form)
        if any(other.name == rule.name for other in rules):
            raise ConfigError(f"{where}: assign {rule.name!r} is defined twice; rename one")
        if any(other.field == rule.field for other in rules):
            raise ConfigError(
                f"{where}: assign {rule.name!r}: field {rule.field!r} is already given IDs by "
                "another [[assign]]; one rule per field"
            )
        rules.append(rule)
    return tuple(rules)


def _rule(table: Mapping[str, Any], where: str, default_event: str, form: str) -> AssignRule:
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: name must be lower-case letters, digits and _ (it prefixes the rule's "
            'REDCap fields), e.g. name = "study_id"'
        )
    where = f"{where.rsplit(': assign', 1)[0]}: assign {name!r}"
    _known(table, KEYS, where)
    field = _text(table, "field", where)
    if not NAME.fullmatch(field):
        raise ConfigError(
            f"{where}: field must name the REDCap field that receives the ID (a variable name), "
            'e.g. field = "study_id"'
        )
    when = _text(table, "when", where)
    if not when:
        raise ConfigError(
            f"{where}: when is missing; it is REDCap logic saying who gets an ID, e.g. "
            "\"[eligible] = '1'\""
        )
    event = table.get("event", "")
    if not isinstance(event, str) or (event and not NAME.fullmatch(event)):
        raise ConfigError(f'{where}: event must be a unique event name, e.g. "enrollment_arm_1"')
    specs = table.get("group")
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise ConfigError(
            f"{where}: no groups; add at least one [[assign.group]] table with name and start"
        )
    groups = [
        _group(spec, f"{where}: group {n}", alone=len(specs) == 1)
        for n, spec in enumerate(specs, 1)
    ]
    return AssignRule(
        name=name,
        field=field,
        when=when,
        groups=_with_limits(groups, where),
        fields=AssignFields(name, form),
        event=event or default_event,
    )


def _group(spec: Mapping[str, Any], where: str, *, alone: bool) -> AssignGroup:
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ConfigError(
            f'{where}: name must be lower-case letters, digits and _, e.g. name = "control"'
        )
    where = f"{where.rsplit(': group', 1)[0]}: group {name!r}"
    _known(spec, GROUP_KEYS, where)
    when = _text(spec, "when", where)
    if not when and not alone:
        raise ConfigError(
            f"{where}: when is missing; with several groups each says which records it takes, "
            "e.g. when = \"[study_group] = '1'\""
        )
    start = _integer(spec, "start", where, required=True, maximum=MAX_NUMBER)
    width = _integer(spec, "width", where, maximum=MAX_WIDTH)
    prefix = spec.get("prefix", "")
    if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"{where}: prefix = {prefix!r} must be at most 20 letters, digits and - _ . /, not "
            'ending in a digit (it would run into the number), e.g. prefix = "HC-"'
        )
    return AssignGroup(name=name, when=when, start=start, prefix=prefix, width=width)


def _with_limits(groups: Sequence[AssignGroup], where: str) -> tuple[AssignGroup, ...]:
    """Each group's limit: the next start among the groups sharing its prefix."""
    names = [group.name for group in groups]
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ConfigError(
            f"{where}: group {twice!r} is defined twice; give each group its own name"
        )
    limited = []
    for group in groups:
        same = sorted(other.start for other in groups if other.prefix == group.prefix)
        if same.count(group.start) > 1:
            raise ConfigError(
                f"{where}: groups with prefix {group.prefix!r} both start at {group.start}; give "
                "each its own start (a group's numbers end where the next one's start)"
            )
        later = [start for start in same if start > group.start]
        limited.append(
            AssignGroup(
                group.name, group.when, group.start, group.prefix, group.width,
                limit=later[0] if later else None,
            )
        )  # fmt: skip
    return tuple(limited)


def _known(table: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    for key in table:
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(keys)}")


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be text in quotes")
    return value.strip()


def _integer(
    table: Mapping[str, Any], key: str, where: str, *, maximum: int, required: bool = False
) -> int:
    if key not in table:
        if required:
            raise ConfigError(
                f"{where}: {key} is missing; give the group's first number, e.g. 3000"
            )
        return 0
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ConfigError(f"{where}: {key} must be a whole number from 0 to {maximum}")
    return value
