"""The identity platform as msal's client-credentials flow uses it (TWILIO_API.md §6.4).

Documents name Microsoft's **https** hosts: msal refuses any other scheme, also for the token
endpoint it discovers, so clients reach this simulator through a host-rewriting session.
A client proves itself with its secret or with a certificate: a JWT assertion whose ``x5t``
header (base64url SHA-1 thumbprint) names a registered certificate, whose RSA signature is
verified with PyJWT + cryptography (both installed with msal), and whose ``aud`` is the token
endpoint.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from sandbox.clock import SimClock
from sandbox.microsoft.errors import IdentityError

LOGIN_HOST = "login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_SECONDS = 3599


def openid_configuration(tenant: str) -> dict[str, object]:
    """The tenant's discovery document, with every endpoint on Microsoft's https host."""
    base = f"https://{LOGIN_HOST}/{tenant}"
    return {
        "issuer": f"https://login.microsoftonline.com/{tenant}/v2.0",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "jwks_uri": f"https://{LOGIN_HOST}/{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "tenant_region_scope": "NA",
    }


def instance_discovery(authorization_endpoint: str) -> dict[str, object]:
    """``/common/discovery/instance``: the public cloud's aliases."""
    aliases = [LOGIN_HOST, "login.windows.net", "login.microsoft.com", "sts.windows.net"]
    return {
        "tenant_discovery_endpoint": authorization_endpoint.replace(
            "/oauth2/v2.0/authorize", "/v2.0/.well-known/openid-configuration"
        ),
        "api-version": "1.1",
        "metadata": [
            {
                "preferred_network": LOGIN_HOST,
                "preferred_cache": "login.windows.net",
                "aliases": aliases,
            }
        ],
    }


def thumbprint(certificate_pem: bytes) -> str:
    """The SHA-1 thumbprint Azure shows for a certificate, upper-case hex."""
    cert = x509.load_pem_x509_certificate(certificate_pem)
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Azure's x5t is SHA-1


@dataclass
class Token:
    value: str
    client_id: str
    roles: frozenset[str]
    expires: datetime


@dataclass
class Directory:
    """One tenant with one app registration, and the tokens it has issued."""

    clock: SimClock
    tenant_id: str
    tenant_domain: str
    client_id: str
    client_secret: str
    roles: set[str]
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)  # SHA-1 hex -> cert
    _tokens: dict[str, Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() in (self.tenant_id.lower(), self.tenant_domain.lower())

    def register_certificate(self, certificate_pem: bytes) -> str:
        """Upload a certificate to the app registration; returns its thumbprint."""
        cert = x509.load_pem_x509_certificate(certificate_pem)
        print_hex = thumbprint(certificate_pem)
        with self._lock:
            self.certificates[print_hex] = cert
        return print_hex

    def issue(self, tenant: str, form: dict[str, list[str]]) -> dict[str, object]:
        """Answer a token request (raises IdentityError as Entra ID would)."""
        value = {key: values[0] for key, values in form.items() if values}
        grant = value.get("grant_type", "")
        if grant != "client_credentials":
            raise IdentityError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = value.get("client_id", "")
        if client_id != self.client_id:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'.",
            )
        if value.get("scope", "").split() != [GRAPH_SCOPE]:
            raise IdentityError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier.",
            )
        if value.get("client_assertion"):
            self._check_assertion(tenant, value)
        elif value.get("client_secret"):
            if not secrets.compare_digest(value["client_secret"], self.client_secret):
                raise IdentityError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    f"is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{client_id}'.",
                )
        else:
            raise IdentityError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        token = Token(
            value=secrets.token_urlsafe(48),
            client_id=client_id,
            roles=frozenset(self.roles),
            expires=self.clock.now() + timedelta(seconds=TOKEN_SECONDS),
        )
        with self._lock:
            self._tokens[token.value] = token
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "ext_expires_in": TOKEN_SECONDS,
            "access_token": token.value,
        }

    def token(self, value: str) -> Token | None:
        with self._lock:
            return self._tokens.get(value)

    def tokens_issued(self) -> int:
        with self._lock:
            return len(self._tokens)

    def _check_assertion(self, tenant: str, value: dict[str, str]) -> None:
        if value.get("client_assertion_type") != JWT_BEARER:
            raise IdentityError(
                400,
                "invalid_request",
                50027,
                "Invalid client_assertion_type: expected " + JWT_BEARER,
            )
        assertion = value["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            x5t = str(header.get("x5t", ""))
            print_hex = base64.urlsafe_b64decode(x5t + "=" * (-len(x5t) % 4)).hex().upper()
        except (jwt.InvalidTokenError, binascii.Error, ValueError):
            raise _bad_assertion("The assertion is not a well-formed JWT.") from None
        with self._lock:
            cert = self.certificates.get(print_hex)
        if cert is None:
            raise _bad_assertion(
                f"The key was not found., Thumbprint of key used by client: '{print_hex}'"
            )
        audience = f"https://{LOGIN_HOST}/{tenant}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(
                assertion,
                key=cert.public_key(),  # type: ignore[arg-type]
                algorithms=["RS256", "PS256"],
                audience=audience,
                options={"require": ["exp", "aud", "iss", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _bad_assertion(f"{type(exc).__name__}") from None
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise _bad_assertion("The assertion's iss and sub must be the client id.")


def _bad_assertion(reason: str) -> IdentityError:
    return IdentityError(
        401,
        "invalid_client",
        700027,
        f"Client assertion contains an invalid signature. [Reason - {reason}]",
    )
