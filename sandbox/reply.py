"""``python -m sandbox reply``: a simulated participant texts the study number.

While ``python -m sandbox`` (or anything else serving :class:`TwilioSim`) runs, this posts one
inbound message to the Twilio simulator's control endpoint (:mod:`sandbox.twilio.control`),
using the simulator's URL and credentials from ``.env.sandbox``. The message then lists as
Twilio lists a received SMS (direction ``inbound``), so a reply poller reads it like a real one.
The sender is a number (``--from``) or a record's phone, read from the simulated REDCap
(``--record``, first usable of PHONE_FIELDS, as the sender picks it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import requests
from dotenv import dotenv_values
from redcap.project import Project as PyCapProject
from redcap.request import RedcapError

from common.contacts import mask_phone, pick_phone
from common.errors import ConfigError, InvalidPhone
from common.runner import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from common.settings import DEFAULT_PHONE_FIELDS
from sandbox.twilio.control import CONTROL_PATH

TIMEOUT = 10.0  # seconds; the simulator answers in milliseconds
LOCAL_HOSTS = ("127.0.0.1", "localhost")

EXAMPLES = """examples:
  .venv/bin/python -m sandbox reply --from +16175550101 YES
  .venv/bin/python -m sandbox reply --record 3 "no, I can't come"
  .venv/bin/python -m sandbox reply --record 4 STOP
  .venv/bin/python -m sandbox reply --from 72345 --media 1 ""        an MMS with a photo and no text
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox reply",
        description="Make a simulated participant text the study number while the sandbox runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--env-file",
        type=Path,
        default=Path(".env.sandbox"),
        help="the settings python -m sandbox wrote (default .env.sandbox)",
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--from", dest="sender", metavar="NUMBER", help="the participant's number")
    who.add_argument("--record", metavar="ID", help="the record whose phone sends the text")
    p.add_argument("--to", default="", help="the number texted (default TWILIO_FROM_NUMBER)")
    p.add_argument("--media", type=int, default=0, metavar="N", help="attach N media (an MMS)")
    p.add_argument("body", help="what the participant texts (quote it; may be empty with --media)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        env = read_settings(args.env_file)
        sender = args.sender or record_phone(env, args.record)
        sid = post_inbound(env, sender, args.to, args.body, args.media)
    except ConfigError as exc:
        sys.stderr.write(f"sandbox reply: {exc}\n")
        return EXIT_CONFIG
    except (InvalidPhone, ReplyFailed) as exc:
        sys.stderr.write(f"sandbox reply: {exc}\n")
        return EXIT_FAILURE
    to = args.to or env.get("TWILIO_FROM_NUMBER", "")
    who = mask_phone(sender) or "a sender ID"  # letters only: nothing to mask by digits
    sys.stdout.write(f"{who} texted {mask_phone(to)}: {sid}\n")
    return EXIT_OK


class ReplyFailed(Exception):
    """The simulator (or REDCap simulator) could not take or answer the request."""


def read_settings(path: Path) -> dict[str, str]:
    """The sandbox's settings; ConfigError unless they point at a local Twilio simulator."""
    if not path.is_file():
        raise ConfigError(f"{path} not found; start python -m sandbox first (it writes it)")
    env = {k: v for k, v in dotenv_values(path).items() if v is not None}
    for key in ("TWILIO_API_BASE_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        if not env.get(key):
            raise ConfigError(f"{key} is not set in {path}; use the file python -m sandbox wrote")
    if urlsplit(env["TWILIO_API_BASE_URL"]).hostname not in LOCAL_HOSTS:
        raise ConfigError(
            f"TWILIO_API_BASE_URL in {path} is not a local simulator; reply only talks to "
            "python -m sandbox (http://127.0.0.1:PORT)"
        )
    return env


def record_phone(env: Mapping[str, str], record: str) -> str:
    """The E.164 phone of ``record`` in the simulated REDCap: the first usable PHONE_FIELDS one."""
    url, token = env.get("REDCAP_API_URL", ""), env.get("REDCAP_API_TOKEN", "")
    if not url or not token:
        raise ConfigError("REDCAP_API_URL and REDCAP_API_TOKEN are needed for --record")
    if urlsplit(url).hostname not in LOCAL_HOSTS:
        raise ConfigError("REDCAP_API_URL is not a local simulator; use --from with a number")
    wanted = [f.strip() for f in (env.get("PHONE_FIELDS") or DEFAULT_PHONE_FIELDS).split(",")]
    try:
        project = PyCapProject(url, token)
        fields = [f for f in wanted if f in project.field_names]
        if not fields:
            raise ConfigError(f"no phone field ({', '.join(wanted)}) in the project")
        rows = project.export_records(records=[record], fields=fields)
    except (RedcapError, requests.RequestException) as exc:
        raise ReplyFailed(
            f"the REDCap simulator could not be read ({type(exc).__name__})"
        ) from None
    if not rows:
        raise ReplyFailed(f"record {record} is not in the project")
    region = (env.get("PHONE_REGION") or "US").upper()
    problems: list[str] = []
    for row in rows:  # longitudinal: one row per event; the phone is in one of them
        try:
            return pick_phone({k: str(v) for k, v in row.items()}, fields, region)[1]
        except InvalidPhone as exc:
            problems.append(str(exc))
    raise InvalidPhone("no_phone", f"record {record}: {problems[0]}")


def post_inbound(env: Mapping[str, str], sender: str, to: str, body: str, media: int) -> str:
    """Post one inbound message to the simulator's control endpoint; the new message's SID."""
    url = env["TWILIO_API_BASE_URL"].rstrip("/") + CONTROL_PATH
    form = {"From": sender, "Body": body, "NumMedia": str(media)}
    if to:
        form["To"] = to
    auth = (env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"])
    try:
        answer = requests.post(url, data=form, auth=auth, timeout=TIMEOUT)
    except requests.RequestException:
        raise ReplyFailed(
            f"the Twilio simulator at {env['TWILIO_API_BASE_URL']} did not answer; is "
            "python -m sandbox still running?"
        ) from None
    try:
        payload = answer.json()
    except ValueError:
        payload = {}
    if answer.status_code != 201:
        if answer.status_code == 401:
            raise ConfigError("the Twilio simulator refused the credentials: a stale env file?")
        reason = payload.get("message") if isinstance(payload, dict) else None
        raise ReplyFailed(f"the Twilio simulator refused it: {reason or answer.status_code}")
    return str(payload.get("sid", ""))
