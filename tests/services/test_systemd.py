"""Running under systemd: the rendered units verify, the notify protocol as a real process speaks
it (READY, a ping per cycle, STOPPING), a hung cycle going silent, the installer, private
settings files."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.faults import Fault
from sandbox.httpserver import wait_until
from services.admin.systemd import SERVICES, timings
from tests.processes import finish
from tests.services.conftest import ROOT, Rig, clean_env

CHECKER = "services.delivery_checker"


# -- the notify socket, as systemd holds it ------------------------------------------------------
class Listener:
    """A bound AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, name: str) -> None:
        self.path = f"@{name}"  # an abstract socket, as NOTIFY_SOCKET may name: no file anywhere
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(f"\0{name}")
        self.got: list[str] = []

    def wait_for(self, found: Callable[[list[str]], bool], timeout: float) -> bool:
        """Read datagrams until ``found(all read so far)`` or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not found(self.got):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return False
        return True

    def count(self, line: str) -> int:
        return sum(line in message.split("\n") for message in self.got)


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = Listener(f"redcap-relay-test-notify-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield sock
    finally:
        sock.sock.close()


def start(
    rig: Rig, listener: Listener, watchdog_usec: int, **overrides: str
) -> subprocess.Popen[str]:
    env = {**clean_env(), "NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": str(watchdog_usec)}
    return subprocess.Popen(
        [sys.executable, "-m", CHECKER, "--env-file", str(rig.env_file(**overrides))],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def test_service_says_ready_pings_each_cycle_and_stops_on_sigterm(
    rig: Rig, listener: Listener
) -> None:
    """READY=1 once the project check passed, WATCHDOG=1 with the cycle's counts each cycle,
    STOPPING=1 and exit 0 on SIGTERM."""
    proc = start(rig, listener, 10_000_000, POLL_INTERVAL_SECONDS="0.2")
    try:
        assert listener.wait_for(lambda got: len(got) >= 1, timeout=30)
        assert listener.got[0].startswith("READY=1\nSTATUS=started, project ")
        assert listener.wait_for(
            lambda got: sum("STATUS=last cycle: idle" in m for m in got) >= 3, timeout=30
        )
        cycles = [m for m in listener.got if "STATUS=last cycle" in m]
        assert all(m.startswith("WATCHDOG=1\n") for m in cycles)
        proc.send_signal(signal.SIGTERM)
        assert listener.wait_for(lambda got: any("STOPPING=1" in m for m in got), timeout=20)
        code, _, err = finish(proc, terminate=False, timeout=20)
    finally:
        stop(proc)
    assert code == 0 and "stopping (signal received)" in err
    assert listener.count("READY=1") == 1 and listener.count("STOPPING=1") == 1


def test_a_hung_cycle_stops_the_pings(rig: Rig, listener: Listener) -> None:
    """A REDCap request that never answers: no WATCHDOG=1 while it hangs, so systemd's watchdog
    would kill the service; pings went out every quarter interval before it."""
    proc = start(rig, listener, 1_000_000, POLL_INTERVAL_SECONDS="0.1", HTTP_TIMEOUT_SECONDS="60")
    try:
        assert listener.wait_for(lambda got: listener.count("WATCHDOG=1") >= 3, timeout=30)
        hang = rig.redcap.server.faults.add(Fault(kind="hang", seconds=30, match={}))
        assert wait_until(lambda: hang.times == 0, timeout=10)
        listener.wait_for(lambda got: False, timeout=0.5)  # what left before the hang began
        before = listener.count("WATCHDOG=1")
        listener.wait_for(lambda got: False, timeout=3)  # three watchdog intervals
        assert listener.count("WATCHDOG=1") == before
        assert proc.poll() is None  # alive, silent: the watchdog's case
    finally:
        stop(proc)  # killed, as systemd's watchdog would
        rig.redcap.server.faults.clear()


# -- the units and the installer ----------------------------------------------------------------
def install(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``admin install-systemd`` (or ``uninstall-systemd``) with ~/.config in ``tmp``."""
    env = {**clean_env(), "XDG_CONFIG_HOME": str(tmp / "config")}
    return subprocess.run(
        [sys.executable, "-m", "services.admin", *args, "--unit-dir", str(tmp / "units")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def verify(tmp: Path, *units: str) -> subprocess.CompletedProcess[str]:
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {
        **clean_env(),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "SYSTEMD_UNIT_PATH": f"{tmp / 'units'}:",  # ours first, then the usual ones
    }
    return subprocess.run(
        ["systemd-analyze", "verify", "--user", *units],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def units_of(name: str) -> list[str]:
    return [f"redcap-relay@{name}.target", *(f"redcap-relay-{s}@{name}.service" for s in SERVICES)]


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (.ci/run installs the systemd package)",
)
@pytest.mark.parametrize("extra", [[], ["--no-namespaces"]])
def test_rendered_units_pass_systemd_analyze_verify(tmp_path: Path, extra: list[str]) -> None:
    """The units rendered for this checkout, with a study's drop-ins, verify without a warning."""
    done = install(tmp_path, "install-systemd", "study-a", *extra)
    assert done.returncode == 0, done.stderr
    checked = verify(tmp_path, *units_of("study-a"))
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stderr
    rendered = (tmp_path / "units" / "redcap-relay-sender@.service").read_text()
    assert f"WorkingDirectory={ROOT}\n" in rendered and "@PYTHON@" not in rendered


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (.ci/run installs the systemd package)",
)
@pytest.mark.parametrize("extra", [[], ["--no-namespaces"]])
def test_the_weekly_report_timer_and_service_verify(tmp_path: Path, extra: list[str]) -> None:
    """install-systemd renders the report's oneshot service and its weekly timer (Mondays 08:00,
    caught up after downtime), which verify; it says how to enable the timer."""
    done = install(tmp_path, "install-systemd", "study-a", *extra)
    assert done.returncode == 0, done.stderr
    assert "systemctl --user enable --now redcap-relay-report@study-a.timer" in done.stdout
    units = ["redcap-relay-report@study-a.timer", "redcap-relay-report@study-a.service"]
    checked = verify(tmp_path, *units)
    assert checked.returncode == 0 and not (checked.stdout + checked.stderr).strip(), checked.stderr
    timer = (tmp_path / "units" / "redcap-relay-report@.timer").read_text()
    assert "\nOnCalendar=Mon *-*-* 08:00:00\n" in timer and "\nPersistent=true\n" in timer
    service = (tmp_path / "units" / "redcap-relay-report@.service").read_text()
    assert " -m services.admin report --email --env-file " in service
    assert f"WorkingDirectory={ROOT}\n" in service and "@PYTHON@" not in service


def test_templates_carry_the_timings_for_the_default_http_timeout() -> None:
    """The templates' WatchdogSec/TimeoutStartSec/TimeoutStopSec are timings(30), as documented."""
    times = timings(30)
    for service in SERVICES:
        text = (ROOT / "systemd" / f"redcap-relay-{service}@.service").read_text()
        assert f"\nWatchdogSec={times.watchdog}\n" in text
        assert f"\nTimeoutStartSec={times.start}\n" in text
        assert f"\nTimeoutStopSec={times.stop}\n" in text
        assert "\nRestartPreventExitStatus=2 3 4\n" in text and "\nType=notify\n" in text


def test_install_creates_private_settings_and_sizes_the_watchdog(tmp_path: Path) -> None:
    """The settings file is created 0600 from .env.example (or --env-file), never overwritten;
    the drop-ins carry timings from its HTTP_TIMEOUT_SECONDS."""
    source = tmp_path / "study.env"
    source.write_text("HTTP_TIMEOUT_SECONDS=10\n")
    done = install(tmp_path, "install-systemd", "s1", "--env-file", str(source))
    assert done.returncode == 0, done.stderr
    settings = tmp_path / "config" / "redcap-relay" / "s1.env"
    assert settings.stat().st_mode & 0o777 == 0o600
    assert settings.read_text() == "HTTP_TIMEOUT_SECONDS=10\n"
    drop_in = tmp_path / "units" / "redcap-relay-sender@s1.service.d" / "redcap-relay.conf"
    assert f"\nWatchdogSec={timings(10).watchdog}\n" in drop_in.read_text()
    assert "systemctl --user enable --now redcap-relay@s1.target" in done.stdout
    assert "loginctl enable-linger" in done.stdout and "journalctl --user" in done.stdout
    settings.write_text("HTTP_TIMEOUT_SECONDS=20\n")
    again = install(tmp_path, "install-systemd", "s1")
    assert again.returncode == 0 and "kept" in again.stdout
    assert settings.read_text() == "HTTP_TIMEOUT_SECONDS=20\n"
    assert f"\nWatchdogSec={timings(20).watchdog}\n" in drop_in.read_text()
    fresh = install(tmp_path, "install-systemd", "s2")
    assert fresh.returncode == 0
    example = (ROOT / ".env.example").read_text()
    assert (tmp_path / "config" / "redcap-relay" / "s2.env").read_text() == example


@pytest.mark.parametrize(
    "name", ["../etc", "a b", "", "x.y", "study/1", "x" * 49, "é", "study1\n", "\nstudy1"]
)
def test_install_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    """A name that is not a plain instance name is refused in one line, exit 2, nothing written."""
    done = install(tmp_path, "install-systemd", name)
    assert done.returncode == 2 and "NAME" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "units").exists() and not (tmp_path / "config").exists()


# Paths the installer must refuse; none is ever created.
PRIVATE_TMP = ["/tmp/relay-locks", "/tmp", "/var/tmp", "/var/tmp/", "/var/tmp/x", "/var/../tmp/x"]  # noqa: S108


@pytest.mark.parametrize("lock_dir", PRIVATE_TMP)
def test_install_refuses_a_lock_dir_the_private_tmp_would_hide(
    tmp_path: Path, lock_dir: str
) -> None:
    """LOCK_DIR in /tmp or /var/tmp (PrivateTmp= makes each private to its unit) would not be
    shared between the sender and admin force: refused in one line naming it and the fix, exit
    2, no unit written."""
    source = tmp_path / "study.env"
    source.write_text(f"LOCK_DIR={lock_dir}\n")
    done = install(tmp_path, "install-systemd", "s1", "--env-file", str(source))
    assert done.returncode == 2 and f"error: LOCK_DIR={lock_dir}: " in done.stderr
    assert "PrivateTmp=" in done.stderr and "leave LOCK_DIR empty" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "units").exists()


def test_uninstall_removes_a_study_and_the_templates_with_the_last(tmp_path: Path) -> None:
    """Uninstall removes the study's drop-ins and enable links, keeps the templates while another
    study uses them, and never deletes the settings file (it says where it is)."""
    units = tmp_path / "units"
    for name in ("s1", "s2"):
        assert install(tmp_path, "install-systemd", name).returncode == 0
    wants = units / "default.target.wants"
    wants.mkdir()
    (wants / "redcap-relay@s1.target").symlink_to(units / "redcap-relay@.target")
    first = install(tmp_path, "uninstall-systemd", "s1")
    assert first.returncode == 0, first.stderr
    assert not (units / "redcap-relay-sender@s1.service.d").exists()
    assert not (wants / "redcap-relay@s1.target").is_symlink()
    assert (units / "redcap-relay-sender@.service").exists() and "s2" in first.stdout
    last = install(tmp_path, "uninstall-systemd", "s2")
    assert last.returncode == 0
    assert sorted(p.name for p in units.iterdir()) == ["default.target.wants"]
    settings = tmp_path / "config" / "redcap-relay" / "s2.env"
    assert settings.exists() and str(settings) in last.stdout


# -- private settings ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_settings_file_others_can_read_is_refused(rig: Rig, mode: int) -> None:
    """A settings file readable by group or others: one line naming it and the fix, exit 2."""
    path = rig.env_file()
    path.chmod(mode)
    done = subprocess.run(
        [sys.executable, "-m", CHECKER, "--once", "--env-file", str(path)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert str(path) in line and f"chmod 600 {path}" in line
