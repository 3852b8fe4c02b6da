"""A running REDCap simulator: ``POST http://127.0.0.1:PORT/api/``, as tests and the demo use it.

    with RedcapSim(project) as sim:
        proj = redcap.Project(sim.url, sim.token)
        proj.export_records()

The server is a :class:`sandbox.httpserver.SimServer`, so ``sim.server.faults`` injects
failures (match on ``{"content": ..., "action": ...}``) and ``sim.server.stats`` counts requests
and bytes per content/action. ``sim.project.filter_work`` counts the rows each record export
evaluated (what REDCap's PHP spends on a request, which grows with the rows it reads).
"""

from __future__ import annotations

from sandbox.clock import SimClock
from sandbox.httpserver import SimServer
from sandbox.redcap.api import RedcapApp
from sandbox.redcap.model import Project
from sandbox.redcap.ratelimit import DEFAULT_PER_MINUTE, RateLimiter

# A made-up token in REDCap's shape (32 upper-case hex characters); not a secret.
DEFAULT_TOKEN = "0123456789ABCDEF0123456789ABCDEF"  # noqa: S105
DEFAULT_VERSION = "15.7.6"


class RedcapSim:
    """One simulated REDCap server serving ``project`` (and any added) behind API tokens."""

    def __init__(
        self,
        project: Project,
        *,
        token: str = DEFAULT_TOKEN,
        clock: SimClock | None = None,
        port: int = 0,
        rate_limit_per_minute: int = DEFAULT_PER_MINUTE,
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.project = project
        self.token = token
        self.clock = clock if clock is not None else SimClock()
        self.limiter = RateLimiter(self.clock, rate_limit_per_minute)
        self.app = RedcapApp(self.clock, self.limiter, version=version)
        self.app.add_project(project, token)
        self.server = SimServer(self.app, port=port, clock=self.clock.now)
        self.app.base_url = self.server.base_url
        self._started = False

    @property
    def url(self) -> str:
        """The API endpoint, with the trailing slash PyCap insists on."""
        return f"{self.server.base_url}/api/"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: survey links live under ``/surveys/``."""
        return self.server.base_url

    def add_project(self, project: Project, token: str) -> None:
        """Serve another project on the same server, behind its own token."""
        self.app.add_project(project, token)

    def unban(self, ip: str | None = None) -> None:
        """Lift the rate limiter's ban on ``ip`` (default: every IP)."""
        self.limiter.unban(ip)

    def start(self) -> RedcapSim:
        self.server.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving (bounded); a no-op for a simulator that never started."""
        if self._started:
            # SimServer.stop waits for its serve loop, which only exists once started.
            self._started = False
            self.server.stop()

    def __enter__(self) -> RedcapSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
