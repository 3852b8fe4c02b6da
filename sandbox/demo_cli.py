"""``make demo``: the rules of ``sandbox/demo_rules.toml`` against the sandbox, start to finish,
in about a minute.

Starts the simulators (REDCap, Twilio, Microsoft) with the demo project and the rules (a welcome
with the survey link, by SMS or else by e-mail; a reminder that ``stop_when`` cancels for whoever
answered; a visit reminder 24 hours before a visit that takes YES / NO replies, with
auto-answers; the recruitment case: a study ID for whoever screening found eligible, from one of
two groups, then an e-mail invitation with a Bookings link carrying it, and a notice for whoever
is not), their fields added as uploading ``admin instrument``'s CSV would, and staff alerts on
(``ALERT_EMAIL_TO``) and the conversation log (``CONVERSATION_LOG``). Shows a PyCap export,
baselines three pre-go-live registrations, runs the
detector, sender, checker and reply poller as real processes in loop mode while participants
register with their screening (some answer the survey once their welcome arrives; staff book
three visits just over a day ahead; once all their messages have settled, the three with a visit
text back NO, SÍ and STOP through the Twilio simulator; then one asks a question no rule can
read, and staff answer it from REDCap), then stops them with SIGTERM, shows the
study IDs REDCap holds, an invitation's link and the notice, what REDCap holds for the replies
(meanings, never the numbers or the texts) and the auto-answers, one participant's conversation
as REDCap exports it (the participant's own texts left out), mails the weekly report (``admin
report --email``), lists what the Microsoft mailbox sent (recipients masked) and prints ``admin
status``. Only the settings make it fast: no code here moves a clock.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from redcap.project import Project as PyCapProject

from common.contacts import mask_email, same_address
from messaging.records import any_of
from messaging.rules import Rules, Trigger
from messaging.rules_file import load_study
from sandbox.clock import SimClock
from sandbox.envfile import write_env
from sandbox.microsoft.mailbox import SentMail
from sandbox.participants import Participant, Registration, demo_cohort, register
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.redcap.model import Project
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox
from sandbox.twilio.server import TwilioSim

RULES_FILE = Path(__file__).with_name("demo_rules.toml")
SERVICES = ("registration_detector", "sms_sender", "delivery_checker", "reply_poller")
# Statuses the services will not move on their own: a record of a rule there is done.
SETTLED = (
    "delivered",
    "sent_email",
    "undelivered",
    "failed",
    "skipped",
    "baseline",
    "unconfirmed",
    "needs_review",
    "cancelled",
    "expired",
    "assigned",  # a study ID rule's: the ID is given
    "kept",
)
MAX_SECONDS = 90.0  # from the services' start until every rule of every record has settled
REGISTER_EVERY = 1.5  # seconds between registrations
ANSWERS = ("5", "7", "8", "12")  # answer the survey once the welcome arrives: reminder cancelled
VISITS = {"4": "1", "5": "2", "6": "1"}  # booked at registration, language 1 English / 2 Español
# What each participant with a visit texts back once their messages have settled, and how the
# demo says it (the text itself, like the number, is PHI: only REDCap keeps it).
REPLIES = {"4": ("NO", "a NO"), "5": ("Sí", "a YES, in Spanish"), "6": ("STOP", "STOP")}
LANGUAGES = {"1": "English", "2": "Español"}
# Once the replies are in, participant 4 texts a question no rule can read; a coordinator answers
# it from REDCap (a new relay_message instance, "send" ticked).
ASKS, QUESTION = "4", "Could we do Thursday instead?"
STAFF_ANSWER = "Yes, Thursday at 10:00 works. See you then! - The study team"
CONVERSE_SECONDS = 30.0  # for the question to be read, and for the answer to go
NO_ADDRESS = ("10",)  # registered without an e-mail address
# What screening found: the group (1 healthy volunteer, 2 patient), "" for not eligible.
SCREENING = {"4": "1", "5": "2", "6": "1", "7": "2", "8": "1", "9": "", "10": "1", "11": "2"}
SCREENING["12"] = "2"
# Staff digests of what needs a person (messaging.alerts): as often as the setting allows.
ALERTS = {"ALERT_EMAIL_TO": "coordinator@sandbox.example.org", "ALERT_MIN_INTERVAL_MINUTES": "1"}
REPORT = {"REPORT_EMAIL_TO": "study-team@sandbox.example.org"}  # the weekly report's addressees
DIGEST_WAIT = 10.0  # seconds to wait, once all has settled, for a digest still to come


def stop_all(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every service (each finishes its record in hand), then wait, bounded; kill what
    does not stop."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def cohort() -> list[Participant]:
    """Nine new participants: six ordinary, one reached by e-mail only, and the problems a study
    meets in real life."""
    people = demo_cohort(6, start=4)
    people.append(Participant("10", "call me after 5", "Kai"))  # no usable phone nor address
    people.append(Participant("11", "+15005553003", "Lea"))  # handset off -> undelivered 30003
    people.append(Participant("12", "", "Mia"))  # no phone: the welcome goes by e-mail
    return people


def enroll(project: Project, clock: SimClock, person: Participant) -> None:
    """Store one completed registration: the phone given, (but for NO_ADDRESS) an address, and
    the screening (group and eligibility) the study team entered."""
    row = Registration().row(project, person)
    if person.record_id in NO_ADDRESS:
        row["email"] = ""
    group = SCREENING.get(person.record_id, "")
    row.update(study_group=group, eligible="1" if group else "0")
    import_rows(project, [row], overwrite=False, date_format="YMD", now=clock.local_naive())


def run(python: str = sys.executable) -> int:
    rules = load_study(RULES_FILE, default_event="", alerts=True)
    project = add_rule_fields(build_demo_project(), rules, conversation_log=True)
    with Sandbox(project) as box, tempfile.TemporaryDirectory() as tmp:
        redcap, twilio, clock = box.redcap, box.twilio, box.clock
        env = box.settings(
            LOCK_DIR=tmp, RULES_FILE=str(RULES_FILE), CONVERSATION_LOG="1", **ALERTS, **REPORT
        )
        env_file = Path(tmp) / ".env.sandbox"
        write_env(env_file, env)
        tz = ZoneInfo(env["TIMEZONE"])
        pycap = PyCapProject(redcap.url, redcap.token, timeout=10)
        print(
            f"== sandbox up: REDCap {redcap.url}  Twilio {twilio.base_url}  "
            f"Microsoft {box.microsoft.base_url}"
        )
        names = [rule.name for rule in rules.triggers]
        print(f"== rules from {RULES_FILE.name}: {', '.join(names)}")

        for person in demo_cohort(3):
            register(project, clock, person)
        rows = pycap.export_records(
            fields=["record_id", "registration_complete", *(r.fields.status for r in rules.written)]
        )
        print(f"== PyCap export before go-live: {rows}")

        admin = [python, "-m", "services.admin"]
        subprocess.run([*admin, "check", "--env-file", str(env_file)], check=False, timeout=60)
        subprocess.run([*admin, "baseline", "--env-file", str(env_file)], check=True, timeout=60)

        print(f"== starting the {len(SERVICES)} services (loop mode): {', '.join(SERVICES)}")
        procs = [
            subprocess.Popen([python, "-m", f"services.{name}", "--env-file", str(env_file)])
            for name in SERVICES
        ]
        try:
            done = play(project, clock, twilio, tz, pycap, rules)
            if done:
                done = converse(project, clock, twilio)
            if done:
                wait_for_digest(box.microsoft.sent)
        finally:
            stop_all(procs)
        print(f"== services stopped; Twilio accepted {len(twilio.sent())} message(s)")
        for record_id, sid in field_values(project, "visit_sms_sid").items():
            print(f"== visit reminder to participant {record_id}: {twilio.message(sid)['body']}")
        show_ids(pycap, box.microsoft.sent())
        show_replies(pycap, twilio)
        show_thread(pycap, ASKS)
        print("== .venv/bin/python -m services.admin report --email")
        subprocess.run([*admin, "report", "--email", "--env-file", str(env_file)], timeout=60)
        show_mailbox(box.microsoft.sent())
        if not done:
            left = ", ".join(unsettled(pycap, rules)) or "none"
            print(f"== not settled within {MAX_SECONDS:g} s (records {left})")
        print("== .venv/bin/python -m services.admin status")
        status = subprocess.run(
            [*admin, "status", "--env-file", str(env_file)], check=False, timeout=60
        )
        settled = not unsettled(pycap, rules)
        return 0 if done and settled and status.returncode == 0 else 1


def play(
    project: Project,
    clock: SimClock,
    twilio: TwilioSim,
    tz: ZoneInfo,
    pycap: PyCapProject,
    rules: Rules,
) -> bool:
    """Participants register one by one (staff book the visits as they do), answer the survey
    once their welcome text arrives, text back once their visit reminder and everything else
    has settled; True once every rule (auto-answers included) has settled for every record and
    REDCap holds the three replies."""
    waiting = cohort()
    answering = set(ANSWERS)
    replying = dict(REPLIES)
    visit = visit_time(clock, tz)
    deadline = time.monotonic() + MAX_SECONDS
    next_registration = time.monotonic() + REGISTER_EVERY
    while time.monotonic() < deadline:
        if waiting and time.monotonic() >= next_registration:
            person = waiting.pop(0)
            enroll(project, clock, person)
            note = ""
            if person.record_id in VISITS:
                note = book_visit(project, clock, visit, person.record_id, VISITS[person.record_id])
            print(f"== participant {person.record_id} completed registration{note}")
            next_registration += REGISTER_EVERY
        texted = set(field_values(project, "welcome_status", "delivered"))
        mailed = set(field_values(project, "welcome_status", "sent_email"))
        for record_id in sorted(answering & (texted | mailed)):
            answer_survey(project, clock, record_id)
            answering.discard(record_id)
            how = "text" if record_id in texted else "e-mail"
            print(f"== participant {record_id} got the welcome {how} and completed the survey")
        open_ = unsettled(pycap, rules)
        reminded = field_values(project, "visit_status", "delivered")
        for record_id in sorted(set(replying) & (set(reminded) - set(open_))):
            body, said = replying.pop(record_id)
            to = field_values(project, "visit_sms_to")[record_id]
            twilio.inject_inbound(to, twilio.from_number, body)
            print(f"== participant {record_id} texts back to the visit reminder: {said}")
        replied = set(field_values(project, "visit_reply")) >= set(REPLIES)
        if not waiting and not answering and not replying and replied and not open_:
            return True
        # The demo's own export above counts against REDCap's 600 requests a minute too.
        time.sleep(1.0)
    return False


def converse(project: Project, clock: SimClock, twilio: TwilioSim) -> bool:
    """Participant ASKS texts a question; once the reply poller has logged it (the record waits
    for a person), staff type an answer into a new instance of the record's thread and tick
    send, as REDCap's form would save it; True once the sender has sent it."""
    to = field_values(project, "visit_sms_to")[ASKS]
    twilio.inject_inbound(to, twilio.from_number, QUESTION)
    print(f"== participant {ASKS} texts a question no rule can read")
    if not _wait(lambda: ASKS in field_values(project, "relay_conversation_waiting")):
        return False
    print(f"== REDCap: record {ASKS} waits for a person (relay_conversation_waiting)")
    number = max(_instances(project, ASKS), default=0) + 1
    row: dict[str, object] = {
        project.record_id_field: ASKS,
        "redcap_repeat_instrument": "relay_message",
        "redcap_repeat_instance": str(number),
        "msg_text": STAFF_ANSWER,
        "msg_send": "1",
    }
    import_rows(project, [row], overwrite=False, date_format="YMD", now=clock.local_naive())
    print(f"== staff answer in REDCap: a new relay_message instance ({number}), send ticked")

    def answered() -> bool:
        return _instances(project, ASKS).get(number, {}).get("msg_status") == "sms_sent"

    return _wait(answered)


def _instances(project: Project, record_id: str) -> dict[int, dict[str, str]]:
    with project.lock:
        slots = project.records[record_id].slots.items()
        return {s[2]: dict(v) for s, v in slots if s[1] == "relay_message" and s[2] is not None}


def _wait(done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + CONVERSE_SECONDS
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def show_thread(pycap: PyCapProject, record_id: str) -> None:
    """The record's conversation as REDCap exports it (PyCap): what we sent, in full; what the
    participant wrote stays in REDCap (its length is shown)."""
    rows = [
        row
        for row in pycap.export_records(records=[record_id])
        if row["redcap_repeat_instrument"] == "relay_message"
    ]
    waiting = pycap.export_records(records=[record_id], fields=["relay_conversation_waiting"])
    print(f"== record {record_id}'s conversation (PyCap export of relay_message, in order):")
    for row in sorted(rows, key=lambda r: int(r["redcap_repeat_instance"])):
        head = f"== thread #{row['redcap_repeat_instance']} {row['msg_at']}"
        if row["msg_direction"] == "in":
            read = row["msg_answer"] or "free text"
            print(
                f"{head} from the participant, read as {read} ({len(row['msg_text'])} characters)"
            )
        else:
            lines = row["msg_text"].splitlines() or [""]
            text = lines[0] + (" [...]" if len(lines) > 1 else "")  # an e-mail: its subject
            print(f"{head} {row['msg_rule'] or '?'}, {row['msg_status']}: {text}")
    still = any(row.get("relay_conversation_waiting") for row in waiting)
    print(f"== relay_conversation_waiting: {'set' if still else 'blank (answered)'}")


def show_ids(pycap: PyCapProject, mails: Sequence[SentMail]) -> None:
    """The study IDs REDCap holds (a PyCap export), the link of the first invitation as the
    Microsoft mailbox holds it, and who got the notice."""
    rows = pycap.export_records(
        fields=["record_id", "study_id", "study_id_status", "study_id_group"],
        filter_logic="[study_id_status] <> ''",
    )
    given = ", ".join(
        f"{row['record_id']} {row['study_id']} ({row['study_id_group']})" for row in rows
    )
    print(f"== study IDs in REDCap (record, ID, group): {given}")
    invitations = [mail for mail in mails if mail.subject == "Book your first study visit"]
    if invitations:
        found = re.search(r'href="([^"]+)"', invitations[0].content)
        link = found[1] if found else "?"
        print(f"== {len(invitations)} invitation(s) mailed; the first links to {link}")
    notices = [mail for mail in mails if mail.subject == "Thank you for your interest"]
    print(f"== {len(notices)} notice(s) mailed to whoever screening found not eligible")


def is_report(mail: SentMail) -> bool:
    return any(same_address(to, REPORT["REPORT_EMAIL_TO"]) for to in mail.to)


def is_digest(mail: SentMail) -> bool:
    """A mail to the staff of ALERT_EMAIL_TO, not to a participant."""
    staff = ALERTS["ALERT_EMAIL_TO"].split(",")
    return any(same_address(to, a) for to in mail.to for a in staff)


def wait_for_digest(sent: Callable[[], list[SentMail]]) -> None:
    """Give the services a moment for the staff digest of the problems just met, if none came."""
    deadline = time.monotonic() + DIGEST_WAIT
    while not any(is_digest(mail) for mail in sent()) and time.monotonic() < deadline:
        time.sleep(0.5)


def show_mailbox(mails: Sequence[SentMail]) -> None:
    """What the Microsoft simulator's mailbox sent: recipients masked, subjects, and who for."""
    print(f"== Microsoft Graph sent {len(mails)} mail(s):")
    for mail in mails:
        kind = "staff digest" if is_digest(mail) else "participant mail"
        kind = "weekly report" if is_report(mail) else kind
        to = ", ".join(mask_email(address) for address in mail.to)
        print(f"==   {kind:<16} to {to}: {mail.subject!r}")
    if not any(is_digest(mail) for mail in mails):
        print(f"==   no staff digest to {ALERTS['ALERT_EMAIL_TO']} arrived")


def show_replies(pycap: PyCapProject, twilio: TwilioSim) -> None:
    """What REDCap holds for the participants who texted back (a PyCap export of the meaning,
    its time, the opt-out and the auto-answer's state: never the number or the text), and
    what we answered each, as Twilio took it."""
    fields = ["record_id", "visit_reply", "visit_reply_at", "visit_reply_sid", "visit_sms_to"]
    fields += ["relay_opted_out", "visit_answer_status", "visit_answer_sms_sid"]
    rows = pycap.export_records(records=list(REPLIES), fields=fields)
    print("== replies in REDCap (PyCap export; the numbers and texts stay in REDCap):")
    for row in rows:
        record_id, meaning = row["record_id"], row["visit_reply"] or "(none)"
        line = f"==   participant {record_id} rule visit: {meaning} at {row['visit_reply_at']}"
        if row["relay_opted_out"] == "1":
            line += ", relay_opted_out = 1"
        print(line)
        if row["visit_answer_sms_sid"]:
            body = twilio.message(row["visit_answer_sms_sid"])["body"]
            print(f"==     auto-answer {row['visit_answer_status']}: {body}")
        elif row["visit_reply_sid"]:
            since = sent_since(twilio, row["visit_sms_to"], row["visit_reply_sid"])
            print(
                f"==     no auto-answer from us (Twilio answers STOP itself): Twilio took "
                f"{since} message(s) of ours for them since"
            )


def sent_since(twilio: TwilioSim, to: str, inbound_sid: str) -> int:
    """How many of our messages to ``to`` Twilio took since the inbound ``inbound_sid`` (to the
    second, as Twilio dates them)."""
    received = parsedate_to_datetime(str(twilio.message(inbound_sid)["date_created"]))
    created = [parsedate_to_datetime(str(m["date_created"])) for m in twilio.sent(to=to)]
    return sum(when >= received for when in created)


def visit_time(clock: SimClock, tz: ZoneInfo) -> datetime:
    """Just over 24 hours ahead, in TIMEZONE (``visit_datetime`` has minutes only, so the next
    whole minute): the reminders of the visits booked at it fall due within the minute."""
    now = clock.now().astimezone(tz).replace(tzinfo=None)
    return (now + timedelta(days=1, minutes=1)).replace(second=0, microsecond=0)


def book_visit(
    project: Project, clock: SimClock, visit: datetime, record_id: str, code: str
) -> str:
    """Staff enter a visit at ``visit`` (its reminder is due 24 hours before)."""
    store(project, clock, record_id, visit_datetime=f"{visit:%Y-%m-%d %H:%M}", language=code)
    return (
        f"; visit booked for {visit:%Y-%m-%d %H:%M} ({LANGUAGES[code]}): "
        f"its reminder is due at {visit:%H:%M} today"
    )


def answer_survey(project: Project, clock: SimClock, record_id: str) -> None:
    """The participant submits the interest survey: REDCap marks the form Complete (2)."""
    store(project, clock, record_id, interest_level="1", interest_form_complete="2")


def store(project: Project, clock: SimClock, record_id: str, **values: str) -> None:
    row: dict[str, object] = {project.record_id_field: record_id, **values}
    import_rows(project, [row], overwrite=False, date_format="YMD", now=clock.local_naive())


def field_values(project: Project, name: str, only: str | None = None) -> dict[str, str]:
    """Record id -> the non-blank value of ``name`` (only those equal to ``only``, if given)."""
    with project.lock:
        found = {
            record_id: values[name]
            for record_id, record in project.records.items()
            for values in record.slots.values()
            if values.get(name)  # the slot holding it (not a conversation log instance)
        }
    return {r: v for r, v in found.items() if only is None or v == only}


def unsettled(pycap: PyCapProject, rules: Rules) -> list[str]:
    """Records some rule (auto-answers and study ID rules included) has still to finish with,
    asked of REDCap: the rule applies (or has a status) and the status is not a settled one.
    Empty also means at least one record exists."""
    parts = []
    every: list[Trigger] = [*rules.every, *rules.assign]
    for rule in every:
        status = f"[{rule.fields.status}]"
        open_ = " and ".join(f"{status} <> '{code}'" for code in SETTLED)
        # An auto-answer rule has no `when`: it applies once the poller gives it a status.
        applies = f"({rule.when}) or {status} <> ''" if rule.when else f"{status} <> ''"
        parts.append(f"({applies}) and {open_}")
    rows = pycap.export_records(fields=["record_id"], filter_logic=any_of(parts))
    return sorted({str(row["record_id"]) for row in rows}, key=lambda r: (len(r), r))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(run())
