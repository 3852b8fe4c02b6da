"""``admin check`` tells the truth and exits as the services do; ``admin instrument`` needs no
REDCap, and ``--reports`` prints the report recipes for the rules configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services.conftest import ROOT, Rig, clean_env

DEMO_RULES = ROOT / "sandbox" / "demo_rules.toml"


def test_a_wrong_twilio_token_names_the_credentials_and_exits_2(rig: Rig) -> None:
    """Twilio's 401/20003 is the credentials' fault, said as the sender says it: exit 2."""
    done = rig.run("services.admin", "check", TWILIO_AUTH_TOKEN="not-the-token")
    assert done.returncode == 2, done.stdout
    [failed] = [line for line in done.stdout.splitlines() if line.startswith("[FAIL]")]
    assert failed.startswith("[FAIL] Twilio credentials: Twilio refused the credentials")
    assert "error 20003" in failed and "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in failed
    assert "could not be reached" not in done.stdout


def test_exit_codes_are_the_services_ones(rig: Rig) -> None:
    """A bad setting 2, the project 3, an unreachable REDCap 1, all good 0: what the services
    exit with for the same problem."""
    assert rig.run("services.admin", "check", SMS_DELAY_MINUTES="soon").returncode == 2
    assert (
        rig.run("services.registration_detector", "--once", SMS_DELAY_MINUTES="soon").returncode
        == 2
    )
    assert rig.run("services.admin", "check", REDCAP_PROJECT_ID="77").returncode == 3
    away = "http://127.0.0.1:9/api/"  # nothing listens on the discard port
    assert rig.run("services.admin", "check", REDCAP_API_URL=away).returncode == 1
    assert rig.run("services.admin", "check").returncode == 0


def run_instrument(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """``admin instrument`` in a directory without any settings file, as before go-live."""
    return subprocess.run(
        [sys.executable, "-m", "services.admin", "instrument", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), **environ},
    )


def test_instrument_needs_no_redcap_settings(tmp_path: Path) -> None:
    """With only a rules file (or none) it prints the fields: no REDCap URL, token or id."""
    done = run_instrument(tmp_path, "--rules-file", str(DEMO_RULES))
    assert done.returncode == 0, done.stderr
    names = [line.split(",")[0] for line in done.stdout.splitlines()[1:]]
    assert "welcome_status" in names and "visit_answer_sms_sid" in names
    from_env = run_instrument(tmp_path, RULES_FILE=str(DEMO_RULES))
    assert from_env.stdout == done.stdout
    builtin = run_instrument(tmp_path)
    assert builtin.returncode == 0, builtin.stderr
    assert builtin.stdout == (ROOT / "redcap" / "pipeline_instrument.csv").read_text()


def test_instrument_still_refuses_a_bad_rules_file_in_one_line(tmp_path: Path) -> None:
    """No REDCap is needed, but the rules are checked as every command checks them."""
    rules = tmp_path / "rules.toml"
    rules.write_text(DEMO_RULES.read_text().replace("delay_minutes = 0.5", "delay_minute = 0.5"))
    done = run_instrument(tmp_path, "--rules-file", str(rules))
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "rule 'reminder': unknown key 'delay_minute'; did you mean 'delay_minutes'?" in line
    assert line.endswith("(see docs/rules.md)")


def test_reports_print_each_rules_recipes_ready_to_paste(tmp_path: Path) -> None:
    """--reports: per rule its funnel, attention and waiting filters in its own fields; replies
    and opt-outs for a rule that takes replies; event-qualified on a longitudinal project."""
    done = run_instrument(tmp_path, "--reports", "--rules-file", str(DEMO_RULES))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "filter: [reminder_status] <> ''" in out
    assert "[visit_status] = 'expired'" in out  # anchored: a visit that passed unreminded
    late = "datediff([visit_datetime], 'now', 'h', true) > -23"  # 23 h before, 1 h past due
    assert f"filter: [visit_status] = 'registered' and {late}" in out
    assert "filter: [visit_reply] <> ''" in out and "filter: [relay_opted_out] = '1'" in out
    assert "pipeline_" not in out and "sms_to" not in out and "reply_text" not in out
    events = run_instrument(
        tmp_path, "--reports", "--rules-file", str(DEMO_RULES), REDCAP_EVENT="enrollment_arm_1"
    )
    assert "filter: [enrollment_arm_1][welcome_status] <> ''" in events.stdout


def test_a_bad_rules_file_is_one_failing_line_exit_2(rig: Rig, tmp_path: Path) -> None:
    """The rules' mistake, named with the likely key and the rules page; no "see .env.example"."""
    rules = tmp_path / "rules.toml"
    rules.write_text(DEMO_RULES.read_text().replace("stop_when", "stop_wen"))
    done = rig.run("services.admin", "check", RULES_FILE=str(rules))
    assert done.returncode == 2
    [failed] = [line for line in done.stdout.splitlines() if line.startswith("[FAIL]")]
    assert "rule 'reminder': unknown key 'stop_wen'; did you mean 'stop_when'?" in failed
    assert failed.endswith("(see docs/rules.md)") and ".env.example" not in done.stdout
