"""The data dictionary rows (CSV, REDCap's column order) of every rule's fields: what
``admin instrument`` prints, to append to the project's dictionary on REDCap's Data Dictionary
page, and what the sandbox adds to a project. For the built-in rule it is exactly
``redcap/pipeline_instrument.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable

from common.field_types import Kind
from common.pipeline import Status
from messaging import thread
from messaging.ids import AssignRule, AssignStatus
from messaging.line_types import LINE_TYPES
from messaging.replies import OPT_OUT, OPT_OUT_AT, OPT_SID, RECORD_KINDS, REPLIES_READ
from messaging.rules import RULES_FORM, Rule, Rules

HEADER = (
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
)
TIME_NOTE = "Local time (TIMEZONE)"
STATUS_LABELS = {
    Status.BASELINE: "Baseline (there before go-live; never messaged)",
    Status.REGISTERED: "Registered (waiting for the SMS delay)",
    Status.SENDING: "Sending (claimed by the sender)",
    Status.SMS_SENT: "SMS sent (waiting for delivery report)",
    Status.SENT_EMAIL: "E-mail sent (accepted by Microsoft 365; e-mail has no delivery report)",
    Status.DELIVERED: "Delivered",
    Status.UNDELIVERED: "Undelivered",
    Status.FAILED: "Failed",
    Status.SKIPPED: "Skipped (no usable phone or not allowed)",
    Status.UNCONFIRMED: "Unconfirmed (no delivery report in time)",
    Status.NEEDS_REVIEW: "Needs review",
    Status.CANCELLED: "Cancelled (its stop_when held when it was due)",
    Status.EXPIRED: "Expired (its anchor time passed before it could go)",
}
# suffix -> (label, field note)
LABELS = {
    "status": ("Pipeline status", ""),
    "registered_at": ("Registration detected at", TIME_NOTE),
    "sms_claimed_at": ("SMS claimed for sending at", TIME_NOTE),
    "sms_claim": (
        "Claim token of the sender sending it",
        "Random token @ host; keeps two senders from both sending",
    ),
    "sms_sent_at": ("SMS accepted by Twilio at", TIME_NOTE),
    "delivery_checked_at": ("Delivery last checked at", TIME_NOTE),
    "sms_attempts": ("SMS send attempts", ""),
    "sms_interrupted": (
        "Sends interrupted by a stopped sender",
        "Proved unsent; these do not use up attempts",
    ),
    "sms_sid": ("Twilio message SID", ""),
    "sms_to": ("Number texted (E.164)", ""),
    "delivery_status": (
        "Twilio delivery status",
        "queued, sent, delivered, undelivered, failed...",
    ),
    "error_code": ("Error code", "Twilio error code, or a redcap-relay reason code"),
    "error_message": ("Error message", ""),
    "sms_count": ("Messages sent by this rule", "1, then one more per repeat"),
    "sms_ref": ("Fingerprint of the message being sent", "Matches a lost send; not the text"),
    "channel": ("Channel of the last message", "sms or email"),
    "email_to": ("Address e-mailed", ""),
    "alerted_at": ("Staff alerted about this record's problem at", TIME_NOTE),
    "reply": (
        "Reply to the rule's last message",
        "one of the rule's answers, unclear, help, opted_out, opted_in, or ambiguous (a shared "
        "phone: a person decides); only a clear answer replaces it",
    ),
    "reply_at": ("That reply received at", TIME_NOTE),
    "reply_sid": ("Twilio SID of that reply", ""),
    "reply_text": ("Text of that reply", "as the participant wrote it"),
}
OPT_OUT_LABELS = {
    OPT_OUT: ("Opted out of messages (1 = yes)", "Set by a STOP reply; cleared by START"),
    OPT_OUT_AT: ("Opted out at", TIME_NOTE),
    OPT_SID: ("Twilio SID of the last STOP or START", ""),
    REPLIES_READ: (
        "Texts read from the participant's numbers",
        "Twilio time and SID of each, newest first (the lookback window); not the texts",
    ),
}
# Rules that send e-mail: the fields the two channels share say so (the note stays, but for
# the reference's).
EMAIL_LABELS = {
    "sms_claimed_at": "Message claimed for sending at",
    "sms_sent_at": "Message accepted (Twilio or Microsoft 365) at",
    "sms_attempts": "Send attempts",
    "sms_ref": "Reference of the message being sent",
}
EMAIL_NOTES = {"sms_ref": "SMS: a fingerprint, not the text; e-mail: its x-redcap-relay-id header"}
# File rules: their status field's label says which rule, and "registered" means `when` held.
RULE_LABELS = {
    "status": "Status of rule {name}",
    "registered_at": "Rule {name} first applied at",
}


# A study ID rule's fields (messaging.ids): suffix -> (label, field note), and its status codes.
ASSIGN_LABELS = {
    "status": ("Status of study ID rule {name}", "The ID itself is in {field}"),
    "group": ("Group whose ID was given", "The [[assign.group]] name"),
    "assigned_at": ("Rule {name} handled the record at", TIME_NOTE),
    "error_code": ("Why no ID was given (code)", "no_group, several_groups, group_full..."),
    "error_message": ("Why no ID was given", ""),
}
ASSIGN_STATUS_LABELS = {
    AssignStatus.BASELINE: "Baseline (there before go-live; never given an ID by redcap-relay)",
    AssignStatus.ASSIGNED: "Assigned (the ID was given by redcap-relay)",
    AssignStatus.KEPT: "Kept (the ID field already held a value: typed by hand)",
    AssignStatus.SKIPPED: "Skipped (no ID given; see the reason)",
    AssignStatus.NEEDS_REVIEW: "Needs review (REDCap refused the ID)",
}


# The conversation log (messaging.conversation): field -> (label, field note, choices).
CONVERSATION_LABELS = {
    thread.DIRECTION: ("Direction", "", "out, To the participant | in, From the participant"),
    thread.RULE: ("Rule", "the rule that sent it, or whose message it answers", ""),
    thread.CHANNEL: ("Channel", "sms or email", ""),
    thread.AT: ("Sent or received at", TIME_NOTE + "; Twilio's time for SMS", ""),
    thread.SID: (
        "Message id",
        "Twilio SID, or an e-mail's x-redcap-relay-id; one instance per id",
        "",
    ),
    thread.STATUS: (
        "Status",
        "sms_sent, then delivered, undelivered, failed...; sent_email; received",
        "",
    ),
    thread.TEXT: ("Text", "as sent or as the participant wrote it", ""),
    thread.ANSWER: (
        "Read as",
        "the answer the reply was read as (unclear, opted_out...); blank: free text",
        "",
    ),
    thread.AMBIGUOUS: (
        "Ambiguous (shared phone)",
        "1: it may answer another record's message too",
        "0, No | 1, Yes",
    ),
    thread.SEND: (
        "Send this text to the participant",
        "staff: type the Text, tick this and save; redcap-relay sends it once (SMS)",
        "1, Send",
    ),
    thread.CLAIM: ("Claim token of the sender sending it", "set by redcap-relay", ""),
    thread.TO: ("Number texted (E.164)", "set by redcap-relay", ""),
    thread.ERROR: ("Why it was not sent", "set by redcap-relay: skipped or failed, and why", ""),
}
WAITING_LABEL = (
    "Oldest text waiting for a person",
    "Set by the reply poller (unclear or free text); blank it once answered",
)


def instrument_csv(rules: Rules, conversation_log: bool = False, line_types: bool = False) -> str:
    """Every rule's fields (auto-answer companions included, then the study ID rules'), when
    a rule takes replies the record's opt-out fields, with ``conversation_log`` the repeating
    instrument of the conversation log and the record's waiting mark, and with ``line_types``
    (TWILIO_LOOKUP=1) the record's field for Twilio Lookup's answers when a rule texts."""
    lines = [_csv_line(HEADER)]
    for rule in rules.every:
        lines += [_csv_line(row) for row in _rows(rule)]
    for ids in rules.assign:
        lines += [_csv_line(row) for row in _assign_rows(ids)]
    if rules.replying:
        lines += [_csv_line(row) for row in _opt_out_rows()]
    if conversation_log:
        lines += [_csv_line(row) for row in _conversation_rows()]
    if line_types and rules.sends_sms:
        lines.append(_csv_line(_line_types_row()))
    return "".join(lines)


def _line_types_row() -> tuple[str, ...]:
    return (
        LINE_TYPES, RULES_FORM, "Line types (set by the sender, TWILIO_LOOKUP=1)", "notes",
        "Line type of each number texted (Twilio Lookup)", "",
        "One '+E.164 type' line per number, newest first; delete a line to have it asked again",
        "", "", "", "", "", "", "", "", "", "", "",
    )  # fmt: skip


def _conversation_rows() -> list[tuple[str, ...]]:
    label, note = WAITING_LABEL
    rows: list[tuple[str, ...]] = [
        (thread.WAITING, RULES_FORM, "Conversation (set by the reply poller)", "text",
         label, "", note, "datetime_seconds_ymd", "", "", "", "", "", "", "", "", "", "")
    ]  # fmt: skip
    for number, (name, kind) in enumerate(thread.KINDS.items()):
        label, note, choices = CONVERSATION_LABELS[name]
        header = (
            "Message (one instance per message; set by redcap-relay; make this instrument "
            "repeating)"
            if number == 0
            else ""
        )
        field_type = "dropdown" if kind is Kind.CHOICE else "text"
        if name in (thread.TEXT, thread.ERROR):
            field_type = "notes"
        validation = "datetime_seconds_ymd" if kind is Kind.TIME else ""
        identifier = "y" if name in (thread.TEXT, thread.TO) else ""
        rows.append(
            (name, thread.FORM, header, field_type, label, choices, note, validation,
             "", "", identifier, "", "", "", "", "", "", "")
        )  # fmt: skip
    return rows


def _opt_out_rows() -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for number, (name, kind) in enumerate(RECORD_KINDS.items()):
        label, note = OPT_OUT_LABELS[name]
        header = "Opt-out (set by the reply poller; honoured by every rule)" if number == 0 else ""
        validation = "datetime_seconds_ymd" if kind is Kind.TIME else ""
        field_type = "notes" if name == REPLIES_READ else "text"
        rows.append(
            (name, RULES_FORM, header, field_type, label, "", note, validation,
             "", "", "", "", "", "", "", "", "", "")
        )  # fmt: skip
    return rows


def _rows(rule: Rule) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for number, (name, kind) in enumerate(rule.fields.kinds().items()):
        suffix = name[len(rule.fields.prefix) + 1 :]
        label, note = LABELS[suffix]
        if rule.fields.email and suffix in EMAIL_LABELS:
            label, note = EMAIL_LABELS[suffix], EMAIL_NOTES.get(suffix, note)
        if not rule.builtin and suffix in RULE_LABELS:
            label = RULE_LABELS[suffix].format(name=rule.name)
        header = ""
        if number == 0:
            header = (
                "Messaging pipeline (set by redcap-relay; change it only with services.admin)"
                if rule.builtin
                else f"Rule {rule.name} (set by redcap-relay; change it only with services.admin)"
            )
        field_type, choices, validation, minimum = "text", "", "", ""
        if kind is Kind.CHOICE:
            field_type = "dropdown"
            choices = " | ".join(
                f"{code}, {STATUS_LABELS[Status(code)]}" for code in rule.fields.codes
            )
        elif kind is Kind.TIME:
            validation = "datetime_seconds_ymd"
        elif kind is Kind.COUNT:
            validation, minimum = "integer", "0"
        elif suffix in ("error_message", "reply_text"):
            field_type = "notes"
        identifier = "y" if suffix in ("sms_to", "email_to", "reply_text") else ""
        rows.append(
            (name, rule.fields.form, header, field_type, label, choices, note, validation,
             minimum, "", identifier, "", "", "", "", "", "", "")
        )  # fmt: skip
    return rows


def _assign_rows(rule: AssignRule) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for number, (name, kind) in enumerate(rule.fields.kinds().items()):
        suffix = name[len(rule.fields.prefix) + 1 :]
        label, note = (
            text.format(name=rule.name, field=rule.field) for text in ASSIGN_LABELS[suffix]
        )
        header = (
            f"Study ID rule {rule.name} (set by redcap-relay; change it only with services.admin)"
            if number == 0
            else ""
        )
        field_type, choices, validation = "text", "", ""
        if kind is Kind.CHOICE:
            field_type = "dropdown"
            choices = " | ".join(f"{code}, {ASSIGN_STATUS_LABELS[code]}" for code in AssignStatus)
        elif kind is Kind.TIME:
            validation = "datetime_seconds_ymd"
        elif suffix == "error_message":
            field_type = "notes"
        rows.append(
            (name, rule.fields.form, header, field_type, label, choices, note, validation,
             "", "", "", "", "", "", "", "", "", "")
        )  # fmt: skip
    return rows


def _csv_line(cells: Iterable[str]) -> str:
    """One line as REDCap's Data Dictionary download writes it (quoted where it has a space,
    a comma, a quote or a line break)."""
    out = []
    for cell in cells:
        if any(ch in cell for ch in ' ,"\n'):
            cell = '"' + cell.replace('"', '""') + '"'
        out.append(cell)
    return ",".join(out) + "\n"
