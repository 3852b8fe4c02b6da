"""``admin check``: every setting, the REDCap project, the survey, Twilio and Microsoft Graph,
as a checklist, with what it can see of the go-live checklist (:mod:`.golive`).

Twilio is checked only when a rule sends SMS, Graph only when a rule sends e-mail or staff alerts
are on: an e-mail-only study needs no Twilio account.

Each line is ``[ok  ]``, ``[warn]`` or ``[FAIL]`` with what was found and, for a failure, the fix.
Nothing is written anywhere. The exit code is the one the services would give the first failure
listed (:func:`common.runner.exit_code`): 0 when everything passed (warnings pass), 2 for a
setting, the rules file or credentials Twilio or Microsoft refuse, 3 for the project (its id,
fields, event, survey), 4 when REDCap has banned this machine, 1 for anything else (a service
that cannot be reached).

The REDCap budget line adds up the studies polling the same REDCap from this host (the installed
instances and these settings, :mod:`services.admin.capacity`) and warns past half of REDCap's
limit. The clock lines compare this machine's clock with REDCap's and Twilio's (their answers'
``Date`` headers) and warn past :data:`CLOCK_TOLERANCE`: delays and claim timeouts run on this
clock while Twilio's times say when messages and replies happened. The senders line warns when
a sender on another host claimed messages in this project within the last hour (each claim
names its host, :mod:`messaging.claims`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.clock import clock_for
from common.errors import ConfigError, RelayError
from common.graph_client import GraphMailer
from common.project import Check, Layout, inspect
from common.redcap_client import RedcapClient
from common.runner import EXIT_CONFIG, EXIT_OK, EXIT_PROJECT, exit_code, load_settings
from common.settings import Settings
from common.twilio_client import SmsGateway
from messaging.checks import NOT_SURVEY_FIX, SURVEY_FIX, needs, survey_checks
from messaging.claims import host_id, other_hosts
from messaging.rules import Rule, Rules, time_dependent
from messaging.rules_file import rules_for
from messaging.samples import mail_samples, samples
from messaging.templates import LocalizedTemplates
from services.admin import capacity, golive

SETTINGS_FIX = "see docs/settings.md (and the comments in .env.example)"
OTHER_HOSTS_WINDOW = timedelta(minutes=60)  # how far back admin check looks for other senders


@dataclass
class Checklist:
    """The lines of ``admin check``, each with the exit code its failure means."""

    lines: list[tuple[Check, int]] = field(default_factory=list)

    def add(self, checks: Iterable[Check], failure: int = EXIT_PROJECT) -> None:
        self.lines += [(check, failure) for check in checks]

    def print(self) -> int:
        """Print every line; the exit code of the first failure (0 if none)."""
        for check, _ in self.lines:
            mark = "FAIL" if not check.ok else "warn" if check.warning else "ok  "
            line = f"[{mark}] {check.name}: {check.detail}"
            if not check.ok and check.fix:
                line += f"\n       fix: {check.fix}"
            print(line)
        failed = [code for check, code in self.lines if not check.ok]
        print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
        return failed[0] if failed else EXIT_OK


CLOCK_TOLERANCE = timedelta(seconds=30)
CLOCK_FIX = (
    "keep this machine's clock synchronised (systemd-timesyncd or chrony: "
    "timedatectl show-timesync)"
)


def command_check(env_file: str | None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    out = Checklist()
    try:
        settings = load_settings(env_file, environ)
        out.add([Check("settings", True, "all settings parse")])
    except ConfigError as exc:
        out.add([Check("settings", False, str(exc), SETTINGS_FIX)], EXIT_CONFIG)
        return out.print()
    try:
        rules = rules_for(settings)
    except ConfigError as exc:  # its message names the rule, the key and docs/rules.md
        out.add([Check("rules", False, str(exc))], EXIT_CONFIG)
        return out.print()
    out.add(budget_checks(settings, env_file, environ))
    layout = _redcap_checks(settings, rules, out)
    if rules.sends_sms:
        _twilio_checks(settings, out)
    else:
        out.add([Check("Twilio", True, "not needed: no rule sends SMS")])
    if rules.sends_email or settings.alert_email_to:
        _graph_checks(settings, out)
    out.add(template_checks(settings, rules))
    out.add(reply_checks(settings, rules))
    out.add(clock_logic_checks(settings, rules))
    out.add(golive.consent(settings, rules, layout.metadata if layout else None))
    if rules.sends_sms:
        out.add(golive.reply_words(settings, rules))
    return out.print()


def budget_checks(
    settings: Settings, env_file: str | None, environ: Mapping[str, str]
) -> list[Check]:
    """The requests a minute of every study polling this REDCap from this host; a warning (not
    a failure: nothing is wrong yet) past half of REDCAP_MAX_PER_MINUTE, and a note for each
    installed instance whose settings do not parse."""
    path = Path(env_file or ".env")
    load, notes = capacity.host_load(settings, path if path.exists() else None, environ)
    checks = [Check("REDCap budget", True, capacity.describe(load), warning=load.over)]
    checks += [Check("REDCap budget", True, note, warning=True) for note in notes]
    return checks


def template_checks(settings: Settings, rules: Rules) -> list[Check]:
    """Every rule's templates in every language, rendered with a typical link and sample
    values: an SMS template's length and segments (GSM-7 or UCS-2), more than 3 a warning (each
    segment is billed, and long texts are read less); an e-mail's subject and lengths."""
    checks = []
    for rule in rules.written:
        if rule.sends_sms:  # an e-mail-only rule's templates are a placeholder, never sent
            name = "template" if rule.builtin else f"template {rule.name}"
            checks += _sms_template_checks(settings, rule.templates, name, bool(rule.survey))
        if rule.mail is not None:
            checks += _mail_template_checks(settings, rule)
        for answer in rule.answers.values():  # auto-answers are texts too, and never link
            checks += _sms_template_checks(settings, answer, f"auto-answer {rule.name}", False)
    return checks


def reply_checks(settings: Settings, rules: Rules) -> list[Check]:
    """A rule whose reply window is longer than REPLY_LOOKBACK_HOURS: replies past the lookback
    are never read, so its window is shorter than it says."""
    checks = []
    for rule in rules.replying:
        if settings.reply_lookback_hours < rule.reply_within_hours:
            checks.append(
                Check(
                    f"replies {rule.name}",
                    True,
                    f"REPLY_LOOKBACK_HOURS={settings.reply_lookback_hours:g} is shorter than "
                    f"its reply_within_hours = {rule.reply_within_hours:g}: replies later than "
                    f"{settings.reply_lookback_hours:g} hours are never read; raise "
                    f"REPLY_LOOKBACK_HOURS to {rule.reply_within_hours:g}, or shorten the window",
                    warning=True,
                )
            )
    return checks


def clock_logic_checks(settings: Settings, rules: Rules) -> list[Check]:
    """Each rule whose logic reads the clock (``today``, ``now``) and the latency that follows:
    such logic turns true with no change in REDCap's log, which the change probes between sweeps
    read (messaging.probes)."""
    checks = []
    sweep = settings.sweep_minutes
    poll = settings.poll_interval_seconds
    for rule in rules.triggers:
        if not time_dependent(rule.when):
            continue
        if not sweep:
            detail = "its when reads the clock; SWEEP_MINUTES=0: every cycle is a full export"
        elif getattr(rule, "check_every_cycle", False):
            detail = (
                f"its when reads the clock and check_every_cycle = true: found within "
                f"POLL_INTERVAL_SECONDS={poll:g} s, at the cost of REDCap evaluating it on every "
                "record each cycle"
            )
        else:
            detail = (
                f"its when reads the clock (today/now), which no change in REDCap's log shows: "
                f"it is found at the next sweep, up to SWEEP_MINUTES={sweep:g} min after it turns "
                "true. If that is too late, set check_every_cycle = true in the rule (REDCap "
                "then evaluates it on every record each cycle)"
            )
        checks.append(Check(f"timing {rule.name}", True, detail))
    for message_rule in rules.written:
        if time_dependent(message_rule.stop_when):
            checks.append(
                Check(
                    f"timing {message_rule.name}",
                    True,
                    "its stop_when reads the clock: REDCap is asked just before each send, so "
                    "it holds no latency",
                )
            )
    return checks


def clock_check(name: str, theirs: datetime | None, ours: datetime | None = None) -> Check:
    """This machine's clock against ``name``'s (its answer's Date header): a [warn] past
    CLOCK_TOLERANCE."""
    title = f"{name} clock"
    if theirs is None:
        return Check(title, True, f"not compared: {name} sent no Date header", warning=True)
    offset = ((ours or datetime.now(UTC)) - theirs).total_seconds()
    if abs(offset) <= CLOCK_TOLERANCE.total_seconds():
        return Check(title, True, f"this machine's clock is within {abs(offset):.0f} s of it")
    side = "ahead of" if offset > 0 else "behind"
    return Check(
        title,
        True,
        f"this machine's clock is {abs(offset):.0f} s {side} {name}'s (more than "
        f"{CLOCK_TOLERANCE.total_seconds():.0f} s); {CLOCK_FIX}",
        warning=True,
    )


def _sms_template_checks(
    settings: Settings, templates: LocalizedTemplates, name: str, linked: bool
) -> list[Check]:
    checks = []
    many = len(templates.templates) > 1
    keyed = templates.key != "template" or templates.by_language  # name the key as written
    for sample in samples(templates, settings.timezone):
        if keyed and not name.startswith("template"):
            where = f"{name} {templates.where(sample.locale)}"
        else:
            where = f"{name} ({sample.locale})" if many else name
        count = sample.segments.count
        link = " with a typical link" if linked else ""
        detail = (
            f"about {sample.length} characters{link}: {count} SMS "
            f"segment{'s' if count != 1 else ''} ({sample.segments.encoding})"
        )
        if sample.warning:
            detail += "; shorten it (more than 3 segments cost more and are read less)"
        checks.append(Check(where, True, detail, warning=sample.warning))
    return checks


def _mail_template_checks(settings: Settings, rule: Rule) -> list[Check]:
    assert rule.mail is not None  # the caller's condition; narrows the type for mypy
    checks = []
    languages = len(rule.mail.text.templates)
    for sample in mail_samples(rule.mail, settings.timezone):
        where = f"e-mail {rule.name}" + (f" ({sample.locale})" if languages > 1 else "")
        link = " with a typical link" if rule.survey else ""
        detail = f"subject {sample.subject!r}; text about {sample.text_length} characters{link}" + (
            f"; HTML about {sample.html_length}" if sample.html_length is not None else ""
        )
        checks.append(Check(where, True, detail))
    return checks


def _redcap_checks(settings: Settings, rules: Rules, out: Checklist) -> Layout | None:
    """The project check and each rule's survey, into ``out``; the layout when it passed."""
    client = RedcapClient(
        settings.redcap_api_url, settings.redcap_api_token, settings.http_timeout_seconds
    )
    try:
        layout, checks = inspect(client, settings, needs(rules, settings))
    except RelayError as exc:
        fix = "check REDCAP_API_URL and REDCAP_API_TOKEN"
        out.add([Check("REDCap", False, str(exc), fix)], exit_code(exc))
        return None
    out.add([Check("REDCap", True, settings.redcap_api_url), *checks])
    # REDCap answered the checks above; a clock it cannot tell is no failure.
    with contextlib.suppress(RelayError):
        out.add([clock_check("REDCap", client.server_time(), _now(settings))])
    if layout is not None:
        try:
            out.add(survey_checks(client, settings, layout, rules))
        except RelayError as exc:
            out.add([Check("survey instrument", False, str(exc), NOT_SURVEY_FIX)], exit_code(exc))
        with contextlib.suppress(RelayError):  # the project check passed: this is a footnote
            out.add(sender_host_checks(client, settings, layout, rules))
    elif not settings.survey_instrument and not settings.rules_file:
        out.add([Check("survey instrument", False, "SURVEY_INSTRUMENT is not set", SURVEY_FIX)])
    return layout


def sender_host_checks(
    client: RedcapClient, settings: Settings, layout: Layout, rules: Rules
) -> list[Check]:
    """A [warn] per other host whose sender claimed messages in this project within
    :data:`OTHER_HOSTS_WINDOW` (the host each claim token names)."""
    since = _now(settings) - OTHER_HOSTS_WINDOW
    found = other_hosts(client, layout, rules.every, settings.timezone, since)
    minutes = OTHER_HOSTS_WINDOW.total_seconds() / 60
    if not found:
        return [Check("senders", True, f"no sender on another host claimed in {minutes:g} min")]
    return [
        Check(
            "senders",
            True,
            f"a sender on host {host} claimed record {record} (rule {rule}) at "
            f"{at.astimezone(settings.timezone):%Y-%m-%d %H:%M}, and this is {host_id()}: two "
            "senders run on this project. Neither doubles a message (the claims settle for "
            "CLAIM_SETTLE_SECONDS), but keep one: stop the other's service or CronJob",
            warning=True,
        )
        for host, (rule, record, at) in sorted(found.items())
    ]


def _twilio_checks(settings: Settings, out: Checklist) -> None:
    try:
        gateway = SmsGateway.from_settings(settings)
    except ConfigError as exc:
        out.add([Check("Twilio settings", False, str(exc), SETTINGS_FIX)], EXIT_CONFIG)
        return
    try:
        twilio_time = gateway.check_credentials()
    except RelayError as exc:
        refused = "copy the Account SID and Auth Token again from the Twilio console (Account Info)"
        _failed(out, "Twilio credentials", exc, refused, "check TWILIO_API_BASE_URL")
        return
    out.add(
        [
            Check("Twilio credentials", True, f"account {settings.twilio_account_sid[:6]}..."),
            golive.sender(settings),
            clock_check("Twilio", twilio_time, _now(settings)),
        ]
    )


def _now(settings: Settings) -> datetime:
    """The services' time: this machine's, or in a rehearsal the sandbox's clock (which its
    simulators' Date headers follow)."""
    return clock_for(settings.timezone, settings.sandbox_clock_file).now().astimezone(UTC)


def _failed(out: Checklist, name: str, exc: RelayError, refused: str, unreachable: str) -> None:
    """A service that refused our credentials (exit 2: the settings' fault, with ``refused``)
    or could not be reached (exit 1: ``unreachable`` and the network)."""
    fix = refused if isinstance(exc, ConfigError) else f"{unreachable} and the network, then retry"
    out.add([Check(name, False, str(exc), fix)], exit_code(exc))


def _graph_checks(settings: Settings, out: Checklist) -> None:
    """The Graph settings, a token from the identity platform and the sender's mailbox, as far
    as the app's permissions let it be seen. Errors are our one-line messages: they name the
    setting and never quote the secret."""
    try:
        mailer = GraphMailer.from_settings(settings)
    except ConfigError as exc:
        out.add([Check("Graph settings", False, str(exc), SETTINGS_FIX)], EXIT_CONFIG)
        return
    try:
        found = mailer.check()
    except RelayError as exc:
        refused = "compare the GRAPH_* settings with the app registration in the Entra admin center"
        _failed(
            out, "Graph credentials", exc, refused, "check GRAPH_AUTHORITY_URL, GRAPH_API_BASE_URL"
        )
        return
    finally:
        mailer.close()
    out.add(
        [
            Check(
                "Graph credentials", True, f"app {settings.graph_client_id[:8]}...: token acquired"
            ),
            # Unverified is a warning, not a failure: an app without User.Read.All cannot look.
            Check(
                "Graph sender",
                True,
                f"{settings.graph_sender}: {found.detail.removeprefix('token acquired; ')}",
                warning=not found.mailbox_verified,
            ),
        ]
    )
