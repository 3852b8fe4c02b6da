"""The one way every service starts, loops and stops.

``main(argv)`` of each service calls :func:`run_service` with its ``run_once(ctx)`` and the
``build(settings)`` that makes its context (the engine's :func:`messaging.context.build_context`:
this layer knows no rules). This module parses the shared flags, reads the settings, builds the
context, takes the project lock the service names (one sender, one reply poller per project),
installs signal handlers that only set a flag, waits longer after each cycle a transient error
cut short (:mod:`common.backoff`: doubling from the poll interval, honouring ``Retry-After``),
tells systemd how it is doing (:mod:`common.notify`:
READY once the project check and ``start`` passed, a watchdog ping after each cycle and at every
stop check the cycle makes, STATUS with the cycle's counts, STOPPING on SIGTERM/SIGINT), and maps
errors to exit codes. No traceback reaches a user for their own mistakes.

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
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol, TypeVar

from common import logs
from common.backoff import Backoff
from common.clock import Clock
from common.errors import (
    ConfigError,
    ProjectCheckError,
    RedcapBanned,
    RelayError,
    TransientError,
)
from common.lock import project_lock
from common.notify import Heartbeat, Notifier
from common.project import Layout
from common.settings import Settings
from common.settings import load_settings as settings_from

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


class Running(Protocol):
    """What the runner needs of a service's context (the engine's ``Context`` has it)."""

    settings: Settings
    layout: Layout
    clock: Clock
    stop: threading.Event


C = TypeVar("C", bound=Running)


def base_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--env-file", default=None, help="settings file (default .env)")
    return parser


def load_settings(
    env_file: str | None, environ: Mapping[str, str] | None = None, *, redcap: bool = True
) -> Settings:
    return settings_from(env_file, os.environ if environ is None else environ, redcap=redcap)


def run_service(
    name: str,
    description: str,
    argv: Sequence[str] | None,
    run_once: Callable[[C], CycleResult],
    build: Callable[[Settings], C],
    *,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    start: Callable[[C, argparse.Namespace], str] | None = None,
) -> int:
    """Parse flags, start, run one cycle (``--once``) or loop until SIGTERM/SIGINT.

    ``build(settings)`` makes the context (ConfigError / ProjectCheckError on a problem);
    ``start(ctx, args)`` prepares the run and names the project lock to hold for it (a role of
    :func:`common.lock.project_lock`, or "" for none): it is taken before the first cycle and
    released on the way out.
    """
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
    with ExitStack() as held:
        try:
            ctx = build(settings)
            ctx.stop = stop
            role = start(ctx, args) if start else ""
            if role:
                lock = project_lock(settings.lock_dir, ctx.layout.project_id, role).acquire()
                held.callback(lock.release)
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
            notifier.close()


def exit_code(exc: RelayError) -> int:
    """The exit code every command gives ``exc`` (the module docstring's table)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, ProjectCheckError):
        return EXIT_PROJECT
    if isinstance(exc, RedcapBanned):
        return EXIT_BANNED
    return EXIT_FAILURE


def report_failure(exc: RelayError, say: Callable[[str], None]) -> int:
    """Say what went wrong in one line and return the exit code for it."""
    code = exit_code(exc)
    prefix = {EXIT_CONFIG: "configuration error: ", EXIT_PROJECT: "REDCap project check failed: "}
    say(f"{prefix.get(code, '')}{exc}")
    return code


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")


def _level(exc: RelayError) -> int:
    # A REDCap ban needs a person today: say it as loudly as logging can.
    return logging.CRITICAL if isinstance(exc, RedcapBanned) else logging.ERROR


def _cycles(
    ctx: C,
    run_once: Callable[[C], CycleResult],
    *,
    once: bool,
    log: logging.Logger,
    heartbeat: Heartbeat | None = None,
) -> int:
    beat = heartbeat or Heartbeat(Notifier(None))
    poll = ctx.settings.poll_interval_seconds
    backoff = Backoff(poll)
    while not ctx.stop.is_set():
        wait = poll
        try:
            result = run_once(ctx)
        except TransientError as exc:
            # REDCap, Twilio or Graph said "not now": wait longer each time (their Retry-After
            # if longer), so an outage is not hammered, and try again.
            wait = backoff.failed(exc.retry_after)
            log.warning("cycle incomplete, will retry in %.0f s: %s", wait, exc)
            # Alive and retrying: the ping says so, the status names only the kind of trouble.
            beat.beat(f"last cycle incomplete ({type(exc).__name__}), retrying")
            if once:
                return EXIT_FAILURE
        else:
            backoff.succeeded()
            if result.problem:
                log.error("%s", result.problem)
            log.info("cycle done: %s", result.summary())
            refused = ", refused to act (see the log)" if result.problem else ""
            beat.beat(f"last cycle: {result.summary()}{refused}")
            if once:
                return EXIT_FAILURE if result.problem else EXIT_OK
        _sleep(ctx, wait, beat)
    log.info("stopping (signal received)")
    return EXIT_OK


def _sleep(ctx: Running, seconds: float, beat: Heartbeat) -> None:
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
