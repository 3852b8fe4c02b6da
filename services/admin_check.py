"""``admin check``: every setting, the REDCap project, the survey and Twilio, as a checklist.

Each line is ``[ok  ]`` or ``[FAIL]`` with what was found and, for a failure, the fix. Exit 0 when
everything passed, 1 otherwise. Nothing is written anywhere.
"""

from __future__ import annotations

from common.checks import Check
from common.errors import ConfigError, RelayError
from common.project import NOT_SURVEY_FIX, SURVEY_FIX, inspect, survey_checks
from common.redcap_client import RedcapClient
from common.runner import EXIT_FAILURE, EXIT_OK, load_settings
from common.settings import Settings
from common.twilio_client import SmsGateway
from messaging.samples import samples


def command_check(env_file: str | None) -> int:
    checks: list[Check] = []
    try:
        settings = load_settings(env_file)
        checks.append(Check("settings", True, "all settings parse"))
    except ConfigError as exc:
        checks.append(Check("settings", False, str(exc), "see .env.example"))
        return _print_checks(checks)
    checks += _redcap_checks(settings)
    checks += _twilio_checks(settings)
    checks += template_checks(settings)
    return _print_checks(checks)


def template_checks(settings: Settings) -> list[Check]:
    """Every rule's template in every language, rendered with a typical link and sample
    values: its length and SMS segments (GSM-7 or UCS-2); more than 3 is a warning (each
    segment is billed, and long texts are read less)."""
    checks = []
    for rule in settings.rules:
        name = "template" if rule.builtin else f"template {rule.name}"
        for sample in samples(rule.templates, settings.timezone):
            where = f"{name} ({sample.locale})" if len(rule.templates.templates) > 1 else name
            count = sample.segments.count
            link = " with a typical link" if rule.survey else ""
            detail = (
                f"about {sample.length} characters{link}: {count} SMS "
                f"segment{'s' if count != 1 else ''} ({sample.segments.encoding})"
            )
            if sample.warning:
                detail += "; shorten it (more than 3 segments cost more and are read less)"
            checks.append(Check(where, True, detail, warning=sample.warning))
    return checks


def _redcap_checks(settings: Settings) -> list[Check]:
    client = RedcapClient(
        settings.redcap_api_url, settings.redcap_api_token, settings.http_timeout_seconds
    )
    try:
        layout, checks = inspect(client, settings)
    except RelayError as exc:
        return [Check("REDCap", False, str(exc), "check REDCAP_API_URL and REDCAP_API_TOKEN")]
    checks = [Check("REDCap", True, settings.redcap_api_url), *checks]
    if layout is not None:
        try:
            checks += survey_checks(client, settings, layout)
        except RelayError as exc:
            checks.append(Check("survey instrument", False, str(exc), NOT_SURVEY_FIX))
    elif not settings.survey_instrument:
        checks.append(Check("survey instrument", False, "SURVEY_INSTRUMENT is not set", SURVEY_FIX))
    return checks


def _twilio_checks(settings: Settings) -> list[Check]:
    try:
        settings.require_twilio()
    except ConfigError as exc:
        return [Check("Twilio settings", False, str(exc), "see .env.example")]
    gateway = SmsGateway(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        base_url=settings.twilio_api_base_url,
        timeout=15,
    )
    try:
        gateway.check_credentials()
    except ConfigError as exc:
        return [Check("Twilio credentials", False, str(exc), "copy them again from the console")]
    except RelayError as exc:
        return [Check("Twilio credentials", False, str(exc), "check TWILIO_API_BASE_URL/network")]
    return [
        Check("Twilio credentials", True, f"account {settings.twilio_account_sid[:6]}..."),
        Check("Twilio sender", True, settings.sender_label),
    ]


def _print_checks(checks: list[Check]) -> int:
    for check in checks:
        mark = "FAIL" if not check.ok else "warn" if check.warning else "ok  "
        line = f"[{mark}] {check.name}: {check.detail}"
        if not check.ok and check.fix:
            line += f"\n       fix: {check.fix}"
        print(line)
    failed = sum(not c.ok for c in checks)
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return EXIT_OK if not failed else EXIT_FAILURE
