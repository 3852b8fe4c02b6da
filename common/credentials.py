"""The credentials' settings, checked only by the commands that use them: Twilio's for a
command that texts, Microsoft Graph's for one that mails. Each problem is one ConfigError naming
the setting and where to find the right value."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from common.errors import ConfigError

if TYPE_CHECKING:
    from common.settings import Settings

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TENANT_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
_MAILBOX = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_twilio(settings: Settings) -> None:
    """The Twilio settings a command that texts needs; ConfigError naming the first bad one."""
    if not _ACCOUNT_SID.match(settings.twilio_account_sid):
        raise ConfigError(
            "TWILIO_ACCOUNT_SID must be your Account SID (AC followed by 32 hex characters), "
            "from the Twilio console"
        )
    if not settings.twilio_auth_token:
        raise ConfigError("TWILIO_AUTH_TOKEN is not set; copy it from the Twilio console")
    if not settings.twilio_from_number and not settings.twilio_messaging_service_sid:
        raise ConfigError(
            "set TWILIO_FROM_NUMBER (your Twilio number, E.164) or TWILIO_MESSAGING_SERVICE_SID"
        )
    if settings.twilio_messaging_service_sid and not _SERVICE_SID.match(
        settings.twilio_messaging_service_sid
    ):
        raise ConfigError("TWILIO_MESSAGING_SERVICE_SID must look like MG + 32 hex characters")
    if settings.twilio_from_number and not re.match(
        r"^\+[1-9]\d{6,14}$", settings.twilio_from_number
    ):
        raise ConfigError("TWILIO_FROM_NUMBER must be in E.164 form, e.g. +15005550006")
    if not re.match(r"^https?://", settings.twilio_api_base_url):
        raise ConfigError("TWILIO_API_BASE_URL must be a URL (default https://api.twilio.com)")


def check_graph(settings: Settings) -> None:
    """The Microsoft Graph settings a command that mails needs; ConfigError naming the first
    bad one."""
    where = "from the app registration's Overview page in the Entra admin center"
    if not (
        _GUID.match(settings.graph_tenant_id) or _TENANT_DOMAIN.match(settings.graph_tenant_id)
    ):
        raise ConfigError(
            f"GRAPH_TENANT_ID must be the Directory (tenant) ID, a GUID {where}"
            if not settings.graph_tenant_id
            else f"GRAPH_TENANT_ID={settings.graph_tenant_id!r} is not a tenant ID (a GUID {where})"
        )
    if not _GUID.match(settings.graph_client_id):
        raise ConfigError(f"GRAPH_CLIENT_ID must be the Application (client) ID, a GUID {where}")
    certificate = settings.graph_cert_path is not None or bool(settings.graph_cert_thumbprint)
    if settings.graph_client_secret and certificate:
        name = "GRAPH_CERT_PATH" if settings.graph_cert_path else "GRAPH_CERT_THUMBPRINT"
        raise ConfigError(
            f"{name} is set together with GRAPH_CLIENT_SECRET; use a client secret or a "
            "certificate, not both (leave the other empty)"
        )
    if not settings.graph_client_secret and not certificate:
        raise ConfigError(
            "GRAPH_CLIENT_SECRET is not set; set it (the secret's Value) or use a certificate "
            "with GRAPH_CERT_PATH + GRAPH_CERT_THUMBPRINT"
        )
    if certificate:
        if settings.graph_cert_path is None or not settings.graph_cert_path.is_file():
            raise ConfigError(
                "GRAPH_CERT_PATH must name the PEM file holding the certificate's private key"
                + (
                    f" (no such file: {settings.graph_cert_path})"
                    if settings.graph_cert_path
                    else ""
                )
            )
        if not _THUMBPRINT.match(settings.graph_cert_thumbprint):
            raise ConfigError(
                "GRAPH_CERT_THUMBPRINT must be the certificate's thumbprint as the app "
                "registration shows it (40 hex characters)"
            )
    if not _MAILBOX.match(settings.graph_sender):
        raise ConfigError(
            "GRAPH_SENDER must be the address of the mailbox mail is sent from, e.g. "
            "study-team@example.org"
        )
    for name, value in (
        ("GRAPH_AUTHORITY_URL", settings.graph_authority_url),
        ("GRAPH_API_BASE_URL", settings.graph_api_base_url),
    ):
        if not re.match(r"^https?://[^/\s]+", value):
            raise ConfigError(f"{name}={value!r} must be a URL (leave it empty for Microsoft's)")
