"""The REDCap budget of the studies on one host (services.capacity), admin check's budget line,
docs/SCALING.md's tables and its Kubernetes example."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from common.settings import Settings
from sandbox.envfile import write_env
from services.admin import capacity
from tests.services.conftest import ROOT, Rig, clean_env, start_rules_rig

URL = "https://redcap.example.org/api/"
BASE = {
    "REDCAP_API_URL": URL,
    "REDCAP_API_TOKEN": "0123456789ABCDEF0123456789ABCDEF",
    "REDCAP_PROJECT_ID": "1",
    "SURVEY_INSTRUMENT": "interest_form",
}
REPLIES = """
[[rule]]
name = "visit"
when = "[registration_complete] = '2'"
delay_minutes = 1
survey = "interest_form"
template = "Your visit is tomorrow: {survey_link}. Reply YES to confirm."
replies.confirmed = ["yes"]

[[rule]]
name = "reminder"
when = "[registration_complete] = '2'"
delay_minutes = 2880
stop_when = "[interest_form_complete] = '2'"
template = "A reminder: your survey is waiting."
"""
EMAIL_ONLY = """
[[rule]]
name = "welcome"
when = "[registration_complete] = '2'"
delay_minutes = 1
channel = "email"
subject = "Your study"
email_template = "Thank you for registering."
"""


def settings(tmp: Path, rules: str = "", **values: str) -> Settings:
    env = {**BASE, **values}
    if rules:
        path = tmp / "rules.toml"
        path.write_text(rules, encoding="utf-8")
        env["RULES_FILE"] = str(path)
    return Settings.from_env(env)


def install(config: Path, name: str, **values: str) -> Path:
    """An instance's settings file where ``admin install-systemd NAME`` puts it."""
    folder = config / "redcap-relay"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.env"
    write_env(path, {**BASE, **values})
    return path


def test_an_idle_cycle_asks_once_per_service_that_runs(tmp_path: Path) -> None:
    """Detector and sender always; the checker only for SMS, the reply poller only for replies."""
    assert capacity.polls_per_cycle(settings(tmp_path)) == 3
    assert capacity.polls_per_cycle(settings(tmp_path, REPLIES)) == 4
    assert capacity.polls_per_cycle(settings(tmp_path, EMAIL_ONLY)) == 2


def test_the_fitting_interval_keeps_polling_to_half_the_limit() -> None:
    """60 x requests per cycle / (half the limit): 4 services of 100 studies fit at 80 s."""
    assert capacity.fitting_interval(400, 600) == pytest.approx(80)
    assert capacity.loop_interval(1) == pytest.approx(0.8)
    assert capacity.loop_interval(5, 20, confirming=True) == pytest.approx(25)


def test_instances_are_read_from_xdg_config_home(tmp_path: Path) -> None:
    """Every NAME.env under $XDG_CONFIG_HOME/redcap-relay is a study, named by its file."""
    install(tmp_path, "alpha", POLL_INTERVAL_SECONDS="5")
    install(tmp_path, "beta", REDCAP_PROJECT_ID="2")
    studies, notes = capacity.installed({"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"})
    assert [(s.name, s.poll_interval_seconds, s.per_minute) for s in studies] == [
        ("alpha", 5, 36),
        ("beta", 10, 18),
    ]
    assert notes == []


def test_without_xdg_config_home_the_folder_is_home_config(tmp_path: Path) -> None:
    """XDG's default: ~/.config when XDG_CONFIG_HOME is unset or empty."""
    install(tmp_path / ".config", "alpha")
    for environ in ({"HOME": str(tmp_path)}, {"HOME": str(tmp_path), "XDG_CONFIG_HOME": ""}):
        studies, _ = capacity.installed(environ)
        assert [s.name for s in studies] == ["alpha"]


def test_a_broken_instance_is_counted_with_a_note(tmp_path: Path) -> None:
    """Settings the loader refuses still run once fixed: counted as four services at the file's
    own interval, with a note naming the file and the error."""
    path = install(tmp_path, "gamma", POLL_INTERVAL_SECONDS="4", SMS_DELAY_MINUTE="1")
    studies, notes = capacity.installed({"XDG_CONFIG_HOME": str(tmp_path)})
    assert [(s.name, s.polls_per_cycle, s.per_minute) for s in studies] == [("gamma", 4, 60)]
    assert len(notes) == 1
    assert str(path) in notes[0] and "SMS_DELAY_MINUTE" in notes[0]
    assert "counted as 4 services every 4 s" in notes[0]


def test_the_current_settings_count_once(tmp_path: Path) -> None:
    """The settings checked are added unless an instance is the same file or the same project
    on the same REDCap; instances on another REDCap do not share its limit."""
    config = tmp_path / "config"
    environ = {"XDG_CONFIG_HOME": str(config)}
    alpha = install(config, "alpha")
    install(config, "other", REDCAP_API_URL="https://redcap.elsewhere.edu/api/")
    current = settings(tmp_path, REDCAP_PROJECT_ID="9")
    load, _ = capacity.host_load(current, tmp_path / ".env", environ)
    assert [s.name for s in load.studies] == ["alpha", str(tmp_path / ".env")]
    assert load.elsewhere == 1 and load.redcap == "redcap.example.org"
    same_file, _ = capacity.host_load(settings(tmp_path), alpha, environ)
    same_project, _ = capacity.host_load(settings(tmp_path), None, environ)
    assert (
        [s.name for s in same_file.studies] == [s.name for s in same_project.studies] == ["alpha"]
    )


def test_past_half_the_limit_names_each_study_and_the_interval_that_fits(tmp_path: Path) -> None:
    """Three studies of three services every second ask 540 a minute: over 300, and 60 x 9 /
    300 = 1.8 s, rounded up to 2 s, would fit."""
    config = tmp_path / "config"
    for n in (1, 2):
        install(config, f"study{n}", REDCAP_PROJECT_ID=str(n), POLL_INTERVAL_SECONDS="1")
    current = settings(tmp_path, REDCAP_PROJECT_ID="3", POLL_INTERVAL_SECONDS="1")
    load, _ = capacity.host_load(current, None, {"XDG_CONFIG_HOME": str(config)})
    assert load.per_minute == 540 and load.over
    text = capacity.describe(load)
    assert "3 studies would poll redcap.example.org about 540 times a minute" in text
    assert "study1 every 1 s (180/min), study2 every 1 s (180/min), .env every 1 s" in text
    assert "POLL_INTERVAL_SECONDS=2 or more in each would fit" in text


def test_the_lowest_limit_among_the_studies_is_the_one_that_counts(tmp_path: Path) -> None:
    """An administrator's raised limit in one file does not hide a default in another."""
    config = tmp_path / "config"
    install(config, "raised", REDCAP_MAX_PER_MINUTE="6000", REDCAP_PROJECT_ID="2")
    current = settings(tmp_path, POLL_INTERVAL_SECONDS="0.5")
    load, _ = capacity.host_load(current, None, {"XDG_CONFIG_HOME": str(config)})
    assert load.limit == 600 and load.per_minute == 360 + 18 and load.over


def admin_check(rig: Rig, config: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """``admin check`` as a user runs it, with ``config`` as XDG_CONFIG_HOME."""
    path = rig.env_file(**overrides)
    return subprocess.run(
        [sys.executable, "-m", "services.admin", "--env-file", str(path), "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), "XDG_CONFIG_HOME": str(config)},
    )


def test_admin_check_warns_but_passes(rig: Rig, tmp_path: Path) -> None:
    """Over half the limit is a [warn] line naming the instances; the check still exits 0, and
    a broken instance is a note, not a failure."""
    config = tmp_path / "config"
    url = rig.env["REDCAP_API_URL"]
    for n in (2, 3, 4):
        install(config, f"study{n}", REDCAP_API_URL=url, REDCAP_PROJECT_ID=str(n))
    install(config, "broken", REDCAP_API_URL=url, REDCAP_PROJECT_ID="5", POLL_INTERVAL_SECONDS="x")
    # The sandbox polls every 2 s (90 a minute), each instance every 10 s (18), the broken one
    # is counted as four services at the default 10 s (24): 168, over half of 200.
    done = admin_check(rig, config, REDCAP_MAX_PER_MINUTE="200")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if "REDCap budget" in line]
    assert len(lines) == 2, done.stdout
    assert lines[0].startswith("[warn] REDCap budget: 5 studies would poll 127.0.0.1 about 168")
    assert "REDCAP_MAX_PER_MINUTE=200" in lines[0] and "study2 every 10 s (18/min)" in lines[0]
    assert "POLL_INTERVAL_SECONDS=10 or more in each would fit" in lines[0]
    assert lines[1].startswith("[warn] REDCap budget: instance broken")
    assert "all checks passed" in done.stdout


def test_admin_check_reports_the_budget_when_it_fits(rig: Rig, tmp_path: Path) -> None:
    """With no instance installed the line counts this study alone, as an [ok  ] line."""
    done = admin_check(rig, tmp_path / "empty")
    assert done.returncode == 0, done.stdout + done.stderr
    # The sandbox polls every 2 s: detector, sender, checker = 90 a minute.
    assert "[ok  ] REDCap budget: 1 study poll 127.0.0.1 about 90 times a minute" in done.stdout


def test_a_once_run_asks_what_the_cron_table_assumes(tmp_path: Path) -> None:
    """Each service's --once run checks the project (3 requests and one logic probe per `when`
    and `stop_when`), the sender also its survey (2), then polls once: 2 rules and a stop_when
    cost 4 x (3 + 3 + 1) + 2 = 30. The reply poller asks nothing while no text is in its
    window, so this idle project sees one fewer."""
    for rig in start_rules_rig(tmp_path, REPLIES):
        path = rig.env_file()
        for module in ("registration_detector", "sms_sender", "delivery_checker", "reply_poller"):
            before = rig.redcap.server.stats.total_requests()
            done = subprocess.run(
                [sys.executable, "-m", f"services.{module}", "--env-file", str(path), "--once"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                env=clean_env(),
            )
            assert done.returncode == 0, done.stderr
            asked = rig.redcap.server.stats.total_requests() - before
            expected = 3 + 2 + 1 + 1 + (2 if module == "sms_sender" else 0)
            assert asked == (expected - 1 if module == "reply_poller" else expected), module
        assert capacity.run_requests(2, stop_whens=1) == 30


def test_the_scaling_doc_shows_the_tables_this_module_computes() -> None:
    """docs/SCALING.md's two tables are the ones capacity renders (numbers never drift)."""
    text = (ROOT / "docs" / "SCALING.md").read_text(encoding="utf-8")
    assert capacity.loop_table() in text
    assert capacity.cron_table() in text


MANIFEST = ROOT / "docs" / "k8s" / "redcap-relay-cronjobs.yaml"
SERVICES = {"registration_detector", "sms_sender", "delivery_checker", "reply_poller"}


def cronjobs() -> list[dict[str, Any]]:
    # PyYAML is no dependency of the services; it arrives with openapi-core (requirements-dev).
    yaml = pytest.importorskip("yaml", reason="PyYAML comes with openapi-core in requirements-dev")
    documents = list(yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")))
    return [doc for doc in documents if doc is not None]


def test_the_example_manifest_runs_each_service_once_never_two_at_a_time() -> None:
    """One CronJob per service of the study, each running that real module with --once and a
    private copy of the settings from the mounted secret (mode 0400), concurrencyPolicy
    Forbid, no retry in the Job, a deadline longer than a start-up at full HTTP timeouts,
    resources set."""
    jobs = cronjobs()
    assert [job["kind"] for job in jobs] == ["CronJob"] * 4
    modules = set()
    for job in jobs:
        spec = job["spec"]
        assert job["apiVersion"] == "batch/v1" and spec["concurrencyPolicy"] == "Forbid"
        assert (
            spec["successfulJobsHistoryLimit"] >= 1
            and spec["jobTemplate"]["spec"]["backoffLimit"] == 0
        )
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["restartPolicy"] == "Never" and pod["activeDeadlineSeconds"] >= 10 * 30
        (container,) = pod["containers"]
        command = container["command"]
        assert command[:2] == ["python", "-m"] and command[3:5] == ["--once", "--env-file"]
        module = command[2].removeprefix("services.")
        assert importlib.util.find_spec(f"services.{module}") is not None
        modules.add(module)
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        secret = next(v["secret"] for v in pod["volumes"] if v["name"] == "settings")
        assert secret["defaultMode"] == 0o400
        # The services refuse a group-readable file (fsGroup makes the secret 0440): the init
        # container copies it, mode 0600, to where the command reads it.
        (init,) = pod["initContainers"]
        source, target = init["command"][-2:]
        assert init["command"][:3] == ["install", "-m", "600"] and target == command[5]
        init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
        assert source.startswith(init_mounts["settings"] + "/")
        assert target.startswith(init_mounts["private"] + "/")
        assert target.startswith(mounts["private"] + "/")
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]
        assert container["securityContext"]["readOnlyRootFilesystem"] and mounts["tmp"] == "/tmp"  # noqa: S108 - the pod's emptyDir, not this machine's /tmp
    assert modules == SERVICES


def test_the_dockerfile_copies_what_the_services_import() -> None:
    """The image holds the three packages the services run from and the locked requirements,
    installed hash-checked."""
    text = (ROOT / "docs" / "k8s" / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY requirements-pip.lock requirements.lock ./\n" in text
    pip_first = "--require-hashes --only-binary :all: \\\n    -r requirements-pip.lock\n"
    locked = "--require-hashes --only-binary :all: \\\n    -r requirements.lock\n"
    assert pip_first in text and locked in text
    assert text.index(pip_first) < text.index(locked)
    for package in ("common", "messaging", "services"):
        assert f"COPY {package}/ {package}/" in text
