"""Settings, phones and the template: what a coordinator writes and what the services make of it."""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from common.contacts import mask_phone, pick_phone
from common.errors import ConfigError, InvalidPhone
from common.setting_values import CONTAINER_LOCK_DIR, default_lock_dir
from common.settings import Settings
from messaging.rules_file import rules_for

BASE = {
    "REDCAP_API_URL": "https://redcap.example.org/api",
    "REDCAP_API_TOKEN": "0123456789ABCDEF0123456789ABCDEF",
    "REDCAP_PROJECT_ID": "12",
}


def test_defaults_are_the_documented_ones() -> None:
    """Only the three REDCap settings are required; the rest default as .env.example says."""
    s = Settings.from_env({**BASE, "TIMEZONE": "America/Chicago"})
    assert s.redcap_api_url == "https://redcap.example.org/api/"  # /api completed to /api/
    assert (s.sms_delay_minutes, s.poll_interval_seconds, s.sms_max_per_second) == (1, 10, 1)
    assert (s.sms_max_attempts, s.max_new_per_cycle, s.delivery_check_max_hours) == (3, 25, 72)
    assert s.phone_fields[0] == "phone_number" and s.phone_region == "US"
    assert s.quiet_hours is None and s.sms_allowed_numbers is None and not s.dry_run
    assert str(s.timezone) == "America/Chicago"
    assert s.email_fields[0] == "email" and s.email_allowed_addresses is None
    assert (s.email_max_per_minute, s.alert_email_to, s.alert_min_interval_minutes) == (30, (), 60)
    assert (s.send_give_up_hours, s.email_sent_items_grace_minutes) == (24, 15)
    rules = rules_for(s)
    assert rules.sends_sms and not rules.sends_email  # the built-in rule texts; no alerts


def test_email_rate_is_held_inside_redcaps_budget() -> None:
    """An e-mail costs REDCap about two and a half requests (a link and its launch, plus its
    share of the chunk's claim, two reads and result): a rate that would push the sender past
    80% of REDCAP_MAX_PER_MINUTE (600 by default) is refused, naming the setting and the fastest
    safe one."""
    with pytest.raises(ConfigError, match=r"EMAIL_MAX_PER_MINUTE=200 .* use at most 192"):
        Settings.from_env({**BASE, "EMAIL_MAX_PER_MINUTE": "200"})
    assert Settings.from_env({**BASE, "EMAIL_MAX_PER_MINUTE": "192"}).email_max_per_minute == 192


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDCAP_API_URL", "redcap.example.org"),
        ("REDCAP_PROJECT_ID", ""),
        ("PHONE_REGION", "USA"),
        ("SMS_MAX_ATTEMPTS", "0"),
        ("DRY_RUN", "maybe"),
        ("LOG_FORMAT", "xml"),
        ("SMS_ALLOWED_NUMBERS", "+16175550100, not-a-number"),
        ("QUIET_HOURS", "25:00-08:00"),
    ],
)
def test_each_bad_value_names_its_variable(variable: str, value: str) -> None:
    """A bad value raises ConfigError whose one-line message names the variable."""
    with pytest.raises(ConfigError, match=variable) as error:
        Settings.from_env({**BASE, variable: value})
    assert "\n" not in str(error.value)


def test_quiet_hours_may_cross_midnight() -> None:
    """21:00-08:00 covers late evening and early morning, not the day."""
    quiet = Settings.from_env({**BASE, "QUIET_HOURS": "21:00-08:00"}).quiet_hours
    assert quiet is not None
    assert quiet.contains(time(22, 30)) and quiet.contains(time(7, 59))
    assert not quiet.contains(time(8, 0)) and not quiet.contains(time(12, 0))


def test_allowed_numbers_are_normalized() -> None:
    """SMS_ALLOWED_NUMBERS may be typed any usual way; they are compared as E.164."""
    s = Settings.from_env({**BASE, "SMS_ALLOWED_NUMBERS": "(617) 555-0100, +44 20 7946 0958"})
    assert s.sms_allowed_numbers == {"+16175550100", "+442079460958"}


def test_twilio_settings_are_checked_only_where_needed() -> None:
    """The detector runs without Twilio settings; the sender's check names what is missing."""
    s = Settings.from_env(BASE)
    with pytest.raises(ConfigError, match="TWILIO_ACCOUNT_SID"):
        s.require_twilio()
    with pytest.raises(ConfigError, match="SURVEY_INSTRUMENT"):
        s.require_survey()


def test_first_usable_phone_field_wins_and_reasons_hold_no_digits() -> None:
    """PHONE_FIELDS are tried in order; the reason for failure never repeats the number."""
    fields = ("phone_number", "mobile")
    assert pick_phone({"phone_number": "", "mobile": "617 555 0100"}, fields, "US") == (
        "mobile",
        "+16175550100",
    )
    with pytest.raises(InvalidPhone) as error:
        pick_phone({"phone_number": "555-0123", "mobile": "12"}, fields, "US")
    assert error.value.code == "invalid_phone" and "0123" not in str(error.value)
    assert mask_phone("+16175550100") == "+1******0100"


def test_sms_template_makes_the_built_in_rule() -> None:
    """SMS_TEMPLATE: {survey_link} required; {record_id} and {field:NAME} filled; others refused
    in one line naming SMS_TEMPLATE."""
    text = "Hi {field:first_name} ({record_id}): {survey_link}"
    [rule] = rules_for(Settings.from_env({**BASE, "SMS_TEMPLATE": text})).written
    locale, template = rule.templates.choose({})
    assert rule.templates.fields == ("first_name",)
    body = template.render("https://x/s", "7", {"first_name": "Ada"}, locale, ZoneInfo("UTC"))
    assert body == "Hi Ada (7): https://x/s"
    for bad in ("no link", "{link}", "{survey_link} {field:Bad Name}", "{survey_link"):
        with pytest.raises(ConfigError, match=r"^SMS_TEMPLATE: "):
            rules_for(Settings.from_env({**BASE, "SMS_TEMPLATE": bad}))


def test_the_lock_dir_defaults_to_the_users_runtime_directory(tmp_path: Path) -> None:
    """LOCK_DIR unset: $XDG_RUNTIME_DIR; without it (a shell from sudo or su) the directory it
    would name, when it exists and is this user's: the one the systemd units lock in, so admin
    force there still meets the sender's lock; else /tmp."""
    root = tmp_path / "run-user"
    runtime = root / str(os.getuid())
    given = {**BASE, "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert Settings.from_env(given).lock_dir == Path("/run/user/1000")
    assert default_lock_dir({}, root) == CONTAINER_LOCK_DIR
    runtime.mkdir(parents=True)
    assert default_lock_dir({}, root) == str(runtime)
    assert default_lock_dir({"XDG_RUNTIME_DIR": "/elsewhere"}, root) == "/elsewhere"
    if os.getuid() == 0:  # another user's directory of that name is not ours to lock in
        os.chown(runtime, 4321, 4321)
        assert default_lock_dir({}, root) == CONTAINER_LOCK_DIR
