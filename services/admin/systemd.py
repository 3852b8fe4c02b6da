"""``admin install-systemd NAME`` / ``uninstall-systemd NAME``: one study's systemd user units.

The templates in ``systemd/`` (``redcap-relay-<service>@.service``, ``redcap-relay@.target``, and
the weekly report's ``redcap-relay-report@.service`` with its ``.timer``) are rendered once for
this checkout and its Python into the user manager's unit directory; each study is an instance
(``NAME``) with its settings in ``$XDG_CONFIG_HOME/redcap-relay/NAME.env`` (created 0600 from
``.env.example`` when missing, never deleted) and a drop-in per service carrying the timings
sized from that study's settings (:func:`timings`). Output goes to stdout, one line per
thing done, then the commands to run next.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from common.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]  # the checkout: services/admin/systemd.py
TEMPLATES = ROOT / "systemd"
SERVICES = ("detector", "sender", "checker", "replies")
TARGET = "redcap-relay@.target"
REPORT = "report"  # a oneshot its timer starts: no watchdog, so no timings
REPORT_UNITS = ("redcap-relay-report@.service", "redcap-relay-report@.timer")
DROP_IN = "redcap-relay.conf"  # the per-study drop-in's file name, in each service's .d folder
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
# A path systemd would read as a specifier (%), a variable ($), or several words.
_UNSAFE_PATH = re.compile(r"[\s%$\"'\\;]")
# What one REDCap request can take before the adapter gives up (common/redcap_client.py): four
# attempts of HTTP_TIMEOUT_SECONDS each and at most 5 s of back-off between them.
REDCAP_ATTEMPTS = 4
REDCAP_BACKOFF_SECONDS = 15
DEFAULT_HTTP_TIMEOUT = 30.0
# The template's own values are these timings for the default HTTP_TIMEOUT_SECONDS (test_systemd).


@dataclass(frozen=True)
class Timings:
    """Seconds for WatchdogSec=, TimeoutStartSec= and TimeoutStopSec=."""

    watchdog: int
    start: int
    stop: int


def timings(http_timeout: float) -> Timings:
    """The watchdog outlasts three REDCap requests that each use up their retries: the longest a
    working cycle goes without a ping (the runner pings after each cycle, at every stop check the
    cycle makes, and while it sleeps, every quarter of the interval, so the poll interval does not
    count). A start makes a few such requests too. A stop waits for the write in hand (one
    request) and the Twilio call before it."""
    request = REDCAP_ATTEMPTS * http_timeout + REDCAP_BACKOFF_SECONDS
    watchdog = max(60, math.ceil(3 * request))
    return Timings(watchdog=watchdog, start=watchdog, stop=math.ceil(request + http_timeout + 15))


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = sub.add_parser(
        "install-systemd",
        help="render the systemd user units for study NAME (settings: "
        "~/.config/redcap-relay/NAME.env, created from --env-file or .env.example if missing)",
    )
    uninstall = sub.add_parser(
        "uninstall-systemd", help="disable study NAME's units and remove them (keeps its settings)"
    )
    for command in (install, uninstall):
        command.add_argument("name", metavar="NAME", help="the study's instance name")
        command.add_argument(
            "--unit-dir", type=Path, help="where the units go (default ~/.config/systemd/user)"
        )
    install.add_argument(
        "--no-namespaces",
        action="store_true",
        help="leave out the sandboxing that needs user namespaces (hosts that forbid them)",
    )


def command_systemd(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run install-systemd or uninstall-systemd; ConfigError for a bad name or path."""
    name = args.name
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"NAME {name!r}: use letters, digits, '-' and '_' (at most 48, starting with a letter "
            "or digit); it becomes a unit instance and a file name"
        )
    config = Path(environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    manager_dir = config / "systemd" / "user"
    place = Place(
        name=name,
        units=args.unit_dir or manager_dir,
        settings=config / "redcap-relay" / f"{name}.env",
        manager=args.unit_dir is None or args.unit_dir.resolve() == manager_dir.resolve(),
    )
    if args.command == "install-systemd":
        return install(place, args.env_file, no_namespaces=args.no_namespaces)
    return uninstall(place)


@dataclass(frozen=True)
class Place:
    """Where one study's units and settings live."""

    name: str
    units: Path
    settings: Path
    manager: bool  # units is the user manager's own directory: systemctl applies

    def unit(self, service: str) -> str:
        return f"redcap-relay-{service}@{self.name}.service"

    @property
    def target(self) -> str:
        return f"redcap-relay@{self.name}.target"

    @property
    def timer(self) -> str:
        return f"redcap-relay-report@{self.name}.timer"

    def drop_in(self, service: str) -> Path:
        return self.units / f"{self.unit(service)}.d" / DROP_IN


# -- install ------------------------------------------------------------------------------------
def install(place: Place, source: str | None, *, no_namespaces: bool) -> int:
    python = Path(sys.executable).absolute()  # not resolved: the venv's python is a symlink
    for path in (ROOT, python):
        if _UNSAFE_PATH.search(str(path)):
            raise ConfigError(
                f"{path}: systemd units cannot name a path with spaces, quotes, % or $; "
                "move the checkout to a plain path"
            )
    _settings_file(place, Path(source) if source else ROOT / ".env.example")
    values = {k: v or "" for k, v in dotenv_values(place.settings).items()}
    times = timings(_http_timeout(values))
    lock_dir = _lock_dir(values)
    place.units.mkdir(parents=True, exist_ok=True)
    for template in _templates():
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        text = text.replace("@CHECKOUT@", str(ROOT)).replace("@PYTHON@", str(python))
        _write(place.units / template, text)
    for service in SERVICES:
        _write(place.drop_in(service), _drop_in(place.name, times, lock_dir, no_namespaces))
    _write(place.drop_in(REPORT), _report_drop_in(place.name, no_namespaces))
    print(f"units for {ROOT} (python {python}) written to {place.units}")
    print(
        f"study {place.name}: WatchdogSec={times.watchdog} TimeoutStartSec={times.start} "
        f"TimeoutStopSec={times.stop} (from HTTP_TIMEOUT_SECONDS), lock directory "
        f"{lock_dir or '$XDG_RUNTIME_DIR'}"
    )
    _reload(place)
    module = f"{python} -m services.admin"
    print("next:")
    print(f"  1. fill in {place.settings}, then: {module} check --env-file {place.settings}")
    print(f"  2. systemctl --user enable --now {place.target}")
    print(f"     systemctl --user enable --now {place.unit('replies')}  # if a rule takes replies")
    print(f"     systemctl --user enable --now {place.timer}  # weekly report, REPORT_EMAIL_TO")
    print(f"  3. loginctl enable-linger {getpass.getuser()}  # run at boot, and after you log out")
    print(f"  4. journalctl --user -u 'redcap-relay-*@{place.name}.service' -f")
    return 0


def _settings_file(place: Place, source: Path) -> None:
    """The study's settings file, created private from ``source`` when missing; never changed."""
    if place.settings.exists():
        print(f"settings: {place.settings} exists, kept as it is")
        if place.settings.stat().st_mode & 0o077:
            print(f"  others can read it and the services refuse it: chmod 600 {place.settings}")
        return
    if not source.is_file():
        raise ConfigError(f"--env-file {source}: no such file")
    place.settings.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created private before a byte of it is written: it will hold the tokens.
    fd = os.open(place.settings, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
    print(f"settings: created {place.settings} (mode 600) from {source}")


def _http_timeout(values: Mapping[str, str]) -> float:
    raw = values.get("HTTP_TIMEOUT_SECONDS", "")
    try:
        seconds = float(raw) if raw else DEFAULT_HTTP_TIMEOUT
    except ValueError:
        seconds = math.nan
    if not 1 <= seconds <= 600:  # as the settings check it (NaN fails too)
        print(f"HTTP_TIMEOUT_SECONDS={raw!r} is not 1-600; sizing for {DEFAULT_HTTP_TIMEOUT:g}")
        return DEFAULT_HTTP_TIMEOUT
    return seconds


def _lock_dir(values: Mapping[str, str]) -> Path | None:
    """The study's LOCK_DIR, created, or None for the default ($XDG_RUNTIME_DIR, %t)."""
    raw = values.get("LOCK_DIR", "")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_absolute() or _UNSAFE_PATH.search(raw):
        raise ConfigError(f"LOCK_DIR={raw!r}: use an absolute plain path (or leave it empty)")
    if _private_to_each_unit(path):
        raise ConfigError(
            f"LOCK_DIR={raw}: the units give each service its own /tmp and /var/tmp "
            "(PrivateTmp=), so a lock there is not shared with the other services or admin "
            "force; leave LOCK_DIR empty ($XDG_RUNTIME_DIR) or use a directory outside them"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _private_to_each_unit(path: Path) -> bool:
    """Whether ``path`` is /tmp, /var/tmp or inside one, as written or once ``..`` and symlinks
    are resolved (/var/tmp itself, /var/../tmp/locks, a link into /tmp)."""
    private = (Path("/tmp"), Path("/var/tmp"))  # noqa: S108 - the directories PrivateTmp= hides
    for seen in (Path(os.path.normpath(path)), Path(os.path.realpath(path))):
        if any(seen == tmp or tmp in seen.parents for tmp in private):
            return True
    return False


def _drop_in(name: str, times: Timings, lock_dir: Path | None, no_namespaces: bool) -> str:
    lines = [
        f"# Written by admin install-systemd for study {name}, from its settings; run it again",
        "# after changing HTTP_TIMEOUT_SECONDS or LOCK_DIR. systemd/README.md: the formulas.",
        "[Service]",
        "# 3 REDCap requests that use up their retries: 3 x (4 x HTTP_TIMEOUT_SECONDS + 15 s).",
        f"WatchdogSec={times.watchdog}",
        "# The project check at start makes a few such requests.",
        f"TimeoutStartSec={times.start}",
        "# The write in hand (one request) and the Twilio call before it.",
        f"TimeoutStopSec={times.stop}",
    ]
    if lock_dir is not None and not no_namespaces:
        lines += [
            "# The study's LOCK_DIR instead of $XDG_RUNTIME_DIR (the empty line resets the list).",
            "ReadWritePaths=",
            f"ReadWritePaths={lock_dir}",
        ]
    if no_namespaces:
        lines += ["# --no-namespaces: this host forbids user namespaces, the sandbox needs them."]
        lines += [f"{key}=no" for key in ("PrivateUsers", "PrivateTmp", "ProtectSystem")]
        lines += ["ProtectHome=no", "ReadWritePaths="]
    return "\n".join(lines) + "\n"


def _templates() -> tuple[str, ...]:
    return (*(f"redcap-relay-{s}@.service" for s in SERVICES), TARGET, *REPORT_UNITS)


def _report_drop_in(name: str, no_namespaces: bool) -> str:
    lines = [
        f"# Written by admin install-systemd for study {name}; run it again after an upgrade.",
        "# The timer's day and hour go in redcap-relay-report@NAME.timer.d (systemd/README.md).",
        "[Service]",
    ]
    if no_namespaces:
        lines += ["# --no-namespaces: this host forbids user namespaces, the sandbox needs them."]
        lines += [f"{key}=no" for key in ("PrivateUsers", "PrivateTmp", "ProtectSystem")]
        lines += ["ProtectHome=no", "ReadWritePaths="]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _reload(place: Place) -> None:
    if not place.manager:
        print(f"{place.units} is not the user manager's unit directory: no daemon-reload")
        return
    _systemctl(["daemon-reload"], "daemon-reload")


def _systemctl(args: list[str], what: str) -> bool:
    """``systemctl --user ARGS``; whether it worked (a missing systemctl or user manager is one
    line saying what to run later, not a failure)."""
    if shutil.which("systemctl") is None:
        print(f"systemctl not found: run `systemctl --user {' '.join(args)}` where systemd runs")
        return False
    try:
        done = subprocess.run(
            ["systemctl", "--user", *args], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"systemctl --user {what} did not answer within 60 s")
        return False
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no reason given"])[0]
        print(
            f"systemctl --user {what} failed ({reason}); no user manager? log in and run it again"
        )
        return False
    print(f"systemctl --user {what}: done")
    return True


# -- uninstall ----------------------------------------------------------------------------------
def uninstall(place: Place) -> int:
    units = [place.target, *(place.unit(s) for s in SERVICES), place.timer, place.unit(REPORT)]
    if place.manager:
        _systemctl(["disable", "--now", *units], f"disable --now {place.target} and its services")
    for wants in place.units.glob("*.wants"):
        for link in wants.iterdir():
            if link.is_symlink() and link.name in units:
                link.unlink()  # left behind when systemctl could not disable it
    removed = 0
    for service in (*SERVICES, REPORT):
        drop_in = place.drop_in(service)
        if drop_in.exists():
            drop_in.unlink()
            removed += 1
        if drop_in.parent.is_dir() and not any(drop_in.parent.iterdir()):
            drop_in.parent.rmdir()
    print(f"study {place.name}: removed {removed} drop-in(s) from {place.units}")
    others = sorted(
        {p.parent.name.split("@", 1)[1].removesuffix(".service.d") for p in _drop_ins(place)}
    )
    if others:
        print(f"kept the unit templates: still used by {', '.join(others)}")
    else:
        for template in _templates():
            (place.units / template).unlink(missing_ok=True)
        print(f"removed the unit templates from {place.units} (no other study uses them)")
    if place.manager:
        _systemctl(["daemon-reload"], "daemon-reload")
    print(f"settings kept: {place.settings} (it holds tokens: delete it when the study is over)")
    return 0


def _drop_ins(place: Place) -> list[Path]:
    return sorted(place.units.glob(f"redcap-relay-*@*.service.d/{DROP_IN}"))
