"""Reading one setting each: typed values, and the error that names the variable and the fix.

:class:`common.settings.Settings` is built from these; nothing here reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.contacts import normalize_phone
from common.errors import ConfigError

FIELD_NAME = re.compile(r"[a-z][a-z0-9_]*")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")
_CODE = re.compile(r"[A-Za-z0-9_.\-]+")
# LOCK_DIR's last default, where there is no per-user runtime directory (a container).
CONTAINER_LOCK_DIR = "/tmp"  # noqa: S108 - a lock file, not secret data
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class QuietHours:
    """A daily window (may cross midnight) in which no SMS is sent."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class EnvReader:
    """Typed reads of one variable each, with the variable's name in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.names: set[str] = set()  # every setting asked for: the known names

    def text(self, name: str, default: str = "", required: bool = False, hint: str = "") -> str:
        self.names.add(name)
        value = self._env.get(name, "").strip()
        if not value:
            if required:
                raise ConfigError(
                    f"{name} is not set; set it in .env or the environment ({hint})"
                    if hint
                    else f"{name} is not set; set it in .env or the environment"
                )
            return default
        return value

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        """A plain decimal number in [minimum, maximum]: no units, no inf/nan, no exponents."""
        raw = self.text(name)
        if not raw:
            return float(default)
        if not _DECIMAL.fullmatch(raw):
            raise ConfigError(
                f"{name}={raw!r} is not a plain number (no units); e.g. {name}={default:g}"
            )
        value = float(raw)
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name}={raw!r} must be a number from {minimum:g} to {maximum:g}")
        return value

    def integer(
        self,
        name: str,
        default: int = 0,
        required: bool = False,
        minimum: int = 0,
        maximum: int | None = None,
    ) -> int:
        raw = self.text(name, required=required)
        if not raw:
            return default
        limits = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        if not re.fullmatch(r"\d+", raw):
            raise ConfigError(f"{name}={raw!r} must be a whole number {limits}")
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(f"{name}={raw!r} must be a whole number {limits}")
        return value

    def boolean(self, name: str) -> bool:
        raw = self.text(name).lower()
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ConfigError(f"{name}={raw!r} must be 1 or 0 (true/false)")

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = self.text(name, default=default)
        for option in options:
            if raw.lower() == option.lower():
                return option
        raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(options)}")

    def field(self, name: str, default: str, what: str = "variable") -> str:
        """A REDCap variable, instrument or event name: lower case letters, digits and _."""
        raw = self.text(name, default=default)
        if raw and not FIELD_NAME.fullmatch(raw):
            raise ConfigError(
                f"{name}={raw!r} is not a REDCap {what} name (lower case letters, digits, _); "
                f"use the unique {what} name REDCap shows"
            )
        return raw

    def code(self, name: str, default: str) -> str:
        """A raw choice code as REDCap stores it (e.g. 2, yes, 1.5): no spaces or quotes."""
        raw = self.text(name, default=default)
        if not _CODE.fullmatch(raw):
            raise ConfigError(
                f"{name}={raw!r} is not a raw REDCap choice code (letters, digits, _ . -); "
                f"e.g. {name}={default}"
            )
        return raw

    def field_list(self, name: str, default: str) -> tuple[str, ...]:
        raw = self.text(name, default=default)
        items = tuple(part.strip() for part in raw.split(",") if part.strip())
        bad = [item for item in items if not FIELD_NAME.fullmatch(item)]
        if bad or not items:
            raise ConfigError(
                f"{name} must be a comma-separated list of REDCap variable names "
                f"(bad: {', '.join(bad) or 'empty'})"
            )
        return items


def check_names(given: Iterable[str], known: Collection[str], source: str) -> None:
    """A name in the settings file that no setting has is a typo until shown otherwise."""
    for name in given:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(
                f"{name} in {source} is not a redcap-relay setting; {hint}"
                "the settings are listed in .env.example"
            )


def check_region(region: str) -> None:
    import phonenumbers

    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"PHONE_REGION={region!r} is not a two-letter region code such as US, GB")


def parse_zone(name: str, env: Mapping[str, str], setting: str = "TIMEZONE") -> ZoneInfo:
    if not name:
        return _system_zone(env)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{setting}={name!r} is not an IANA time zone name, e.g. America/New_York"
        ) from None


def _system_zone(env: Mapping[str, str]) -> ZoneInfo:
    """The machine's zone by IANA name (TZ, /etc/localtime, /etc/timezone), else UTC."""
    candidates = [env.get("TZ", "").lstrip(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    timezone_file = Path("/etc/timezone")
    if timezone_file.exists():
        candidates.append(timezone_file.read_text().strip())
    for candidate in candidates:
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_quiet_hours(raw: str) -> QuietHours | None:
    if not raw:
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", raw)
    if not match:
        raise ConfigError(f"QUIET_HOURS={raw!r} must look like 21:00-08:00 (or be empty)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 or (h1, m1) == (h2, m2):
        raise ConfigError(f"QUIET_HOURS={raw!r} must be two different times of day, HH:MM-HH:MM")
    return QuietHours(time(h1, m1), time(h2, m2))


def parse_allowed(raw: str, region: str) -> frozenset[str]:
    numbers = set()
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            numbers.add(normalize_phone(part, region))
        except ValueError:
            raise ConfigError(
                "SMS_ALLOWED_NUMBERS holds an entry that is not a phone number; "
                "list numbers separated by commas"
            ) from None
    return frozenset(numbers)


def default_lock_dir(env: Mapping[str, str], runtime_root: Path = Path("/run/user")) -> str:
    """LOCK_DIR's default: $XDG_RUNTIME_DIR; without it (a shell from su or sudo, cron) the
    directory it would name, /run/user/UID, when it is there and this user's: the one the
    systemd units lock in (%t), so admin force from such a shell still meets the sender's lock.
    Else /tmp (a container)."""
    if env.get("XDG_RUNTIME_DIR"):
        return env["XDG_RUNTIME_DIR"]
    runtime = runtime_root / str(os.getuid())
    try:
        if runtime.is_dir() and runtime.stat().st_uid == os.getuid():
            return str(runtime)
    except OSError:
        pass  # unreadable: not ours to use
    return CONTAINER_LOCK_DIR
