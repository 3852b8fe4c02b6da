"""kill -9 of a real service process at a chosen request, for the crash tests.

A step names the simulator (``redcap``, ``twilio`` or ``microsoft``), the requests it matches
(its ``describe`` values), whether the server applies the request before withholding the answer,
and how many matching requests go through first. :func:`kill_at` hangs that request, waits until
a ``python -m <module> --once`` process (the sender unless told otherwise) is stuck in it and
SIGKILLs it there.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from messaging.context import Context
from messaging.pacing import Pacers, SendPacer
from messaging.records import export_fields, rows_for
from messaging.send import send_due
from sandbox.faults import Fault
from sandbox.httpserver import SimServer, wait_until
from tests.services.conftest import ROOT, Rig, clean_env

# (name, which simulator, what to match, after_apply, matching requests to let through first)
Step = tuple[str, str, dict[str, str], bool, int]
IMPORT = {"content": "record", "action": "import"}
CREATE = {"op": "create"}  # Twilio's message create


def send_steps(where: str, match: dict[str, str], lost: str, applied: str) -> list[Step]:
    """The send path's six kill points: the claim import, the provider's send (``match`` on
    simulator ``where``), the result import, each lost before or after it is applied."""
    return [
        ("claim write lost", "redcap", IMPORT, False, 0),
        ("claim written, answer lost", "redcap", IMPORT, True, 0),
        (lost, where, match, False, 0),
        (applied, where, match, True, 0),
        ("result write lost", "redcap", IMPORT, False, 1),
        ("result written, answer lost", "redcap", IMPORT, True, 1),
    ]


SMS_STEPS = send_steps("twilio", CREATE, "twilio create lost", "twilio created, answer lost")

# The kills are the test's, many per record: the poison-record bound is raised out of the way
# (test_interrupted.py pins it). Claims are reconciled at once.
KILL_SETTINGS = {
    "SMS_DELAY_MINUTES": "0",
    "SMS_CLAIM_TIMEOUT_SECONDS": "0",
    "SMS_MAX_INTERRUPTED": "50",
    "SMS_MAX_PER_SECOND": "50",
}


def server_of(rig: Rig, where: str) -> SimServer:
    servers = {
        "redcap": rig.redcap.server,
        "twilio": rig.twilio.server,
        "microsoft": rig.microsoft.server,
    }
    return servers[where]


def kill_at(rig: Rig, step: Step, module: str = "services.sms_sender", **overrides: str) -> bool:
    """Start ``module --once`` (settings: KILL_SETTINGS and ``overrides``), let it reach ``step``
    and SIGKILL it there (or let it finish if it has nothing left that reaches the step); whether
    it was killed at the step."""
    _, where, match, after_apply, skip = step
    server = server_of(rig, where)
    fault = server.faults.add(
        Fault(kind="hang", seconds=30, after_apply=after_apply, skip=skip, match=match)
    )
    env = rig.env_file(**{**KILL_SETTINGS, **overrides}, HTTP_TIMEOUT_SECONDS="60")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--once", "--env-file", str(env)],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: fault.times == 0 or proc.poll() is not None, timeout=30)
        reached = fault.times == 0
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        server.faults.clear()
    return reached


class _Died(Exception):
    """The sender died here (in a test: between its claim and its first send)."""


class _DieAtFirstSend(Pacers):
    """Pacers whose first turn never comes: the process is gone once the claim is written."""

    def for_channel(self, channel: str) -> SendPacer:
        raise _Died


def claim_and_die(ctx: Context, *records: str) -> None:
    """What a sender killed right after its claim leaves: the records ``sending`` (claimed by
    the real send path), nothing sent. One rule, the study's first."""
    rule = ctx.rules.written[0]
    exported = ctx.redcap.export(export_fields(ctx, [rule]), events=ctx.layout.events)
    due = [row for row in rows_for(ctx, rule, exported) if row.record_id in records]
    assert len(due) == len(records)
    pacers = _DieAtFirstSend(1, 1, ctx.clock)
    with pytest.raises(_Died):
        send_due(ctx, due, pacers, lambda: False)
