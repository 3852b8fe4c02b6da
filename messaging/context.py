"""What every cycle works with, put together once at startup by :func:`build_context`.

The settings, then the rules they name (:func:`messaging.rules_file.rules_for`), then the clients
(REDCap; Twilio when the command sends and a rule texts; Graph when it sends and a rule mails or
staff alerts are on), then the project check for what those rules need
(:mod:`messaging.checks`). A failure is a ConfigError or ProjectCheckError naming the setting or
rule and the fix; the runner (:mod:`common.runner`) turns it into one line and an exit code.
:func:`serve` is a service's whole ``main``: the runner, given this context.
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from common.clock import Clock, clock_for
from common.errors import ConfigError, ProjectCheckError
from common.graph_client import GraphMailer
from common.project import Layout, load_layout
from common.redcap_client import RedcapClient
from common.runner import CycleResult, run_service
from common.settings import Settings
from common.twilio_client import SmsGateway
from messaging.checks import needs, survey_checks
from messaging.probes import Watch
from messaging.rules import Rules
from messaging.rules_file import rules_for


@dataclass
class Context:
    """Everything a cycle needs, built once at startup; services hold no other state (the
    ``watch`` is memory of what to ask REDCap, never pipeline state)."""

    settings: Settings
    rules: Rules
    redcap: RedcapClient
    layout: Layout
    clock: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    sms: SmsGateway | None = None
    mail: GraphMailer | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("redcap_relay"))
    # The service's in-memory schedule of change probes and sweeps (messaging.probes): lost
    # with the process, which then starts with a sweep.
    watch: Watch = field(default_factory=Watch)

    def stamp(self, field_name: str, moment: datetime | None = None) -> str:
        """Now (or ``moment``) as ``field_name`` stores it, in TIMEZONE."""
        return self.layout.stamp(field_name, moment or self.clock.now(), self.settings.timezone)


def build_context(
    settings: Settings,
    *,
    needs_twilio: bool,
    needs_survey: bool = False,
    needs_mail: bool = False,
    clock: Clock | None = None,
    name: str = "redcap_relay",
) -> Context:
    """Rules, clients, project check and layout; raises ConfigError / ProjectCheckError.

    ``needs_twilio`` / ``needs_mail``: the command sends, so it needs Twilio when a rule sends
    SMS and Graph when a rule sends e-mail or staff alerts are on (an e-mail-only study needs no
    Twilio account, and the reverse).
    """
    rules = rules_for(settings)
    sms = SmsGateway.from_settings(settings) if needs_twilio and rules.sends_sms else None
    mailing = rules.sends_email or bool(settings.alert_email_to)
    mail = GraphMailer.from_settings(settings) if needs_mail and mailing else None
    if needs_survey:
        settings.require_survey()
    client = RedcapClient(
        settings.redcap_api_url, settings.redcap_api_token, settings.http_timeout_seconds
    )
    layout = load_layout(client, settings, needs(rules, settings))
    if needs_survey:
        for survey in survey_checks(client, settings, layout, rules):
            if not survey.ok:
                raise ProjectCheckError(f"{survey.detail}; {survey.fix}")
    return Context(
        settings=settings,
        rules=rules,
        redcap=client,
        layout=layout,
        clock=clock or clock_for(settings.timezone, settings.sandbox_clock_file),
        sms=sms,
        mail=mail,
        log=logging.getLogger(name),
    )


def serve(
    name: str,
    description: str | None,
    argv: Sequence[str] | None,
    run_once: Callable[[Context], CycleResult],
    *,
    needs_twilio: bool,
    needs_survey: bool = False,
    needs_mail: bool = False,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    start: Callable[[Context, argparse.Namespace], str] | None = None,
    probes: bool = False,
) -> int:
    """Run the service ``name`` (``python -m services.<name>``) until it stops; its exit code.
    ``description`` is its module docstring (``--help`` shows the first paragraph). The needs are
    :func:`build_context`'s; ``start`` is the runner's (it names the lock). ``probes``: the
    service asks REDCap through change probes and sweeps (:mod:`messaging.probes`), so a
    ``--once`` run may be ``--sweep`` or ``--probe --window-minutes N``."""
    build = partial(
        build_context,
        needs_twilio=needs_twilio,
        needs_survey=needs_survey,
        needs_mail=needs_mail,
        name=name,
    )
    first = (description or "").strip().split("\n\n")[0].replace("``", "")
    summary = " ".join(first.split())
    if probes:
        add_arguments, start = _with_probe_flags(add_arguments, start)
    return run_service(
        name, summary, argv, run_once, build, add_arguments=add_arguments, start=start
    )


def _with_probe_flags(
    add_arguments: Callable[[argparse.ArgumentParser], None] | None,
    start: Callable[[Context, argparse.Namespace], str] | None,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[Context, argparse.Namespace], str]]:
    """``--sweep`` and ``--probe --window-minutes N`` for ``--once`` runs (CronJobs, timers),
    which keep no schedule between runs: a probe of the last N minutes' changes, and a sweep
    every SWEEP_MINUTES (a ``--probe`` run on such a minute sweeps; see docs/SCALING.md)."""

    def adding(parser: argparse.ArgumentParser) -> None:
        if add_arguments:
            add_arguments(parser)
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument(
            "--sweep", action="store_true", help="with --once: a full export (what is due now)"
        )
        kind.add_argument(
            "--probe",
            action="store_true",
            help="with --once: only the records REDCap logged a change of in the last "
            "--window-minutes (the run's schedule interval)",
        )
        parser.add_argument("--window-minutes", type=float, default=None, help="see --probe")

    def starting(ctx: Context, args: argparse.Namespace) -> str:
        _plan_once(ctx, args)
        return start(ctx, args) if start else ""

    return adding, starting


def _plan_once(ctx: Context, args: argparse.Namespace) -> None:
    window = args.window_minutes
    if (args.sweep or args.probe) and not args.once:
        raise ConfigError("--sweep and --probe go with --once (a loop sweeps and probes itself)")
    if args.probe and (window is None or not 0 < window <= 24 * 60):
        raise ConfigError(
            "--probe needs --window-minutes N (1 to 1440): the minutes between two --once "
            "--probe runs, e.g. --window-minutes 1 for a CronJob every minute"
        )
    if window is not None and not args.probe:
        raise ConfigError("--window-minutes goes with --once --probe")
    every = ctx.settings.sweep_minutes
    # One schedule for both (a CronJob every minute): the probe run that starts on a multiple of
    # SWEEP_MINUTES (counted from the epoch, so at :00, :15, :30, :45 by default) sweeps.
    on_the_sweep = (
        bool(every) and int(ctx.clock.now().timestamp() // 60) % max(round(every), 1) == 0
    )
    if args.sweep or (args.probe and on_the_sweep):
        ctx.watch.mode = "sweep"
    elif args.probe:
        asked = ctx.redcap.answered_at()  # REDCap's clock, at the project check just made
        if asked is None:
            ctx.log.warning("REDCap sent no Date header: this --probe run is a full sweep")
            ctx.watch.mode = "sweep"
            return
        ctx.watch.mode, ctx.watch.asked_at = "probe", asked
        ctx.watch.window = timedelta(minutes=window)
