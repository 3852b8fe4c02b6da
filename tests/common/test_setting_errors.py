"""Malformed settings, as a careless user types them: each ends in one line naming the setting.

Every setting is tried with the kinds of mistake people make: non-finite numbers, negatives,
zero where zero means nothing, words, units, blanks where a value is required, unknown names.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.settings import Settings, load_settings
from messaging.rules_file import rules_for

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "REDCAP_API_URL": "https://redcap.example.org/api/",
    "REDCAP_API_TOKEN": "0123456789ABCDEF0123456789ABCDEF",
    "REDCAP_PROJECT_ID": "12",
    "SURVEY_INSTRUMENT": "interest_form",
    "TIMEZONE": "America/New_York",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "secret",
    "TWILIO_FROM_NUMBER": "+15005550006",
}
GRAPH = {
    "GRAPH_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
    "GRAPH_CLIENT_ID": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
    "GRAPH_CLIENT_SECRET": "s3cret~value",
    "GRAPH_SENDER": "study-team@example.org",
}
GOOD.update(GRAPH)
NON_FINITE = ("inf", "-inf", "nan", "1e400", "Infinity")

BAD: dict[str, tuple[str, ...]] = {
    "REDCAP_API_URL": (
        "",
        "redcap.example.org/api/",
        "https://redcap.example.org/",
        "ftp://x/api/",
        "http://redcap.example.org/api/",  # the token in clear text
        "http://127.0.0.1.example.org/api/",
        "http://localhost@redcap.example.org/api/",
        "http://[::1/api/",
    ),
    "REDCAP_API_TOKEN": ("", "abc", "G" * 32, "0123456789ABCDEF0123456789ABCDEF00"),
    "REDCAP_PROJECT_ID": ("", "0", "-1", "twelve", "1.5", "1e3", "inf"),
    "REDCAP_EVENT": ("Enrollment Arm 1", "enrollment-arm-1"),
    "REGISTRATION_COMPLETE_FIELD": ("Registration Complete", "1registration", "reg-complete"),
    "REGISTRATION_COMPLETE_VALUE": ("Complete '2'", "2 or 1"),
    "PHONE_FIELDS": (",", "phone number", "Phone"),
    "PHONE_REGION": ("USA", "ZZ", "1"),
    "SURVEY_INSTRUMENT": ("Interest Form", "interest-form"),
    "SMS_TEMPLATE": ("no link here", "{survey_link", "Hi {name}: {survey_link}"),
    "SMS_DELAY_MINUTES": (*NON_FINITE, "-1", "five", "5m", "5 minutes", "1,5"),
    "POLL_INTERVAL_SECONDS": ("0", "inf", "nan", "-5", "10s", "90000"),
    "SWEEP_MINUTES": ("-1", "1441", "15m", "nan"),
    "SMS_MAX_PER_SECOND": ("0", "inf", "nan", "fast", "-1", "1/s", "10", "100"),
    "REDCAP_MAX_PER_MINUTE": ("0", "59", "lots", "600/min", "inf"),
    "SMS_MAX_ATTEMPTS": ("0", "three", "2.5", "-1", "inf", "1000"),
    "SMS_MAX_INTERRUPTED": ("0", "five", "-1", "1.5", "1000"),
    "MAX_NEW_PER_CYCLE": ("0", "many", "1e3", "-25"),
    "QUIET_HOURS": ("9pm-8am", "25:00-08:00", "21:00", "21:00-21:00", "21:60-08:00"),
    "TIMEZONE": ("EST5", "Mars/Olympus", "../../etc/passwd", "GMT+3 hours"),
    "REDCAP_TIMEZONE": ("Mars/Olympus", "GMT+3 hours"),
    "SMS_ALLOWED_NUMBERS": ("abc", "123", "+1617555010x"),
    "DRY_RUN": ("maybe", "2", "yes please"),
    "CONVERSATION_LOG": ("maybe", "2"),
    "TWILIO_LOOKUP": ("maybe", "2"),
    "DELIVERY_CHECK_MAX_HOURS": ("0", *NON_FINITE, "-1", "three days", "72h"),
    "SMS_CLAIM_TIMEOUT_SECONDS": ("-1", *NON_FINITE, "2 minutes"),
    "SMS_REVIEW_AFTER_HOURS": ("-1", *NON_FINITE, "a day"),
    "SEND_GIVE_UP_HOURS": ("0", *NON_FINITE, "a day"),
    "CLAIM_SETTLE_SECONDS": ("0", "61", *NON_FINITE, "short"),
    "EMAIL_SENT_ITEMS_GRACE_MINUTES": ("-1", *NON_FINITE, "soon"),
    "HTTP_TIMEOUT_SECONDS": ("0", "0.5", *NON_FINITE, "30s", "-30"),
    "TWILIO_ACCOUNT_SID": ("", "123", "SK" + "0" * 32),
    "TWILIO_AUTH_TOKEN": ("",),
    "TWILIO_FROM_NUMBER": ("6175550100", "+1 617 555 0100", "twilio"),
    "TWILIO_MESSAGING_SERVICE_SID": ("MG123", "AC" + "0" * 32),
    "TWILIO_API_BASE_URL": ("api.twilio.com", "http://api.twilio.com"),
    "LOG_LEVEL": ("verbose", "5"),
    "LOG_FORMAT": ("xml", "pretty"),
    "RULES_FILE": ("/nonexistent/rules.toml", "rules.tmol"),
    "GRAPH_TENANT_ID": ("", "my tenant", "common", "{72f988bf-86f1-41af-91ab-2d7cd011db47}"),
    "GRAPH_CLIENT_ID": ("", "12345", "my-app", "0b1c2d3e-4f50-6172-8394"),
    "GRAPH_CLIENT_SECRET": ("",),
    "GRAPH_CERT_PATH": ("/nonexistent/key.pem",),  # together with a secret: one or the other
    "GRAPH_CERT_THUMBPRINT": ("A1B2",),
    "GRAPH_SENDER": ("", "study team", "study@", "@example.org", "study@example"),
    "GRAPH_AUTHORITY_URL": ("login.microsoftonline.com", "https:/login", "http://login.example"),
    "GRAPH_API_BASE_URL": ("graph.microsoft.com", "http://graph.microsoft.com"),
    "GRAPH_CAN_READ_SENT": ("maybe", "2"),
    "EMAIL_FIELDS": (",", "email address", "Email"),
    "EMAIL_ALLOWED_ADDRESSES": ("ada", "ada@", "a@b", "ada@example.org; bob@example.org"),
    "EMAIL_MAX_PER_MINUTE": ("0", *NON_FINITE, "lots", "-1", "30/min", "100000"),
    "ALERT_EMAIL_TO": ("coordinator", "a@example.org, c", "team@localhost"),
    "ALERT_MIN_INTERVAL_MINUTES": ("0", *NON_FINITE, "hourly", "-5", "60m"),
    "REPORT_EMAIL_TO": ("team", "a@example.org; b@example.org", "report@localhost"),
    "REPLY_LOOKBACK_HOURS": ("0", "0.5", *NON_FINITE, "-72", "three days", "72h", "9000"),
    "CONSENT_FIELD": ("Consent Given", "consent-given"),
    # Beside production's REDCap, Twilio and Microsoft a rehearsal's clock is always refused.
    "SANDBOX_CLOCK_FILE": ("/nonexistent/clock", "/etc/hostname"),
}
CASES = [(name, value) for name, values in BAD.items() for value in values]


def settle(env: dict[str, str]) -> Settings:
    """What every sending command does at startup: parse, read its rules, then its Twilio and
    survey needs, and its e-mail needs (a command with an e-mail rule)."""
    settings = Settings.from_env(env)
    rules_for(settings)
    settings.require_twilio()
    settings.require_survey()
    settings.require_graph()
    return settings


def test_the_good_settings_pass() -> None:
    """The base every bad case is made from is itself valid (so each case tests one thing)."""
    assert settle(dict(GOOD)).sms_delay_minutes == 1


def test_every_setting_is_tried() -> None:
    """The table covers every setting a command reads (LOCK_DIR accepts any path)."""
    assert len(CASES) >= 44
    example = (ROOT / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    assert documented - set(BAD) == {"LOCK_DIR"}


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_a_malformed_value_is_refused_in_one_line_naming_the_setting(name: str, value: str) -> None:
    """ConfigError, one line, naming the variable; never another exception."""
    env = {**GOOD, name: value}
    if name == "TWILIO_MESSAGING_SERVICE_SID":
        env.pop("TWILIO_FROM_NUMBER")
    with pytest.raises(ConfigError) as caught:
        settle(env)
    message = str(caught.value)
    assert name in message and "\n" not in message


def test_an_unknown_name_in_the_settings_file_is_refused_with_a_suggestion(
    tmp_path: Path,
) -> None:
    """A typo'd setting in .env would silently do nothing: it is an error with the likely fix."""
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()) + "SMS_DELAY_MINUTE=30\n")
    env.chmod(0o600)  # private, as the services require
    with pytest.raises(ConfigError, match=r"SMS_DELAY_MINUTE in .* did you mean SMS_DELAY_MINUTES"):
        load_settings(str(env), {})
    env.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()))
    real_environment = {"SMS_DELAY_MINUTES": "2", "HOME": "/root", "EDITOR": "vi"}
    assert load_settings(str(env), real_environment).sms_delay_minutes == 2


@pytest.mark.parametrize(
    ("line", "named"),
    [("SMS_DELAY_MINUTES=inf", "SMS_DELAY_MINUTES"), ("SMS_DELAYMINUTES=5", "SMS_DELAYMINUTES")],
)
def test_services_end_in_one_line_and_exit_2(tmp_path: Path, line: str, named: str) -> None:
    """As a user runs it: exit 2 and one line on stderr naming the setting, no traceback."""
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()) + line + "\n")
    env.chmod(0o600)  # private, as the services require
    done = subprocess.run(
        [sys.executable, "-m", "services.sms_sender", "--once", "--env-file", str(env)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    [said] = done.stderr.strip().splitlines()
    assert named in said and "Traceback" not in done.stderr


def test_commands_without_email_need_no_graph_setting() -> None:
    """E-mail settings are optional until a command needs e-mail: then the first missing one
    is named in one line."""
    plain = {k: v for k, v in GOOD.items() if k not in GRAPH}
    settings = Settings.from_env(plain)
    settings.require_twilio()
    assert settings.graph_authority_url == "https://login.microsoftonline.com"
    assert settings.graph_api_base_url == "https://graph.microsoft.com"
    assert not settings.graph_can_read_sent
    with pytest.raises(ConfigError, match=r"^GRAPH_TENANT_ID [^\n]*$"):
        settings.require_graph()


def test_a_certificate_instead_of_a_secret(tmp_path: Path) -> None:
    """GRAPH_CERT_PATH + GRAPH_CERT_THUMBPRINT replace the secret; each is checked by name."""
    key = tmp_path / "graph-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    env = {k: v for k, v in GOOD.items() if k != "GRAPH_CLIENT_SECRET"}
    cert = {"GRAPH_CERT_PATH": str(key), "GRAPH_CERT_THUMBPRINT": "AB" * 20}
    settled = settle({**env, **cert})
    assert settled.graph_cert_path == key and settled.graph_client_secret == ""
    for name, value in (
        ("GRAPH_CERT_PATH", str(tmp_path / "missing.pem")),
        ("GRAPH_CERT_PATH", ""),
        ("GRAPH_CERT_THUMBPRINT", "not-hex"),
        ("GRAPH_CERT_THUMBPRINT", ""),
    ):
        with pytest.raises(ConfigError) as caught:
            settle({**env, **cert, name: value})
        assert name in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_private_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    """GRAPH_CERT_PATH's key is checked like the settings file: group or others may not read it;
    one line naming the setting, the file and chmod 600."""
    key = tmp_path / "graph-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(mode)
    env = {k: v for k, v in GOOD.items() if k != "GRAPH_CLIENT_SECRET"}
    cert = {"GRAPH_CERT_PATH": str(key), "GRAPH_CERT_THUMBPRINT": "AB" * 20}
    with pytest.raises(ConfigError) as caught:
        settle({**env, **cert})
    message = str(caught.value)
    assert message.startswith(f"GRAPH_CERT_PATH={key}: group or others can access it")
    assert message.endswith(f"private key; make it private: chmod 600 {key}")
    assert f"(mode {mode:03o})" in message and "\n" not in message


LOOPBACK = ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080")


@pytest.mark.parametrize("base", LOOPBACK)
def test_plain_http_is_allowed_to_this_machine_only(base: str) -> None:
    """The sandbox's simulators listen on loopback over plain http: allowed there, for all four
    URLs that carry a secret; anywhere else http is refused with the reason."""
    urls = {
        "REDCAP_API_URL": f"{base}/api/",
        "TWILIO_API_BASE_URL": base,
        "GRAPH_AUTHORITY_URL": base,
        "GRAPH_API_BASE_URL": base,
    }
    assert settle({**GOOD, **urls}).redcap_api_url == f"{base}/api/"
    with pytest.raises(ConfigError) as caught:
        settle({**GOOD, **urls, "REDCAP_API_URL": "http://redcap.example.org/api/"})
    assert str(caught.value) == (
        "REDCAP_API_URL=http://redcap.example.org/api/: http:// would send the REDCap API token "
        "unencrypted over the network; use https:// (plain http is allowed only to this "
        "machine: localhost, 127.0.0.1, ::1)"
    )
