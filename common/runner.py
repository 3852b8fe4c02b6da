"""The one way every service starts, loops and stops.

``main(argv)`` of each service calls :func:`run_service` with its ``run_once(ctx)``. This module
parses the shared flags, builds the settings and clients, checks the project, installs signal
handlers that only set a flag, tells systemd how it is doing (:mod:`common.notify`: READY once
the project check and ``prepare`` passed, a watchdog ping after each cycle and at every stop check
the cycle makes, STATUS with the cycle's counts, STOPPING on SIGTERM/SIGINT), and maps errors to
exit codes. No traceback reaches a user for their own mistakes.

Exit codes (systemd's ``RestartPreventExitStatus=2 3 4`` keeps it from restarting the ones a
person must fix):

- 0: ok (``--once`` did its cycle, or a loop stopped on SIGTERM/SIGINT)
- 1: other failure (REDCap unreachable at start or in ``--once``, another sender holds the
  lock, ...)
- 2: bad configuration (a setting, the settings file, a rule; for the reply poller: no rule
  takes replies)
- 3: the REDCap project check failed (wrong project, pipeline fields missing)
- 4: REDCap banned this host's IP (HTTP 429): only its administrator can lift it
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType

from common import logs
from common.clock import Clock, SystemClock
from common.errors import (
    ConfigError,
    ProjectCheckError,
    RedcapBanned,
    RelayError,
    TransientError,
)
from common.graph_client import GraphMailer
from common.notify import Heartbeat, Notifier
from common.project import Layout, load_layout, survey_checks
from common.redcap_client import RedcapClient
from common.settings import Settings
from common.settings import load_settings as settings_from
from common.twilio_client import SmsGateway
from messaging.rules import Rule

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_PROJECT, EXIT_BANNED = 0, 1, 2, 3, 4


class StopFlag(threading.Event):
    """Set by SIGTERM/SIGINT (the handler does nothing else). Every check a cycle makes of it is
    also a sign the cycle is moving: the heartbeat feeds systemd's watchdog there (a cycle stuck
    in one request checks nothing and goes silent) and says STOPPING once the flag is set."""

    def __init__(self) -> None:
        super().__init__()
        self.heartbeat: Heartbeat | None = None

    def is_set(self) -> bool:
        stopped = super().is_set()
        if self.heartbeat is not None:
            if stopped:
                self.heartbeat.stopping()
            else:
                self.heartbeat.progress()
        return stopped


@dataclass
class CycleResult:
    """Counts of what one cycle did, e.g. ``{"registered": 3}``; logged as the cycle summary."""

    counts: Counter[str] = field(default_factory=Counter)
    problem: str = ""  # set when the cycle refused to act (e.g. the runaway guard)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def summary(self) -> str:
        parts = [f"{key}={value}" for key, value in sorted(self.counts.items())]
        return " ".join(parts) or "idle"


@dataclass
class Context:
    """Everything a cycle needs, built once at startup; services hold no other state."""

    settings: Settings
    redcap: RedcapClient
    layout: Layout
    clock: Clock
    stop: threading.Event
    sms: SmsGateway | None = None
    mail: GraphMailer | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("redcap_relay"))

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.settings.rules

    def stamp(self, field_name: str, moment: datetime | None = None) -> str:
        """Now (or ``moment``) as ``field_name`` stores it, in TIMEZONE."""
        return self.layout.stamp(field_name, moment or self.clock.now(), self.settings.timezone)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--env-file", default=None, help="settings file (default .env)")
    return parser


def load_settings(env_file: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    return settings_from(env_file, os.environ if environ is None else environ)


def build_context(
    settings: Settings,
    *,
    needs_twilio: bool,
    needs_survey: bool = False,
    needs_mail: bool = False,
    clock: Clock | None = None,
    name: str = "redcap_relay",
) -> Context:
    """Clients, project check and layout; raises ConfigError / ProjectCheckError.

    ``needs_twilio`` / ``needs_mail``: the command sends, so it needs Twilio when a rule sends
    SMS and Graph when a rule sends e-mail or staff alerts are on (an e-mail-only study needs no
    Twilio account, and the reverse).
    """
    needs_twilio = needs_twilio and settings.uses_sms
    needs_mail = needs_mail and settings.uses_email
    if needs_twilio:
        settings.require_twilio()
    mail = GraphMailer.from_settings(settings) if needs_mail else None
    if needs_survey:
        settings.require_survey()
    client = RedcapClient(
        settings.redcap_api_url, settings.redcap_api_token, settings.http_timeout_seconds
    )
    layout = load_layout(client, settings)
    if needs_survey:
        for survey in survey_checks(client, settings, layout):
            if not survey.ok:
                raise ProjectCheckError(f"{survey.detail}; {survey.fix}")
    sms = None
    if needs_twilio:
        sms = SmsGateway(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            base_url=settings.twilio_api_base_url,
            timeout=min(settings.http_timeout_seconds, 15.0),
        )
    return Context(
        settings=settings,
        redcap=client,
        layout=layout,
        clock=clock or SystemClock(settings.timezone),
        stop=threading.Event(),
        sms=sms,
        mail=mail,
        log=logging.getLogger(name),
    )


def run_service(
    name: str,
    description: str,
    argv: Sequence[str] | None,
    run_once: Callable[[Context], CycleResult],
    *,
    needs_twilio: bool,
    needs_survey: bool = False,
    needs_mail: bool = False,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    prepare: Callable[[Context, argparse.Namespace], Callable[[], None] | None] | None = None,
) -> int:
    """Parse flags, start, run one cycle (``--once``) or loop until SIGTERM/SIGINT."""
    parser = base_parser(f"python -m services.{name}", description)
    parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    log = logging.getLogger(name)
    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        # Logging is not configured yet (its settings are what failed): write the line directly.
        return report_failure(exc, lambda line: _stderr(f"{name}: {line}"))
    logs.configure(settings.log_level, settings.log_format)
    notifier = Notifier.from_environ(os.environ)
    stop = StopFlag()
    _install_signals(stop)
    cleanup: Callable[[], None] | None = None
    try:
        ctx = build_context(
            settings,
            needs_twilio=needs_twilio,
            needs_survey=needs_survey,
            needs_mail=needs_mail,
            name=name,
        )
        ctx.stop = stop
        if prepare:
            cleanup = prepare(ctx, args)
        log.info(
            "started project=%s%s",
            ctx.layout.project_id,
            f" event={ctx.layout.event}" if ctx.layout.event else "",
        )
        stop.heartbeat = Heartbeat(notifier)
        notifier.ready(f"started, project {ctx.layout.project_id}")
        return _cycles(ctx, run_once, once=args.once, log=log, heartbeat=stop.heartbeat)
    except RelayError as exc:
        level = _level(exc)
        code = report_failure(exc, lambda line: log.log(level, "%s", line))
        # The reason is in the journal; the status names only the kind (no setting values).
        notifier.status(f"exiting with code {code}: {type(exc).__name__}")
        return code
    finally:
        if cleanup:
            cleanup()
        notifier.close()


def report_failure(exc: RelayError, say: Callable[[str], None]) -> int:
    """Say what went wrong in one line and return the exit code for it."""
    if isinstance(exc, ConfigError):
        say(f"configuration error: {exc}")
        return EXIT_CONFIG
    if isinstance(exc, ProjectCheckError):
        say(f"REDCap project check failed: {exc}")
        return EXIT_PROJECT
    if isinstance(exc, RedcapBanned):
        say(str(exc))
        return EXIT_BANNED
    say(str(exc))
    return EXIT_FAILURE


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


def _level(exc: RelayError) -> int:
    # A REDCap ban needs a person today: say it as loudly as logging can.
    return logging.CRITICAL if isinstance(exc, RedcapBanned) else logging.ERROR


def _cycles(
    ctx: Context,
    run_once: Callable[[Context], CycleResult],
    *,
    once: bool,
    log: logging.Logger,
    heartbeat: Heartbeat | None = None,
) -> int:
    beat = heartbeat or Heartbeat(Notifier(None))
    while not ctx.stop.is_set():
        try:
            result = run_once(ctx)
        except TransientError as exc:
            log.warning("cycle incomplete, will retry: %s", exc)
            # Alive and retrying: the ping says so, the status names only the kind of trouble.
            beat.beat(f"last cycle incomplete ({type(exc).__name__}), retrying")
            if once:
                return EXIT_FAILURE
        else:
            if result.problem:
                log.error("%s", result.problem)
            log.info("cycle done: %s", result.summary())
            refused = ", refused to act (see the log)" if result.problem else ""
            beat.beat(f"last cycle: {result.summary()}{refused}")
            if once:
                return EXIT_FAILURE if result.problem else EXIT_OK
        _sleep(ctx, ctx.settings.poll_interval_seconds, beat)
    log.info("stopping (signal received)")
    return EXIT_OK


def _sleep(ctx: Context, seconds: float, beat: Heartbeat) -> None:
    """The wait between cycles, in pieces short enough for the watchdog (each stop check pings)."""
    piece = beat.every or seconds
    left = seconds
    while left > 0 and not ctx.stop.is_set():
        ctx.clock.sleep(min(piece, left), ctx.stop)
        left -= piece


def _install_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()  # only a flag: the cycle in hand finishes its REDCap write first

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
