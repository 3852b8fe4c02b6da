"""Claims two senders cannot both hold, whatever host each runs on: :func:`take`.

The OS lock (:mod:`common.lock`) keeps a second sender off one machine. Two machines (two VMs, a
VM and a CronJob, two clusters) share nothing but REDCap, and REDCap has no compare-and-set: an
import just overwrites. So a claim follows Fischer's timed mutual exclusion, on the rule's
fields, with Δ = CLAIM_SETTLE_SECONDS:

1. **read**: export the chunk's status, claim token (``R_sms_claim``), claim time and count;
   keep only the records still exactly as the cycle's export had them (nobody else moved them);
2. **write**: one import claims them, with a token new for this claim: random, ``@`` this host;
3. if more than Δ passed from the start of 1 to REDCap's answer to 2, **give up**: the claim
   may have landed too late to be safe. Nothing is sent; each such record is marked
   ``claim_slow`` and reconciled after SMS_CLAIM_TIMEOUT_SECONDS like any claim (Twilio or Sent
   Items says whether anyone sent it), without counting as an interruption;
4. **wait** Δ after that answer, then **read again**: send only what still holds our token.

**Why it is safe.** Suppose senders A and B both pass 4 for a record, and A's claim landed
first. B's check came at least Δ after B's write, and found B's token, so A's check (which
found A's token) came before B's write landed; A's check was at least Δ after A's write, so B's
write landed more than Δ after A's. B's write landed within Δ of B's read (step 3), so B read
after A's claim had landed, saw the record changed, and never claimed it. Contradiction.

**The timing assumption** is only this: every host uses the same CLAIM_SETTLE_SECONDS, and each
host measures time steadily (a monotonic clock; the hosts' clocks need not agree). A write
REDCap takes longer than Δ to apply is caught by step 3. What step 3 cannot see is a request
REDCap applies long after it answered (it never does: an import is applied before its answer),
or a host whose monotonic clock runs at a different rate by more than the margin (a paused VM
resumed mid-claim: it sees less time pass than did). Broken that way, two hosts could both send
one message: the cost of the protection is Δ per chunk, so Δ is seconds, not minutes.

Each token names its host, so ``admin check`` can say when another host's sender is claiming
in this project (:func:`other_hosts`).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from common.field_types import WITH_SECONDS
from common.pipeline import Status
from common.project import Layout
from common.redcap_client import RedcapClient
from common.writes import MESSAGE_LIMIT
from messaging.context import Context
from messaging.records import RuleRow, any_of, rows_for, values_row, write
from messaging.rules import Rule

CLAIM_SLOW = "claim_slow"  # error code of a claim given up at step 3 (nothing was sent)
HOST_LENGTH = 40  # characters of the host name a token carries


def host_id() -> str:
    """This machine's name as a claim token carries it (never secret: a hostname)."""
    return (socket.gethostname() or "unknown-host")[:HOST_LENGTH]


def new_token() -> str:
    """A claim token: 16 random hex digits, ``@``, this host."""
    return f"{secrets.token_hex(8)}@{host_id()}"


def token_host(token: str) -> str:
    return token.partition("@")[2]


@dataclass
class Held:
    """What :func:`take` got: the records whose claim is ours after the settle (``mine``), those
    another sender moved or holds (``taken``), those REDCap refused, and whether the claim was
    given up as too slow (then ``mine`` is empty)."""

    mine: list[str] = field(default_factory=list)
    taken: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    slow: bool = False


def take(ctx: Context, rule: Rule, claims: Sequence[tuple[RuleRow, Mapping[str, str]]]) -> Held:
    """Claim each ``(row, values)`` of one rule (``values``: the claim's fields, written in one
    import with the token) by the module docstring's steps."""
    held = Held()
    if not claims:
        return held
    f, clock, settle = rule.fields, ctx.clock, ctx.settings.claim_settle_seconds
    started = clock.monotonic()
    now = _read(ctx, rule, [row.record_id for row, _ in claims])
    free = [(row, values) for row, values in claims if _unchanged(row, now.get(row.record_id))]
    moved = {row.record_id for row, _ in claims} - {row.record_id for row, _ in free}
    held.taken = [row.record_id for row, _ in claims if row.record_id in moved]
    if not free:
        return held
    token = new_token()
    rows = [values_row(ctx, row, {**values, f.claim: token}) for row, values in free]
    held.refused = write(ctx, rule, rows, overwrite=True)
    claimed = [row for row, _ in free if row.record_id not in held.refused]
    took = clock.monotonic() - started
    if took > settle:
        held.slow = True
        _mark_slow(ctx, rule, claimed, took)
        return held
    clock.sleep(settle)  # not cut short by a stop request: a shorter wait proves nothing
    after = _read(ctx, rule, [row.record_id for row in claimed])
    for row in claimed:
        values = after.get(row.record_id, {})
        if values.get(f.status) == Status.SENDING and values.get(f.claim) == token:
            held.mine.append(row.record_id)
        else:
            held.taken.append(row.record_id)
    return held


def settle(
    ctx: Context, rule: Rule, rows: Sequence[RuleRow], out: Sequence[dict[str, str]]
) -> list[str]:
    """Write reconciliation's outcomes ``out`` (one row per record) for the stale claims
    ``rows`` of one rule, but only where REDCap still holds exactly the claim that was read:
    another host's sender may have settled or claimed the record since. The read and the write
    follow steps 1-3 above, so that a sender claiming the record after another settled it is
    never overwritten by a settle based on the older claim. Returns the records left alone."""
    if not out:
        return []
    key = ctx.layout.record_id_field
    started = ctx.clock.monotonic()
    now = _read(ctx, rule, [row.record_id for row in rows])
    keep = {row.record_id for row in rows if _unchanged(row, now.get(row.record_id))}
    write(ctx, rule, [values for values in out if values[key] in keep])
    took = ctx.clock.monotonic() - started
    if took > ctx.settings.claim_settle_seconds:
        ctx.log.warning(
            "rule=%s settling %d stale claim(s) took %.1f s (more than CLAIM_SETTLE_SECONDS): "
            "if another host's sender runs on this project, look at these records",
            rule.name, len(keep), took,
        )  # fmt: skip
    return [row.record_id for row in rows if row.record_id not in keep]


def _fields(rule: Rule) -> list[str]:
    f = rule.fields
    return [name for name in (f.status, f.claim, f.claimed_at, f.count) if name]


def _read(ctx: Context, rule: Rule, records: Sequence[str]) -> dict[str, dict[str, str]]:
    """The claim fields of ``records`` as REDCap holds them now (one export)."""
    if not records:
        return {}
    event = ctx.layout.event_for(rule.event)
    raw = ctx.redcap.export(
        [ctx.layout.record_id_field, *_fields(rule)],
        records=list(records),
        events=[event] if event else None,
    )
    return {row.record_id: row.values for row in rows_for(ctx, rule, raw)}


def _unchanged(row: RuleRow, now: Mapping[str, str] | None) -> bool:
    """The record's claim fields are as the cycle's export had them: nobody claimed, sent or
    settled it meanwhile."""
    return now is not None and all(now.get(name, "") == row.get(name) for name in _fields(row.rule))


def _mark_slow(ctx: Context, rule: Rule, rows: Sequence[RuleRow], took: float) -> None:
    """Say on each record why it was claimed and not sent. Only the reason is written: the
    status and token stay as they are (a claim too slow to trust is not ours to give back)."""
    f, settle = rule.fields, ctx.settings.claim_settle_seconds
    why = (
        f"REDCap took {took:.1f} s to take the claim, more than CLAIM_SETTLE_SECONDS "
        f"({settle:g}): not sent; it is checked and sent after SMS_CLAIM_TIMEOUT_SECONDS"
    )[:MESSAGE_LIMIT]
    ctx.log.warning(
        "rule=%s claim of %d record(s) took %.1f s (CLAIM_SETTLE_SECONDS=%g): not sending them "
        "now; they are reconciled after the claim timeout",
        rule.name, len(rows), took, settle,
    )  # fmt: skip
    values = {f.error_code: CLAIM_SLOW, f.error_message: why}
    write(ctx, rule, [values_row(ctx, row, values) for row in rows])


def other_hosts(
    redcap: RedcapClient, layout: Layout, rules: Sequence[Rule], tz: ZoneInfo, since: datetime
) -> dict[str, tuple[str, str, datetime]]:
    """Per host other than this one whose sender claimed in this project since ``since``: the
    rule, record and time of its newest claim (one export, filtered on the claim times)."""
    text = since.astimezone(tz).strftime(WITH_SECONDS)
    fields, parts, events = [layout.record_id_field], [], set()
    for rule in rules:
        event = layout.event_for(rule.event)
        at = f"[{event}][{rule.fields.claimed_at}]" if event else f"[{rule.fields.claimed_at}]"
        parts.append(f"{at} >= '{text}'")
        fields += [rule.fields.claim, rule.fields.claimed_at]
        events.add(event)
    raw = redcap.export(
        list(dict.fromkeys(fields)),
        any_of(parts),
        events=sorted(e for e in events if e) or None,
    )
    here, found = host_id(), dict[str, tuple[str, str, datetime]]()
    for rule in rules:
        event = layout.event_for(rule.event)
        for values in raw:
            if event is not None and values.get("redcap_event_name") != event:
                continue
            row = RuleRow(rule, values[layout.record_id_field], values)
            host = token_host(row.get(rule.fields.claim))
            when = row.time(rule.fields.claimed_at, tz)
            if not host or host == here or when is None or when < since:
                continue
            if host not in found or when > found[host][2]:
                found[host] = (rule.name, row.record_id, when)
    return found
