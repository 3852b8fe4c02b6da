"""How often the studies on this host ask REDCap, against its per-address limit (``admin
check``'s budget line; docs/SCALING.md has the argument and the tables).

REDCap counts every request from one IP address over a sliding minute (600 by default,
``REDCAP_MAX_PER_MINUTE``) and bans the address past it, so every service of every study polling
the same REDCap from this host draws on one budget. Steady polling may use half of it
(:data:`POLL_SHARE`); the other half is for people using REDCap from the same address and for
bursts (a sender sending, a detector confirming new records).

The studies are the installed instances, one settings file each in
``$XDG_CONFIG_HOME/redcap-relay/`` (``~/.config`` by default), and the settings ``admin check``
was given when they are none of those. Nothing here writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common.errors import ConfigError
from common.settings import Settings, load_settings, read_env_file
from messaging.rules_file import rules_for

POLL_SHARE = 0.5
DEFAULT_POLL_SECONDS = 10.0  # Settings' default POLL_INTERVAL_SECONDS
DEFAULT_LIMIT = 600  # Settings' default REDCAP_MAX_PER_MINUTE, REDCap's own
ALL_SERVICES = 4  # detector, sender, delivery checker, reply poller


@dataclass(frozen=True)
class Study:
    """One set of services polling REDCap, as far as its settings tell."""

    name: str
    redcap: str  # REDCap's host: studies on another REDCap do not share its limit
    project_id: int | None
    poll_interval_seconds: float
    polls_per_cycle: int  # REDCap requests of one idle cycle, all its services together
    limit: int  # its REDCAP_MAX_PER_MINUTE
    path: Path | None = None

    @property
    def per_minute(self) -> float:
        return self.polls_per_cycle * 60 / self.poll_interval_seconds


def polls_per_cycle(settings: Settings) -> int:
    """Idle REDCap requests per cycle: one filtered export each for the detector and the
    sender; one for the checker when a rule sends SMS (e-mail has no delivery report to
    check); one for the reply poller when a rule takes replies (it refuses to start
    otherwise), counted although it asks nothing while the lookback window holds no message."""
    rules = rules_for(settings)
    checker = 1 if rules.sends_sms else 0
    replies = 1 if rules.replying else 0
    return 2 + checker + replies


def fitting_interval(requests_per_cycle: float, limit: int) -> float:
    """The shortest poll interval, in seconds, at which studies asking REDCap
    ``requests_per_cycle`` times a cycle (all of them together) keep within half of ``limit``:
    60 * requests_per_cycle / (POLL_SHARE * limit)."""
    return 60 * requests_per_cycle / (POLL_SHARE * limit)


def study_from(name: str, settings: Settings, path: Path | None = None) -> Study:
    return Study(
        name=name,
        redcap=_host(settings.redcap_api_url),
        project_id=settings.redcap_project_id,
        poll_interval_seconds=settings.poll_interval_seconds,
        polls_per_cycle=polls_per_cycle(settings),
        limit=settings.redcap_max_per_minute,
        path=path,
    )


def instances_dir(environ: Mapping[str, str]) -> Path:
    """Where ``admin install-systemd NAME`` keeps ``NAME.env`` (XDG base directory rules)."""
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")) / ".config")
    return Path(config).expanduser() / "redcap-relay"


def installed(environ: Mapping[str, str]) -> tuple[list[Study], list[str]]:
    """Every installed instance, and a note for each whose settings do not parse (it is still
    counted, from what its file says, as all four services: it will run once fixed)."""
    studies: list[Study] = []
    notes: list[str] = []
    folder = instances_dir(environ)
    for path in sorted(folder.glob("*.env")) if folder.is_dir() else []:
        try:
            studies.append(study_from(path.stem, load_settings(str(path), {}), path))
        except ConfigError as exc:
            study, guess = _guessed(path)
            studies.append(study)
            notes.append(f"instance {path.stem} ({path}): settings do not parse ({exc}); {guess}")
    return studies, notes


def _guessed(path: Path) -> tuple[Study, str]:
    """A study from the raw values of a settings file the loader refuses."""
    try:
        raw = read_env_file(str(path))
    except (ConfigError, OSError, UnicodeDecodeError):
        raw = {}
    interval = _number(raw.get("POLL_INTERVAL_SECONDS", ""), DEFAULT_POLL_SECONDS)
    limit = int(_number(raw.get("REDCAP_MAX_PER_MINUTE", ""), DEFAULT_LIMIT))
    project = raw.get("REDCAP_PROJECT_ID", "")
    study = Study(
        name=path.stem,
        redcap=_host(raw.get("REDCAP_API_URL", "")),
        project_id=int(project) if project.isdigit() else None,
        poll_interval_seconds=interval,
        polls_per_cycle=ALL_SERVICES,
        limit=limit,
        path=path,
    )
    return study, f"counted as {ALL_SERVICES} services every {interval:g} s"


def _number(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) and value > 0 else default


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


@dataclass(frozen=True)
class Load:
    """The studies polling one REDCap from this host, and what they ask of it together."""

    redcap: str
    studies: tuple[Study, ...]
    limit: int  # the lowest REDCAP_MAX_PER_MINUTE among them: the most careful reading
    elsewhere: int  # installed instances polling another REDCap (not counted here)

    @property
    def per_minute(self) -> float:
        return sum(study.per_minute for study in self.studies)

    @property
    def over(self) -> bool:
        return self.per_minute > POLL_SHARE * self.limit

    @property
    def interval_that_fits(self) -> float:
        """The one POLL_INTERVAL_SECONDS which, set in every study, keeps within the share."""
        return fitting_interval(sum(s.polls_per_cycle for s in self.studies), self.limit)


def host_load(
    current: Settings, current_path: Path | None, environ: Mapping[str, str]
) -> tuple[Load, list[str]]:
    """The load on ``current``'s REDCap: the installed instances that poll it, and ``current``
    itself unless it is one of them (the same file, or the same project on the same REDCap:
    one study's services hold one lock, so they run once). Notes for what was guessed."""
    mine = study_from(_label(current_path), current, current_path)
    studies, notes = installed(environ)
    same = [s for s in studies if not s.redcap or s.redcap == mine.redcap]
    elsewhere = len(studies) - len(same)
    if not any(_same_study(s, mine) for s in same):
        same.append(mine)
    return (
        Load(
            redcap=mine.redcap,
            studies=tuple(same),
            limit=min(s.limit for s in same),
            elsewhere=elsewhere,
        ),
        notes,
    )


def _same_study(installed_one: Study, mine: Study) -> bool:
    if (
        installed_one.path is not None
        and mine.path is not None
        and installed_one.path.resolve() == mine.path.resolve()
    ):
        return True
    return installed_one.project_id == mine.project_id and installed_one.redcap == mine.redcap


def _label(path: Path | None) -> str:
    return str(path) if path is not None else ".env"


def describe(load: Load) -> str:
    """The budget line's text: the total, and when over half, each study and the interval
    that would fit."""
    total, limit = load.per_minute, load.limit
    count = len(load.studies)
    who = f"{count} stud{'y' if count == 1 else 'ies'}"
    share = f"{total / limit:.0%} of REDCAP_MAX_PER_MINUTE={limit}"
    other = f"; {load.elsewhere} more poll another REDCap" if load.elsewhere else ""
    if not load.over:
        return (
            f"{who} poll {load.redcap} about {total:.0f} times a minute when idle ({share}){other}"
        )
    each = ", ".join(
        f"{s.name} every {s.poll_interval_seconds:g} s ({s.per_minute:.0f}/min)"
        for s in load.studies
    )
    fits = _seconds_up(load.interval_that_fits)
    return (
        f"{who} would poll {load.redcap} about {total:.0f} times a minute when idle, "
        f"{share}, over the half kept for steady polling (REDCap bans the address past its "
        f"limit): {each}; POLL_INTERVAL_SECONDS={fits:g} or more in each would fit "
        f"(docs/SCALING.md){other}"
    )


def _seconds_up(seconds: float) -> float:
    """Rounded up: to a whole second from 1 s, else to a tenth."""
    return float(math.ceil(seconds)) if seconds >= 1 else math.ceil(seconds * 10) / 10


# What a ``--once`` run (a cron or Kubernetes job) asks before its cycle, measured against the
# simulator: project info, metadata and the form-event mapping, then one probe per rule's `when`
# and per `stop_when` (REDCap's verdict on the logic); the sender also asks for the next record
# name and one survey link per survey it texts.
START_REQUESTS = 3
SENDER_START_REQUESTS = 1


def loop_interval(studies: int, rules: int = 1, *, confirming: bool = False) -> float:
    """The shortest POLL_INTERVAL_SECONDS for ``studies`` running all four services as
    long-lived loops at REDCap's default limit; ``confirming``: every detector cycle finds
    brand-new records and confirms them with each of its ``rules`` (1 + rules exports, then an
    import), the most a detector asks per cycle."""
    per_cycle = ALL_SERVICES + (rules + 1 if confirming else 0)
    return fitting_interval(studies * per_cycle, DEFAULT_LIMIT)


def run_requests(rules: int, stop_whens: int = 0, surveys: int = 1) -> int:
    """REDCap requests of one ``--once`` run of all four services, idle: each starts (the
    project check and one logic probe per `when` and `stop_when`), then polls once."""
    start = START_REQUESTS + rules + stop_whens
    return ALL_SERVICES * (start + 1) + SENDER_START_REQUESTS + surveys


def cron_minutes(studies: int, rules: int = 1) -> float:
    """The shortest schedule, in minutes between runs, for ``studies`` run as jobs."""
    return studies * run_requests(rules) / (POLL_SHARE * DEFAULT_LIMIT)


STUDIES = (1, 5, 20, 50, 100)
RULES = (1, 5, 20)


def loop_table() -> str:
    """docs/SCALING.md's table for long-lived services (systemd)."""
    head = "| studies | requests/min at 10 s, idle | idle | " + " | ".join(
        f"{r} rule{'s' if r > 1 else ''}, confirming" for r in RULES
    )
    lines = [head + " |", "|" + "---|" * (3 + len(RULES))]
    for n in STUDIES:
        idle = n * ALL_SERVICES * 60 / DEFAULT_POLL_SECONDS
        cells = [f"{n}", f"{idle:.0f}", _secs(loop_interval(n))]
        cells += [_secs(loop_interval(n, r, confirming=True)) for r in RULES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cron_table() -> str:
    """docs/SCALING.md's table for ``--once`` jobs (Kubernetes CronJobs, systemd timers)."""
    head = "| studies | " + " | ".join(
        f"{r} rule{'s' if r > 1 else ''} ({run_requests(r)} a run)" for r in RULES
    )
    lines = [head + " |", "|" + "---|" * (1 + len(RULES))]
    for n in STUDIES:
        cells = [f"{n}"] + [f"{math.ceil(cron_minutes(n, r))} min" for r in RULES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _secs(seconds: float) -> str:
    return f"{_seconds_up(seconds):g} s"
