"""Both simulators on one clock, started and stopped together: what a rehearsal runs.

Used by ``python -m sandbox``, ``make demo`` and the service tests, so all three exercise the
same setup.
"""

from __future__ import annotations

from sandbox.clock import SimClock
from sandbox.envfile import sandbox_settings
from sandbox.redcap.model import Project
from sandbox.redcap.server import RedcapSim
from sandbox.twilio.server import TwilioSim


class Sandbox:
    """A REDCap simulator serving ``project`` and a Twilio simulator, sharing ``clock``."""

    def __init__(
        self,
        project: Project,
        *,
        clock: SimClock | None = None,
        redcap_port: int = 0,
        twilio_port: int = 0,
    ) -> None:
        self.project = project
        self.clock = clock or SimClock()
        self.redcap = RedcapSim(project, clock=self.clock, port=redcap_port)
        self.twilio = TwilioSim(clock=self.clock, port=twilio_port)

    def start(self) -> Sandbox:
        self.redcap.start()
        try:
            self.twilio.start()
        except BaseException:
            self.redcap.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.twilio.stop()
        finally:
            self.redcap.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def settings(self, **overrides: str) -> dict[str, str]:
        """Every setting the services need to run against these simulators."""
        return sandbox_settings(
            self.redcap.url,
            self.redcap.token,
            self.project,
            self.twilio.base_url,
            self.twilio.account_sid,
            self.twilio.auth_token,
            self.twilio.from_number,
            overrides,
        )
