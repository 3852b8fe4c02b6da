"""The simulators (REDCap, Twilio, Microsoft) on one clock, started and stopped together: what a
rehearsal runs.

Used by ``python -m sandbox``, ``make demo`` and the service tests, so all three exercise the
same setup. ``python -m sandbox`` also gives it a ``clock_file``: the rehearsal's clock, which
its simulators follow and the services read (SANDBOX_CLOCK_FILE in the settings it writes).
"""

from __future__ import annotations

from common.clock import ClockFile
from sandbox.clock import SimClock
from sandbox.microsoft.server import MicrosoftSim
from sandbox.redcap.model import Project
from sandbox.redcap.server import RedcapSim
from sandbox.twilio.server import TwilioSim


class Sandbox:
    """A REDCap simulator serving ``project``, a Twilio and a Microsoft simulator, sharing
    ``clock``."""

    def __init__(
        self,
        project: Project,
        *,
        clock: SimClock | None = None,
        redcap_port: int = 0,
        twilio_port: int = 0,
        microsoft_port: int = 0,
        clock_file: ClockFile | None = None,
    ) -> None:
        self.project = project
        self.clock_file = clock_file
        if clock is None and clock_file is not None:
            clock = SimClock(follow=clock_file.now)
        self.clock = clock or SimClock()
        self.redcap = RedcapSim(project, clock=self.clock, port=redcap_port)
        self.twilio = TwilioSim(clock=self.clock, port=twilio_port)
        self.microsoft = MicrosoftSim(clock=self.clock, port=microsoft_port)

    def start(self) -> Sandbox:
        self.redcap.start()
        try:
            self.twilio.start()
            try:
                self.microsoft.start()
            except BaseException:
                self.twilio.stop()
                raise
        except BaseException:
            self.redcap.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.microsoft.stop()
        finally:
            try:
                self.twilio.stop()
            finally:
                self.redcap.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connection(self) -> dict[str, str]:
        """Where the simulators are and how to log in: the settings that decide which REDCap,
        Twilio and Microsoft the services talk to (a study's own settings keep everything else)."""
        return {
            **self.graph_settings(),
            "REDCAP_API_URL": self.redcap.url,
            "REDCAP_API_TOKEN": self.redcap.token,
            "REDCAP_PROJECT_ID": str(self.project.project_id),
            "TWILIO_ACCOUNT_SID": self.twilio.account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio.auth_token,
            "TWILIO_FROM_NUMBER": self.twilio.from_number,
            "TWILIO_API_BASE_URL": self.twilio.base_url,
            **({"SANDBOX_CLOCK_FILE": str(self.clock_file.path)} if self.clock_file else {}),
        }

    def settings(self, **overrides: str) -> dict[str, str]:
        """Every setting the services need to run against these simulators, fast enough to
        watch (short delay and poll interval), with the demo's field names; ``overrides`` win."""
        project = self.project
        survey = next((form.name for form in project.forms if form.is_survey), "")
        template = "Thanks for registering. Next survey: {survey_link}"
        if project.field("first_name") is not None:
            template = "Hi {field:first_name}, thanks for registering. Next survey: {survey_link}"
        settings = {
            **self.connection(),
            "REDCAP_EVENT": project.events[0].unique_name if project.is_longitudinal else "",
            "SURVEY_INSTRUMENT": survey,
            "SMS_TEMPLATE": template,
            "SMS_DELAY_MINUTES": "0.1",
            "POLL_INTERVAL_SECONDS": "2",
            "SMS_MAX_PER_SECOND": "2",
            "SMS_CLAIM_TIMEOUT_SECONDS": "20",
            # The simulators answer in milliseconds: the least settle keeps a rehearsal brisk.
            "CLAIM_SETTLE_SECONDS": "0.5",
            "TIMEZONE": "UTC",
            "HTTP_TIMEOUT_SECONDS": "10",
            "LOG_LEVEL": "INFO",
        }
        settings.update(overrides)
        return settings

    def graph_settings(self) -> dict[str, str]:
        """Where the Microsoft simulator is and its app registration's fake credentials."""
        ms = self.microsoft
        return {
            "GRAPH_TENANT_ID": ms.tenant_id,
            "GRAPH_CLIENT_ID": ms.client_id,
            "GRAPH_CLIENT_SECRET": ms.client_secret,
            "GRAPH_SENDER": ms.sender,
            "GRAPH_AUTHORITY_URL": ms.base_url,
            "GRAPH_API_BASE_URL": ms.base_url,
            "GRAPH_CAN_READ_SENT": "1",
        }
