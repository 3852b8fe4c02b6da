"""Driving a rehearsal from another terminal while ``python -m sandbox`` runs: ``set`` a record's
fields, see what was ``sent``, ``advance`` the rehearsal's clock.

Each reads the settings ``python -m sandbox`` wrote (``.env.sandbox``) and refuses any that do
not point at local simulators, so none of it can reach a real REDCap, Twilio or Microsoft 365.
They talk to the simulators through the same APIs the services use:

- ``set --record N field=value ...``: one REDCap record import (``overwrite``: only the fields
  named are written, and an empty value erases one), so REDCap's own validation applies: a date
  that is not a date, a code that is not a choice is refused with REDCap's reason. A field the
  project lacks is refused first, with the likely one; a record that does not exist needs
  ``--new``. A date or date-time field also takes a time relative to the rehearsal's clock:
  ``+2d``, ``+50h``, ``+2d@10:00``, ``now``, ``today``.
- ``sent``: every text the Twilio simulator took (its Messages list) and every mail the
  Microsoft simulator's mailbox sent (its Sent Items), oldest first, in full: bodies, numbers
  and addresses (a rehearsal holds no one's real data), each with the record and rule REDCap
  says it was for.
- ``advance 2h``: moves the clock the simulators and the services share (SANDBOX_CLOCK_FILE,
  :class:`common.clock.ClockFile`) forward, so a two-day reminder can be rehearsed in a minute.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from common.clock import ClockFile
from common.errors import ConfigError, RelayError
from common.field_types import parse_time
from common.redcap_client import RedcapClient
from common.runner import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from common.settings import LOCAL_HOSTS, Settings, load_settings
from messaging.records import any_of
from messaging.rules_file import rules_for

TIMEOUT = 10.0  # seconds; the simulators answer in milliseconds
PAGE = 1000  # Twilio's and Graph's largest page
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
COMMANDS = ("set", "sent", "advance")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_RELATIVE = re.compile(r"\+((?:\d+(?:\.\d+)?[dhm])+)(?:@(\d{1,2}):(\d{2}))?")


class Refused(Exception):
    """A simulator refused the request or could not be reached (exit 1)."""


def parser(command: str) -> argparse.ArgumentParser:
    descriptions = {
        "set": "Set fields of a record in the simulated REDCap, as a REDCap import would.",
        "sent": "Show every text and e-mail the simulators took, in full, oldest first.",
        "advance": "Move the rehearsal's clock forward (the simulators' and the services').",
    }
    p = argparse.ArgumentParser(
        prog=f"python -m sandbox {command}", description=descriptions[command]
    )
    p.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env.sandbox"),
        help="the settings python -m sandbox wrote (default .env.sandbox)",
    )
    if command == "set":
        p.add_argument("--record", required=True, metavar="ID", help="the record to change")
        p.add_argument("--new", action="store_true", help="create the record if it is not there")
        p.add_argument("--event", help="longitudinal projects: the event (default REDCAP_EVENT)")
        p.add_argument(
            "values",
            nargs="+",
            metavar="FIELD=VALUE",
            help="e.g. visit_datetime=+2d@10:00 language=2 (an empty value erases the field)",
        )
    elif command == "advance":
        p.add_argument("by", metavar="DURATION", help="e.g. 90m, 2h, 1d, 2d12h")
    return p


def main(command: str, argv: Sequence[str]) -> int:
    args = parser(command).parse_args(argv)
    try:
        settings = rehearsal_settings(args.env_file)
        if command == "set":
            lines = set_values(settings, args.record, args.values, new=args.new, event=args.event)
        elif command == "sent":
            lines = sent(settings)
        else:
            lines = [advance(settings, duration(args.by))]
    except ConfigError as exc:
        sys.stderr.write(f"sandbox {command}: {exc}\n")
        return EXIT_CONFIG
    except (Refused, RelayError) as exc:
        sys.stderr.write(f"sandbox {command}: {exc}\n")
        return EXIT_FAILURE
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return EXIT_OK


def rehearsal_settings(path: Path) -> Settings:
    """The sandbox's settings, read as the services read them; ConfigError unless REDCap and
    Twilio are local simulators and the rehearsal has its clock."""
    if not path.is_file():
        raise ConfigError(f"{path} not found; start python -m sandbox first (it writes it)")
    settings = load_settings(str(path), {})
    for name, url in (
        ("REDCAP_API_URL", settings.redcap_api_url),
        ("TWILIO_API_BASE_URL", settings.twilio_api_base_url),
    ):
        if urlsplit(url).hostname not in LOCAL_HOSTS:
            raise ConfigError(
                f"{name} in {path} is not a local simulator; these commands only talk to "
                "python -m sandbox: use the settings file it wrote"
            )
    if settings.sandbox_clock_file is None:
        raise ConfigError(f"{path} has no SANDBOX_CLOCK_FILE; use the file python -m sandbox wrote")
    return settings


def _redcap(settings: Settings) -> RedcapClient:
    return RedcapClient(settings.redcap_api_url, settings.redcap_api_token, TIMEOUT, retries=0)


def _now(settings: Settings) -> datetime:
    assert settings.sandbox_clock_file is not None  # rehearsal_settings made sure
    seconds = ClockFile(settings.sandbox_clock_file).now()
    return datetime.fromtimestamp(seconds, settings.timezone)


# -- advance --------------------------------------------------------------------------------------
def duration(text: str) -> float:
    """``90m``, ``2h``, ``1d12h`` as seconds; ConfigError for anything else."""
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise ConfigError(
            f"{text!r} is not a duration; write a number and a unit: 90m, 2h, 1d, 2d12h"
        )
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", cleaned)
    return sum(float(amount) * _UNIT[unit] for amount, unit in parts)


def advance(settings: Settings, seconds: float) -> str:
    """Move the shared clock; the rehearsal's time afterwards, said in TIMEZONE."""
    assert settings.sandbox_clock_file is not None
    clock = ClockFile(settings.sandbox_clock_file)
    try:
        moved = clock.advance(seconds)
    except (OSError, ValueError) as exc:
        raise Refused(f"{exc}; is python -m sandbox still running?") from None
    when = datetime.fromtimestamp(moved, settings.timezone)
    return f"sandbox time is now {when:%Y-%m-%d %H:%M} ({settings.timezone.key})"


# -- set ------------------------------------------------------------------------------------------
def set_values(
    settings: Settings,
    record: str,
    assignments: Sequence[str],
    *,
    new: bool = False,
    event: str | None = None,
) -> list[str]:
    """Import one row for ``record`` holding ``assignments``; what REDCap holds afterwards."""
    client = _redcap(settings)
    meta = {row["field_name"]: row for row in client.metadata()}
    record_field = next(iter(meta))
    names = _importable(meta, client.instruments())
    values: dict[str, str] = {}
    for assignment in assignments:
        name, equals, value = assignment.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ConfigError(f"{assignment!r}: write FIELD=VALUE, e.g. language=2")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"{name} is not a field of this project; {hint}see its data dictionary"
            )
        values[name] = _value(meta.get(name.split("___")[0], {}), value, _now(settings))
    where = event or settings.redcap_event or None
    events = [where] if where else None
    if not new and not client.export([record_field], records=[record], events=events):
        raise ConfigError(f"record {record} is not in the project; add --new to create it")
    row = {record_field: record, **({"redcap_event_name": where} if where else {}), **values}
    try:
        client.import_rows([row], overwrite=True)
    except RelayError as exc:
        raise Refused(f"REDCap refused it: {exc}") from None
    held = client.export([record_field, *values], records=[record], events=events)
    shown = {key: value for got in held for key, value in got.items() if key in values}
    said = ", ".join(f"{key} = {shown.get(key, '')!r}" for key in values)
    return [f"record {record}{f' ({where})' if where else ''}: {said}"]


def _importable(meta: Mapping[str, Mapping[str, str]], forms: list[dict[str, str]]) -> list[str]:
    """What an import may name: every field (a checkbox as ``name___code``) and each form's
    status field ``<form>_complete``."""
    names: list[str] = []
    for name, row in meta.items():
        if row.get("field_type") == "descriptive":
            continue
        if row.get("field_type") == "checkbox":
            for choice in row.get("select_choices_or_calculations", "").split("|"):
                code = choice.split(",", 1)[0].strip()
                names.append(f"{name}___{code.lower()}")
        else:
            names.append(name)
    names += [f"{form['instrument_name']}_complete" for form in forms]
    return names


def _value(row: Mapping[str, str], raw: str, now: datetime) -> str:
    """``raw`` as the import sends it: a time relative to the rehearsal's clock (``+2d@10:00``,
    ``now``, ``today``) written as the field's validation stores it; anything else as typed."""
    check = row.get("text_validation_type_or_show_slider_number", "")
    if not check.startswith(("date_", "datetime_")):
        return raw
    text = raw.strip().lower()
    moment: datetime | None = None
    if text in ("now", "today"):
        moment = now
    elif match := _RELATIVE.fullmatch(text):
        moment = now + timedelta(seconds=duration(match.group(1)))
        if match.group(2) is not None:
            moment = moment.replace(
                hour=int(match.group(2)), minute=int(match.group(3)), second=0, microsecond=0
            )
    if moment is None:
        return raw  # an absolute date: REDCap checks it
    if check.startswith("date_"):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M:%S}" if "seconds" in check else f"{moment:%Y-%m-%d %H:%M}"


# -- sent -----------------------------------------------------------------------------------------
def sent(settings: Settings) -> list[str]:
    """Every text and mail the simulators took, oldest first, each with whom REDCap says it was
    for."""
    who = _Recipients(settings)
    lines = ["Texts the Twilio simulator took (oldest first):"]
    texts = _texts(settings)
    for message in texts:
        at = parsedate_to_datetime(str(message["date_created"])).astimezone(settings.timezone)
        about = (
            "Twilio's own answer to a keyword"
            if message.get("direction") == "outbound-reply"
            else who.of(str(message["to"]), at, sid=str(message["sid"]))
        )
        error = f" (error {message['error_code']})" if message.get("error_code") else ""
        lines.append(
            f"  {at:%Y-%m-%d %H:%M}  {about}  to {message['to']}  {message['status']}{error}"
        )
        lines += _indented(str(message.get("body") or ""))
    if not texts:
        lines.append("  (none)")
    mails = _mails(settings)
    lines.append("E-mails the Microsoft simulator sent (oldest first):")
    for mail in mails:
        at = datetime.fromisoformat(str(mail["sentDateTime"])).astimezone(settings.timezone)
        to = ", ".join(r["emailAddress"]["address"] for r in mail.get("toRecipients", []))
        lines.append(
            f"  {at:%Y-%m-%d %H:%M}  {who.of(to, at)}  to {to}  subject {mail['subject']!r}"
        )
        lines += _indented(str((mail.get("body") or {}).get("content", "")).strip())
    if not mails:
        lines.append("  (none)")
    return lines


def _indented(text: str) -> list[str]:
    return [f"    {line}".rstrip() for line in text.splitlines()]


def _texts(settings: Settings) -> list[dict[str, Any]]:
    """The Twilio simulator's outbound messages through its Messages list, oldest first."""
    url = f"{settings.twilio_api_base_url}/2010-04-01/Accounts/{settings.twilio_account_sid}"
    auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    found: list[dict[str, Any]] = []
    page: str | None = f"{url}/Messages.json?PageSize={PAGE}"
    while page:
        body = _get(page, auth=auth)
        found += body.get("messages", [])
        next_uri = body.get("next_page_uri")
        page = f"{settings.twilio_api_base_url}{next_uri}" if next_uri else None
    outbound = [m for m in found if str(m.get("direction", "")).startswith("outbound")]
    return sorted(outbound, key=lambda m: parsedate_to_datetime(str(m["date_created"])))


def _mails(settings: Settings) -> list[dict[str, Any]]:
    """The sender mailbox's Sent Items, oldest first (a token from the identity simulator)."""
    if (
        not settings.graph_sender
        or urlsplit(settings.graph_api_base_url).hostname not in LOCAL_HOSTS
    ):
        return []
    try:
        answer = requests.post(
            f"{settings.graph_authority_url}/{settings.graph_tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.graph_client_id,
                "client_secret": settings.graph_client_secret,
                "scope": GRAPH_SCOPE,
            },
            timeout=TIMEOUT,
        )
    except requests.RequestException:
        raise Refused(
            "the Microsoft simulator did not answer; is python -m sandbox running?"
        ) from None
    if answer.status_code != 200:
        raise Refused(f"the Microsoft simulator refused a token ({answer.status_code})")
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    select = "subject,body,toRecipients,sentDateTime"
    page: str | None = (
        f"{settings.graph_api_base_url}/v1.0/users/{settings.graph_sender}/mailFolders/sentitems"
        f"/messages?$select={select}&$top={PAGE}"
    )
    found: list[dict[str, Any]] = []
    while page:
        body = _get(page, headers=headers)
        found += body.get("value", [])
        link = body.get("@odata.nextLink")
        # Graph's links name Microsoft's host; the simulator serves the same paths.
        page = (
            f"{settings.graph_api_base_url}{urlsplit(link).path}?{urlsplit(link).query}"
            if link
            else None
        )
    return sorted(found, key=lambda m: str(m["sentDateTime"]))


def _get(
    url: str, *, auth: tuple[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """One JSON page of a simulator's list; Refused when it does not answer 200."""
    try:
        answer = requests.get(url, auth=auth, headers=headers, timeout=TIMEOUT)
    except requests.RequestException:
        raise Refused("a simulator did not answer; is python -m sandbox still running?") from None
    if answer.status_code != 200:
        raise Refused(f"a simulator refused to list what was sent ({answer.status_code})")
    body = answer.json()
    return body if isinstance(body, dict) else {}


class _Recipients:
    """Who each message was for, as REDCap says: the record whose rule holds its SID, else the
    record and rule that last messaged that number or address nearest its time."""

    NEAR = timedelta(minutes=5)  # a rule's sent time and the simulator's, of one message

    def __init__(self, settings: Settings) -> None:
        rules = rules_for(settings).every
        client = _redcap(settings)
        record_field = next(iter(row["field_name"] for row in client.metadata()))
        fields = [record_field]
        for rule in rules:
            f = rule.fields
            fields += [name for name in (f.sid, f.to, f.email_to, f.sent_at) if name]
        logic = any_of([f"[{rule.fields.status}] <> ''" for rule in rules])
        self._sids: dict[str, str] = {}
        self._contacts: dict[str, list[tuple[str, datetime | None]]] = {}
        for row in client.export(fields, logic):
            for rule in rules:
                f, label = rule.fields, f"record {row[record_field]}, rule {rule.name}"
                if sid := row.get(f.sid, ""):
                    self._sids[sid] = label
                when = parse_time(row.get(f.sent_at, ""), settings.timezone)
                for key in (row.get(f.to, ""), row.get(f.email_to or "", "")):
                    if key:
                        self._contacts.setdefault(key.lower(), []).append((label, when))

    def of(self, to: str, at: datetime, sid: str = "") -> str:
        if sid in self._sids:
            return self._sids[sid]
        near = [
            (abs(when - at), label)
            for label, when in self._contacts.get(to.lower(), [])
            if when is not None and abs(when - at) <= self.NEAR
        ]
        if near:
            return min(near)[1]
        labels = {label.split(",")[0] for label, _ in self._contacts.get(to.lower(), [])}
        return labels.pop() if len(labels) == 1 else "no record (staff, or a message since changed)"
