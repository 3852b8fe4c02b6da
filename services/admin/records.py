"""The admin commands that change records: ``baseline`` (go-live), ``force`` (send one record
its message now, through the sender's own send path and lock) and ``requeue`` (give a record that
ended in a problem status another go)."""

from __future__ import annotations

from common import logs
from common.errors import ConfigError, RelayError
from common.lock import SENDER, project_lock
from common.pipeline import REQUEUEABLE, Status
from common.runner import EXIT_FAILURE, EXIT_OK
from messaging.context import Context
from messaging.due import newly_true, stop_holds
from messaging.ids import REQUEUEABLE as ID_REQUEUEABLE
from messaging.ids import AssignRule
from messaging.records import RuleRow, export_events, export_fields, rows_for, write
from messaging.rules import Rule
from messaging.send import pacers_for, send_due

ALREADY_MESSAGED = frozenset(
    {
        Status.SENDING,
        Status.SMS_SENT,
        Status.SENT_EMAIL,
        Status.DELIVERED,
        Status.UNDELIVERED,
        Status.UNCONFIRMED,
        Status.NEEDS_REVIEW,
    }
)
SENT = {str(Status.SMS_SENT): "by SMS", str(Status.SENT_EMAIL): "by e-mail"}


# -- baseline -----------------------------------------------------------------------------------
def command_baseline(ctx: Context, rule_name: str | None) -> int:
    """Mark every record a rule already applies to (status blank) ``baseline``; idempotent.
    Every rule (study ID rules too: they never give those records an ID), or only ``--rule``
    (a rule added to a live study)."""
    rules = [ctx.rules.trigger(rule_name)] if rule_name else list(ctx.rules.triggers)
    if isinstance(rules[0], Rule) and rules[0].answer_of:
        raise ConfigError(
            f"--rule {rule_name}: auto-answers follow replies, they have no when to baseline; "
            f"baseline rule {rules[0].answer_of} instead"
        )
    failed = False
    found = newly_true(ctx, rules)
    for rule in rules:
        records = found.get(rule.name, [])
        rows = [
            ctx.layout.row(rid, {rule.fields.status: Status.BASELINE}, rule.event)
            for rid in records
        ]
        refused = write(ctx, rule, rows)
        builtin = isinstance(rule, Rule) and rule.builtin
        where = "" if builtin else f" for rule {rule.name}"
        never = "given an ID" if isinstance(rule, AssignRule) else "messaged"
        print(
            f"marked {len(records) - len(refused)} record(s) baseline{where}; they will never be "
            f"{never} by it"
        )
        if refused:
            print(
                f"REDCap refused {len(refused)} record(s); they are needs_review: "
                + ", ".join(sorted(refused))
            )
            failed = True
    return EXIT_FAILURE if failed else EXIT_OK


# -- force, requeue -----------------------------------------------------------------------------
def _one(ctx: Context, rule: Rule, record: str) -> RuleRow:
    rows = ctx.redcap.export(
        export_fields(ctx, [rule]), records=[record], events=export_events(ctx, [rule])
    )
    mine = rows_for(ctx, rule, rows)
    if not mine:
        raise RelayError(f"record {record!r} does not exist in project {ctx.layout.project_id}")
    return mine[0]


def command_force(
    ctx: Context, rule: Rule, record: str, resend: bool, ignore_stop: bool = False
) -> int:
    """Send ``record`` the rule's message now (no delay, no quiet hours), under the sender's
    lock; what became of it is read back from REDCap. The rule's ``stop_when`` is honoured as
    the sender honours it (a record it holds for is refused) unless ``ignore_stop``."""
    lock = project_lock(ctx.settings.lock_dir, ctx.layout.project_id, SENDER).acquire()
    try:
        row = _one(ctx, rule, record)
        if row.status in ALREADY_MESSAGED and not resend:
            print(
                f"record {record} is {row.status}: it was already messaged; "
                "add --resend to send it again anyway"
            )
            return EXIT_FAILURE
        if row.status == Status.BASELINE:
            print(f"note: record {record} is baseline (pre-go-live); sending because you asked")
        if stop_holds(ctx, [row]):
            if not ignore_stop:
                print(
                    f"record {record}: rule {rule.name}'s stop_when holds ({rule.stop_when}), so "
                    "the sender would cancel this message; add --ignore-stop to send it anyway"
                )
                return EXIT_FAILURE
            print(
                f"note: rule {rule.name}'s stop_when holds for record {record}; sending "
                "anyway (--ignore-stop)"
            )
        send_due(ctx, [row], pacers_for(ctx), lambda: False)
        after = _one(ctx, rule, record)
    finally:
        lock.release()
    if after.status in SENT:
        print(f"record {record}: sent {SENT[after.status]}")
        return EXIT_OK
    f = rule.fields
    why = after.get(f.error_message) or after.get(f.error_code) or "see the sender's log"
    print(f"record {record} not sent: {after.status or 'no status'} ({why})")
    return EXIT_FAILURE


def command_requeue(ctx: Context, rule: Rule | AssignRule, record: str) -> int:
    if isinstance(rule, AssignRule):
        return _requeue_id(ctx, rule, record)
    row = _one(ctx, rule, record)
    if row.status not in REQUEUEABLE:
        allowed = ", ".join(sorted(REQUEUEABLE))
        print(
            f"record {record} is {row.status or 'not registered'}; only {allowed} can be requeued"
        )
        return EXIT_FAILURE
    f = rule.fields
    # The series count stays: a requeued record gets the message it did not get, not a repeat.
    kept = (f.status, f.registered_at, f.count)
    cleared = {name: "" for name in f.kinds() if name not in kept}
    cleared.update({f.status: Status.REGISTERED, f.attempts: "0"})
    # overwrite: the blank values erase the previous attempt's SID, times and error.
    ctx.redcap.import_rows([ctx.layout.row(record, cleared, rule.event)], overwrite=True)
    logs.transition(
        ctx.log, record, row.status, Status.REGISTERED, reason="requeued", rule=rule.name
    )
    print(f"record {record}: {row.status} -> registered; the sender will message it next cycle")
    return EXIT_OK


def _requeue_id(ctx: Context, rule: AssignRule, record: str) -> int:
    """A study ID rule decides again for a skipped or needs_review record: its status and reason
    are blanked (the ID field is never touched), and the detector's next cycle gives it its ID
    if the rule's ``when`` and one group's hold."""
    f, event = rule.fields, ctx.layout.event_for(rule.event)
    rows = ctx.redcap.export(
        [ctx.layout.record_id_field, f.status], records=[record], events=[event] if event else None
    )
    if not rows:
        raise RelayError(f"record {record!r} does not exist in project {ctx.layout.project_id}")
    status = rows[0].get(f.status, "")
    if status not in ID_REQUEUEABLE:
        allowed = ", ".join(sorted(ID_REQUEUEABLE))
        print(f"record {record} is {status or 'not handled yet'}; only {allowed} can be requeued")
        return EXIT_FAILURE
    cleared = {name: "" for name in f.kinds()}
    ctx.redcap.import_rows([ctx.layout.row(record, cleared, rule.event)], overwrite=True)
    logs.transition(ctx.log, record, status, "", reason="requeued", rule=rule.name)
    print(f"record {record}: {status} -> blank; the detector decides its ID next cycle")
    return EXIT_OK
