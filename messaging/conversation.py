"""The conversation log: every message we sent and every text we read, on the record in REDCap.

With CONVERSATION_LOG=1 each record's thread is a repeating instrument, ``relay_message`` (in
REDCAP_EVENT on longitudinal projects), one instance per message: direction, rule, channel,
time, SID (Twilio's, or an e-mail's ``x-redcap-relay-id``), status, the text, and for a text from
the participant the answer it was read as and whether it was ambiguous (a shared phone). REDCap
holds it under its own user rights, audit trail and reports; our logs never hold a text.

**Exactly once per SID.** REDCap gives an instance its number from the import: an explicit
number, or ``"new"`` (the next one). A retried import with ``"new"`` appends a second copy
(REDCAP_API.md §4.4, §6), and a counter we kept would be wrong after any crash, so neither is
used. Before each write the records' threads are read (their SIDs only, one export for all the
records of the write) and an entry whose SID the record already holds is never written again;
the others get the numbers after the highest instance there (an instance without a SID, a
message staff are writing, counts too). The sender writes a message's entry in an import of its
own *before* the outcome (``sms_sent``), and the delivery checker a final status before the
record's, so a crash between the two leaves the outcome to be written again and the entry,
found by its SID, is not; the reply poller writes a text's entry in the same import as the
reply.

**Several writers.** The sender, the delivery checker, the reply poller and staff in REDCap's
forms all add instances to one record. Two that read the same highest number and write the same
next one would leave one entry overwritten: every write is read back (one more export, on
cycles that wrote), and an entry found displaced is written again at a new number. What stays
is a crash inside that one read-back, between two writers racing on one record in the same
second; ``docs/conversations.md`` says how a coordinator would see it.

**Waiting for a person.** A text that is not a clear answer (unclear, free text, a text to a
rule without replies or after its window, or ambiguous) sets ``relay_conversation_waiting`` to
its time, unless an older one already waits; a coordinator answers (by phone, or a message) and
blanks the field. ``admin status`` counts the records waiting and the oldest wait; the report
recipe ``redcap/REPORTS.md`` lists them.

**Cost.** Nothing on an idle cycle. The sender, per chunk of messages sent (up to ten): one
export of the threads' SIDs of those records (a row per message they hold, about 175 bytes
each), one import, one read-back; the reply poller: the export and the read-back, its entries
riding in its own imports (``bench/conversation_cost.py``, docs/PERFORMANCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from common.errors import RedcapRejected, RedcapUnavailable
from messaging.context import Context
from messaging.thread import (
    AMBIGUOUS,
    ANSWER,
    AT,
    CHANNEL,
    DIRECTION,
    FORM,
    KINDS,
    RULE,
    SID,
    STATUS,
    TEXT,
    WAITING,
    Entry,
    instance,
)

ATTEMPTS = 3  # writes of one entry displaced again and again before giving up (logged)
Entries = Mapping[str, Sequence[Entry]]  # record id -> its new entries, oldest first


def enabled(ctx: Context) -> bool:
    return ctx.settings.conversation_log


@dataclass
class Plan:
    """A write of new entries: the instance rows per record, the waiting marks to set on the
    records' own rows (REDCAP_EVENT), and where each entry goes."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # record id -> WAITING's value
    placed: list[tuple[str, int, Entry]] = field(default_factory=list)

    def all_rows(self, ctx: Context) -> list[dict[str, str]]:
        marks = [ctx.layout.row(rid, {WAITING: at}) for rid, at in self.waiting.items()]
        return [*(row for rows in self.rows.values() for row in rows), *marks]


def log(ctx: Context, entries: Entries) -> int:
    """Write ``entries`` not yet on their records in an import of their own (one export, one
    import, one read-back) and mark the records with a text waiting for a person; the number of
    entries written."""
    if not enabled(ctx):
        return 0
    planned = plan(ctx, entries)
    if not planned.placed:
        return 0
    ctx.redcap.import_rows(planned.all_rows(ctx), overwrite=True)
    return confirm(ctx, planned)


def log_sent(ctx: Context, logged: dict[str, list[Entry]]) -> None:
    """The entries of messages sent (``logged``, emptied), written before their outcome: a
    crash between leaves the outcome to reconciliation, which finds the entry by its id. REDCap
    refusing the log is logged and never keeps an outcome from REDCap."""
    if not logged:
        return
    try:
        log(ctx, logged)
    except RedcapRejected as exc:
        records = ",".join(sorted(logged))
        ctx.log.error("conversation log of records %s refused by REDCap: %s", records, exc)
    except RedcapUnavailable as exc:
        # The outcome comes first for the participant: it goes on (and fails the same way if
        # REDCap is down, leaving it to reconciliation); an SMS's entry is then made, without
        # its text, when its delivery report comes (statuses).
        records = ",".join(sorted(logged))
        ctx.log.warning("conversation log of records %s not written: %s", records, exc)
    logged.clear()


def plan(ctx: Context, entries: Entries) -> Plan:
    """Read the records' threads (one export) and number the entries whose SID their record
    does not hold after its highest instance; nothing when the log is off."""
    entries = {rid: list(e) for rid, e in entries.items() if e}
    planned = Plan()
    if not enabled(ctx) or not entries:
        return planned
    threads = _threads(ctx, list(entries))
    for rid, new in entries.items():
        held = dict(threads.get(rid, {}))
        top = max(held.values(), default=0)
        waiting: datetime | None = None
        for entry in new:
            if entry.sid in held:
                continue
            top += 1
            held[entry.sid] = top
            planned.placed.append((rid, top, entry))
            planned.rows.setdefault(rid, []).append(_row(ctx, rid, top, entry))
            if entry.waits and (waiting is None or entry.at < waiting):
                waiting = entry.at
        if waiting is not None and "" not in threads.get(rid, {}):
            planned.waiting[rid] = ctx.stamp(WAITING, waiting)
    return planned


def confirm(ctx: Context, planned: Plan, attempt: int = 1) -> int:
    """After the import that carried ``planned``: read the threads back (one export); an entry
    another writer displaced (the same number, written after ours) is written again at a new
    number. The number of entries found where they were put."""
    if not planned.placed:
        return 0
    after = _threads(ctx, sorted({rid for rid, _, _ in planned.placed}))
    displaced: dict[str, list[Entry]] = {}
    found = 0
    for rid, _instance, entry in planned.placed:
        if entry.sid in after.get(rid, {}):
            found += 1
        else:
            displaced.setdefault(rid, []).append(entry)
    if not displaced:
        return found
    records = ",".join(sorted(displaced))
    if attempt >= ATTEMPTS:
        ctx.log.error(
            "conversation log: entries of records %s displaced %d times; not logged",
            records, attempt,
        )  # fmt: skip
        return found
    ctx.log.warning(
        "conversation log: %d entries displaced by another writer (records %s); written again",
        sum(map(len, displaced.values())), records,
    )  # fmt: skip
    again = plan(ctx, displaced)
    if again.placed:
        ctx.redcap.import_rows(again.all_rows(ctx), overwrite=True)
    return found + confirm(ctx, again, attempt + 1)


def statuses(ctx: Context, finals: Mapping[str, Mapping[str, str]], make: Entries) -> None:
    """The final status of messages already logged (record -> SID -> status), written on the
    instance holding each SID; a message not on its record's thread (sent before the log was
    on, or its entry lost) is logged from ``make`` instead."""
    if not enabled(ctx) or not finals:
        return
    threads = _threads(ctx, list(finals))
    rows = []
    missing: dict[str, list[Entry]] = {}
    for rid, by_sid in finals.items():
        for sid, status in by_sid.items():
            instance = threads.get(rid, {}).get(sid)
            if instance is not None:
                rows.append(instance_row(ctx, rid, instance, {STATUS: status}))
            else:
                missing.setdefault(rid, []).extend(e for e in make.get(rid, ()) if e.sid == sid)
    if rows:
        ctx.redcap.import_rows(rows)
    if missing:
        log(ctx, missing)


# -- reading and writing instances ---------------------------------------------------------------
def _threads(ctx: Context, records: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each record's logged SIDs and their instance numbers (an instance without one, a message
    staff are writing, as ``#N``: its number is taken too); the waiting mark as SID ``""``
    (instance 0) when set."""
    key = ctx.layout.record_id_field
    fields, events = [key, SID, WAITING], ctx.layout.events
    raw = ctx.redcap.export(fields, records=records, events=events, instances=True)
    threads: dict[str, dict[str, int]] = {rid: {} for rid in records}
    for row in raw:
        thread = threads.setdefault(row[key], {})
        if (number := instance(row, ctx.layout.event)) is not None:
            thread[row.get(SID) or f"#{number}"] = number
        elif not row.get("redcap_repeat_instrument") and row.get(WAITING, "").strip():
            thread[""] = 0
    return threads


def _row(ctx: Context, rid: str, instance: int, entry: Entry) -> dict[str, str]:
    return instance_row(
        ctx,
        rid,
        instance,
        {
            **dict.fromkeys(KINDS, ""),  # every field: a displaced instance is wholly its writer's
            DIRECTION: entry.direction,
            RULE: entry.rule,
            CHANNEL: entry.channel,
            AT: ctx.stamp(AT, entry.at),
            SID: entry.sid,
            STATUS: entry.status,
            TEXT: entry.text,
            ANSWER: entry.answer,
            AMBIGUOUS: "1" if entry.ambiguous else "0",
        },
    )


def instance_row(
    ctx: Context, rid: str, instance: int, values: Mapping[str, str]
) -> dict[str, str]:
    """An import row for one instance of a record's thread, in REDCAP_EVENT."""
    row = ctx.layout.row(rid, {})
    row.update(
        {"redcap_repeat_instrument": FORM, "redcap_repeat_instance": str(instance), **values}
    )
    return row
