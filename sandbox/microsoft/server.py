"""The Microsoft simulator as tests and the sandbox use it: :class:`MicrosoftSim`.

One server on 127.0.0.1 plays both ``login.microsoftonline.com`` (OpenID configuration, instance
discovery, the client-credentials token endpoint) and ``graph.microsoft.com`` (sendMail, Sent
Items, users). msal only accepts https authorities, so clients keep Microsoft's URLs and a
host-rewriting ``requests.Session`` sends them here (TWILIO_API.md §6.4; production code:
``common.graph_client``). Look at what was accepted with :meth:`MicrosoftSim.sent`; count
requests with :meth:`MicrosoftSim.requests`; inject 429/503 with :meth:`throttle_next` and
hangs or resets through ``sim.server.faults`` (match ``{"service": ..., "op": ...}``).
"""

from __future__ import annotations

import json
import secrets
import uuid

from sandbox.clock import SimClock
from sandbox.faults import Fault
from sandbox.httpserver import SimServer
from sandbox.microsoft.app import MicrosoftApp
from sandbox.microsoft.errors import GraphApiError
from sandbox.microsoft.identity import Directory
from sandbox.microsoft.mailbox import Mailboxes, SentMail

# Application permissions as the portal names them; Mail.Read lets Sent Items be searched.
DEFAULT_ROLES = ("Mail.Send", "Mail.Read", "User.Read.All")


class MicrosoftSim:
    """A local, stateful fake of one Entra ID tenant, one app registration and its mailboxes."""

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        sender: str = "study-team@sandbox.example.org",
        roles: tuple[str, ...] = DEFAULT_ROLES,
        clock: SimClock | None = None,
        port: int = 0,
    ) -> None:
        self.clock = clock or SimClock()
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.client_id = client_id or str(uuid.uuid4())
        self.client_secret = client_secret or secrets.token_urlsafe(30)
        self.sender = sender
        self.directory = Directory(
            clock=self.clock,
            tenant_id=self.tenant_id,
            tenant_domain="sandbox.onmicrosoft.com",
            client_id=self.client_id,
            client_secret=self.client_secret,
            roles=set(roles),
        )
        self.mailboxes = Mailboxes(clock=self.clock)
        self.mailboxes.add(sender)
        self.app = MicrosoftApp(self.directory, self.mailboxes)
        self.server = SimServer(self.app, port, clock=self.clock.now)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: where both Microsoft hosts are served."""
        return self.server.base_url

    def start(self) -> MicrosoftSim:
        self.server.start()
        return self

    def stop(self) -> None:
        """Stop serving; bounded (hanging requests are released)."""
        self.server.stop()

    def __enter__(self) -> MicrosoftSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- setup -----------------------------------------------------------------------------

    def register_certificate(self, certificate_pem: bytes) -> str:
        """Upload a certificate's public part to the app registration; returns its SHA-1
        thumbprint (upper-case hex, as the Azure portal shows it)."""
        return self.directory.register_certificate(certificate_pem)

    def add_mailbox(self, address: str) -> str:
        """Another mailbox in the tenant; returns its user id."""
        return self.mailboxes.add(address)

    def set_roles(self, *roles: str) -> None:
        """The app's application permissions (admin-consented) for tokens issued from now on."""
        self.directory.roles = set(roles)

    # -- inspection ------------------------------------------------------------------------

    def sent(self, to: str | None = None) -> list[SentMail]:
        """The mailbox log: every mail sendMail accepted (to ``to``), oldest first."""
        return [m for m in self.mailboxes.log() if to is None or to in m.to]

    def requests(self, op: str) -> int:
        """How many requests of ``op`` (``token``, ``sendMail``, ``listSent``, ``getUser``,
        ``openid``, ``discovery``) reached the server, faults included."""
        service = "identity" if op in ("token", "openid", "discovery") else "graph"
        return self.server.stats.requests[f"{service}/{op}"]

    def tokens_issued(self) -> int:
        return self.directory.tokens_issued()

    # -- faults ----------------------------------------------------------------------------

    def throttle_next(
        self, n: int = 1, *, op: str = "sendMail", status: int = 429, retry_after: float = 1
    ) -> Fault:
        """Answer the next ``n`` ``op`` requests with ``status`` (429 ApplicationThrottled or
        503 ServiceUnavailable) and ``Retry-After: retry_after`` (0: no header), in Microsoft's
        shape. Nothing is applied."""
        service = "identity" if op in ("token", "openid", "discovery") else "graph"
        fault = Fault(
            kind="status",
            status=status,
            seconds=retry_after,
            times=n,
            match={"service": service, "op": op},
        )
        return self.app.injected.add(fault)

    def refuse_next(
        self,
        code: str = "ErrorInvalidRecipients",
        message: str = "At least one recipient isn't valid.",
        *,
        status: int = 400,
        op: str = "sendMail",
    ) -> Fault:
        """Answer the next ``op`` request with Graph's error ``code`` (nothing applied): what
        Exchange says of a recipient it will not take, or a mailbox it cannot send from."""
        body = json.dumps(GraphApiError(status, code, message).body())
        fault = Fault(kind="status", status=status, body=body, match={"service": "graph", "op": op})
        return self.app.injected.add(fault)

    def hang_next(
        self, *, op: str = "sendMail", after_apply: bool = True, seconds: float = 30
    ) -> Fault:
        """Withhold the answer to the next ``op`` request (applied first when ``after_apply``)."""
        service = "identity" if op in ("token", "openid", "discovery") else "graph"
        fault = Fault(
            kind="hang",
            seconds=seconds,
            after_apply=after_apply,
            match={"service": service, "op": op},
        )
        return self.server.faults.add(fault)

    def delay_sent_items(self, seconds: float) -> None:
        """From now on a sent mail's copy shows in Sent Items ``seconds`` after it went (0: at
        once), as Exchange under load saves it late."""
        self.mailboxes.sent_items_lag = seconds

    def reset_next(self, *, op: str = "sendMail") -> Fault:
        """Close the connection of the next ``op`` request without an answer (not applied)."""
        service = "identity" if op in ("token", "openid", "discovery") else "graph"
        return self.server.faults.add(Fault(kind="reset", match={"service": service, "op": op}))
