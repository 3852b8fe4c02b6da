"""Change probes and sweeps: what each cycle asks REDCap, so that REDCap's work follows what
changed, not the size of the project.

REDCap evaluates a ``filterLogic`` row by row over every record it is asked about. A full export
every cycle therefore costs it the whole project each ``POLL_INTERVAL_SECONDS``. Instead:

- A **sweep** (at start, then every ``SWEEP_MINUTES``) is the service's full export, its filter
  written for ``now + SWEEP_MINUTES`` (the *horizon*): it returns every record that is or will
  become due before the next sweep. The service keeps those record ids and when each becomes due
  as its **schedule**, in memory only.
- Every other cycle is a **probe**: the same filter (same horizon) on the records REDCap logged
  a change of since the previous cycle (``dateRangeBegin``), plus, when the schedule names
  records due by now, one export of just those (``records=``). Only fresh rows are acted on: the
  schedule narrows which records are asked about, the filter decides, so a stale schedule costs
  an export, never a wrong send. A restart is a sweep: nothing is kept outside REDCap.

**REDCap's clock.** ``dateRangeBegin`` is compared with REDCap's log, kept in the server's local
time. The window starts at REDCap's own time at the previous cycle's first answer (its ``Date``
header), never ours, so a host clock off by minutes moves nothing; minus :data:`MARGIN`; written
in ``REDCAP_TIMEZONE``. A window across a fall-back hour starts an hour earlier (local times
repeat). Without a ``Date`` header the next cycle is a sweep.

**The margin** (:data:`MARGIN`, two minutes) covers what lies between REDCap's clock reading and
its log: the ``Date`` header's whole seconds and the request's own duration, and a change whose
log time was taken before a long import committed (REDCap stamps the log entry when it writes it,
inside the import). Each change is then seen by one or two probes; the filter makes the second
a no-op. A wrong ``REDCAP_TIMEZONE`` (an hour off, say) can only delay a change to the next
sweep.

**What no log shows.** Logic that turns true with time alone (``today``, ``now``, ``datediff``
against them in a rule's ``when``) changes nothing in the log: such rules are found again at each
sweep, so their latency is ``SWEEP_MINUTES`` (``admin check`` lists them). The sender's own times
(delays, anchors, repeats, claim timeouts) are in its filter's horizon, so they come from the
schedule on time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from common.redcap_client import RedcapClient
from common.settings import Settings

MARGIN = timedelta(minutes=2)
# The columns that name one export row (the record id column is the project's own).
ROW_KEYS = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")

Rows = list[dict[str, str]]
# What a service asks REDCap: (changed since, in REDCap's local time; only these records) -> rows
Export = Callable[[datetime | None, Sequence[str] | None], Rows]


@dataclass(frozen=True)
class Plan:
    """What this cycle asks: a sweep, or a probe of the changes since ``since`` plus ``due``."""

    sweep: bool
    at: datetime  # our clock, when the cycle began
    horizon: datetime  # the "now" the filter is written for
    since: datetime | None = None  # REDCap local time, naive; None on a sweep
    due: tuple[str, ...] = ()  # scheduled records whose time has come

    @property
    def kind(self) -> str:
        return "sweep" if self.sweep else "probe"


@dataclass
class Watch:
    """A service's in-memory schedule and where its last cycle left REDCap's log (see the module
    docstring). Lost with the process, which then starts with a sweep."""

    schedule: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (rule, record)
    # Rows a service keeps between sweeps, by (rule, record): the delivery checker's messages
    # awaiting Twilio's report, unchanged in REDCap since they were read. (RuleRow values: that
    # module builds on the context, which holds this one.)
    rows: dict[tuple[str, str], Any] = field(default_factory=dict)
    swept_at: datetime | None = None  # our clock, at the last sweep
    asked_at: datetime | None = None  # REDCap's clock (UTC), at the previous cycle's first answer
    mode: str = "auto"  # "auto"; "sweep" or "probe" for a --once run
    window: timedelta = timedelta(0)  # --once --probe: the changes of this span

    def plan(self, settings: Settings, now: datetime) -> Plan:
        """This cycle's plan: a sweep when none was made, when SWEEP_MINUTES have passed (or
        our clock went back), when REDCap's clock is unknown, or when probes are off."""
        every = timedelta(minutes=settings.sweep_minutes)
        if self.mode == "sweep":  # a --once sweep keeps no schedule: what is due now
            return Plan(sweep=True, at=now, horizon=now)
        if self.mode == "probe":
            return self._probe(settings, now, now, self.window)
        stale = self.swept_at is None or not now - every < self.swept_at <= now
        if not every or stale or self.asked_at is None:
            return Plan(sweep=True, at=now, horizon=now + every)
        return self._probe(settings, now, now + every, timedelta(0))

    def _probe(self, settings: Settings, now: datetime, horizon: datetime, back: timedelta) -> Plan:
        assert self.asked_at is not None
        since = redcap_local(self.asked_at - back - MARGIN, self.asked_at, settings.redcap_timezone)
        due = sorted({record for (_, record), when in self.schedule.items() if when <= now})
        return Plan(sweep=False, at=now, horizon=horizon, since=since, due=tuple(due))

    def fetch(self, redcap: RedcapClient, plan: Plan, export: Export, key: str) -> Rows:
        """This cycle's fresh rows (one export on a sweep or an idle probe; two with records
        due); clears the schedule of every record they name (or all of it on a sweep): the
        service notes again what is still to come. A sweep dates the next from ``plan.at``."""
        rows = export(None, None) if plan.sweep else export(plan.since, None)
        if self.mode == "auto":
            self.asked_at = redcap.answered_at()
        if plan.due:
            seen = {_row_key(row, key) for row in rows}
            rows += [row for row in export(None, plan.due) if _row_key(row, key) not in seen]
        if plan.sweep:
            self.schedule.clear()
            if self.mode == "auto":
                self.swept_at = plan.at  # the next sweep is dated from this one
        else:
            named = {row[key] for row in rows} | set(plan.due)
            self.schedule = {k: v for k, v in self.schedule.items() if k[1] not in named}
        return rows

    def note(self, rule: str, record: str, when: datetime) -> None:
        """Ask about ``record`` again at ``when`` (for ``rule``; the earliest time wins)."""
        key = (rule, record)
        known = self.schedule.get(key)
        if known is None or when < known:
            self.schedule[key] = when

    def waiting(self, now: datetime, within: timedelta) -> int:
        """Scheduled (rule, record) pairs due after ``now`` but within ``within``."""
        return sum(1 for when in self.schedule.values() if now < when <= now + within)


def redcap_local(moment: datetime, until: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` as REDCap's log writes it (local wall time in ``zone``, no zone, whole
    seconds), moved back by the hour a fall-back between ``moment`` and ``until`` repeats."""
    local, later = moment.astimezone(zone), until.astimezone(zone)
    back = (local.utcoffset() or timedelta(0)) - (later.utcoffset() or timedelta(0))
    naive = local.replace(tzinfo=None, microsecond=0)
    return naive - back if back > timedelta(0) else naive


def _row_key(row: dict[str, str], key: str) -> tuple[str, ...]:
    return (row[key], *(row.get(name, "") for name in ROW_KEYS))
