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
from datetime import datetime
from functools import partial

from common.clock import Clock, clock_for
from common.errors import ProjectCheckError
from common.graph_client import GraphMailer
from common.project import Layout, load_layout
from common.redcap_client import RedcapClient
from common.runner import CycleResult, run_service
from common.settings import Settings
from common.twilio_client import SmsGateway
from messaging.checks import needs, survey_checks
from messaging.rules import Rules
from messaging.rules_file import rules_for


@dataclass
class Context:
    """Everything a cycle needs, built once at startup; services hold no other state."""

    settings: Settings
    rules: Rules
    redcap: RedcapClient
    layout: Layout
    clock: Clock
    stop: threading.Event = field(default_factory=threading.Event)
    sms: SmsGateway | None = None
    mail: GraphMailer | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("redcap_relay"))

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
    layout = load_layout(client, settings, needs(rules))
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
) -> int:
    """Run the service ``name`` (``python -m services.<name>``) until it stops; its exit code.
    ``description`` is its module docstring (``--help`` shows the first paragraph). The needs are
    :func:`build_context`'s; ``start`` is the runner's (it names the lock)."""
    build = partial(
        build_context,
        needs_twilio=needs_twilio,
        needs_survey=needs_survey,
        needs_mail=needs_mail,
        name=name,
    )
    first = (description or "").strip().split("\n\n")[0].replace("``", "")
    summary = " ".join(first.split())
    return run_service(
        name, summary, argv, run_once, build, add_arguments=add_arguments, start=start
    )
