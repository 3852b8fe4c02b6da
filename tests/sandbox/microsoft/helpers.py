"""Helpers for tests against the Microsoft simulator: throwaway certificates, an msal app built
as production builds it, and a raw token for calling Graph directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from common.graph_transport import GraphSession
from sandbox.microsoft.server import MicrosoftSim

LOGIN = "https://login.microsoftonline.com"
GRAPH = "https://graph.microsoft.com"
SCOPES = ["https://graph.microsoft.com/.default"]


def make_certificate() -> tuple[str, bytes]:
    """A fresh RSA key and a self-signed certificate: (private key PEM text, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redcap-relay test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, cert.public_bytes(serialization.Encoding.PEM)


def session(ms: MicrosoftSim) -> GraphSession:
    return GraphSession(
        5, {"login.microsoftonline.com": ms.base_url, "graph.microsoft.com": ms.base_url}
    )


def msal_app(ms: MicrosoftSim, credential: Any = None) -> Any:
    """A fresh msal app with an empty HTTP cache, talking to ``ms`` through host rewriting."""
    return msal.ConfidentialClientApplication(
        ms.client_id,
        client_credential=ms.client_secret if credential is None else credential,
        authority=f"{LOGIN}/{ms.tenant_id}",
        http_client=session(ms),
        http_cache={},
    )


def raw_token(ms: MicrosoftSim) -> str:
    """A bearer token straight from the token endpoint (for calling Graph without msal)."""
    answer = requests.post(
        f"{ms.base_url}/{ms.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ms.client_id,
            "client_secret": ms.client_secret,
            "scope": SCOPES[0],
        },
        timeout=5,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def graph(
    ms: MicrosoftSim, method: str, path: str, token: str | None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{ms.base_url}{path}", headers=headers, timeout=5, **kwargs)


def mail(to: str = "participant@example.org", **extra: Any) -> dict[str, Any]:
    """A sendMail body as Graph's docs show it, with our header."""
    message: dict[str, Any] = {
        "subject": "Your next survey",
        "body": {"contentType": "Text", "content": "Hello"},
        "toRecipients": [{"emailAddress": {"address": to}}],
        "internetMessageHeaders": [{"name": "x-redcap-relay-id", "value": "r1"}],
    }
    message.update(extra)
    return {"message": message, "saveToSentItems": True}
