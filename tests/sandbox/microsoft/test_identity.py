"""The simulated identity platform, through msal itself (fresh app, empty HTTP cache, per test)."""

from __future__ import annotations

import msal
import pytest
import requests

from sandbox.microsoft.identity import thumbprint
from sandbox.microsoft.server import MicrosoftSim
from tests.sandbox.microsoft.helpers import LOGIN, SCOPES, make_certificate, msal_app


def test_openid_configuration_names_https_endpoints_on_microsofts_host(ms: MicrosoftSim) -> None:
    """msal re-checks the discovered endpoints for https, so the document names Microsoft's."""
    doc = requests.get(
        f"{ms.base_url}/{ms.tenant_id}/v2.0/.well-known/openid-configuration", timeout=5
    ).json()
    assert doc["token_endpoint"] == f"{LOGIN}/{ms.tenant_id}/oauth2/v2.0/token"
    assert doc["issuer"] == f"{LOGIN}/{ms.tenant_id}/v2.0"
    assert all(str(v).startswith(LOGIN) for k, v in doc.items() if k.endswith("_endpoint"))


def test_an_unknown_tenant_is_400_invalid_tenant(ms: MicrosoftSim) -> None:
    """AADSTS90002, and msal's constructor refuses the authority with a ValueError."""
    answer = requests.get(
        f"{ms.base_url}/nope.example/v2.0/.well-known/openid-configuration", timeout=5
    )
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [90002]


def test_instance_discovery_serves_the_public_clouds_metadata(ms: MicrosoftSim) -> None:
    """GET /common/discovery/instance answers what msal expects (api-version 1.1, aliases)."""
    answer = requests.get(
        f"{ms.base_url}/common/discovery/instance",
        params={"api-version": "1.1", "authorization_endpoint": f"{LOGIN}/t/oauth2/v2.0/authorize"},
        timeout=5,
    ).json()
    assert answer["api-version"] == "1.1"
    assert "login.microsoftonline.com" in answer["metadata"][0]["aliases"]


def test_a_client_secret_gets_a_bearer_token_that_msal_then_serves_from_its_cache(
    ms: MicrosoftSim,
) -> None:
    """client_credentials + secret: Bearer, expires_in 3599; the second ask never leaves msal."""
    app = msal_app(ms)
    first = app.acquire_token_for_client(scopes=SCOPES)
    second = app.acquire_token_for_client(scopes=SCOPES)
    assert first["token_type"] == "Bearer" and first["expires_in"] == 3599
    assert first["token_source"] == "identity_provider" and second["token_source"] == "cache"
    assert second["access_token"] == first["access_token"]
    assert ms.requests("token") == 1 and ms.tokens_issued() == 1


def test_a_bad_secret_is_401_invalid_client_7000215(ms: MicrosoftSim) -> None:
    """As Entra ID answers (verified against it, TWILIO_API.md §6.1): msal returns the error."""
    result = msal_app(ms, "not-the-secret").acquire_token_for_client(scopes=SCOPES)
    assert result["error"] == "invalid_client" and result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215:")
    raw = requests.post(
        f"{ms.base_url}/{ms.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ms.client_id,
            "client_secret": "wrong",
            "scope": SCOPES[0],
        },
        timeout=5,
    )
    assert raw.status_code == 401


def test_the_scope_must_be_the_resource_default(ms: MicrosoftSim) -> None:
    """Client credentials need ``<resource>/.default`` (AADSTS1002012), never Mail.Send."""
    raw = requests.post(
        f"{ms.base_url}/{ms.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ms.client_id,
            "client_secret": ms.client_secret,
            "scope": "Mail.Send",
        },
        timeout=5,
    )
    assert raw.status_code == 400 and raw.json()["error"] == "invalid_scope"


def test_a_registered_certificate_gets_a_token(ms: MicrosoftSim) -> None:
    """msal's signed assertion: x5t names the registered certificate, the signature verifies."""
    key, cert = make_certificate()
    thumbprint = ms.register_certificate(cert)
    result = msal_app(ms, {"private_key": key, "thumbprint": thumbprint}).acquire_token_for_client(
        scopes=SCOPES
    )
    assert result["token_type"] == "Bearer", result


def test_an_unregistered_certificate_is_401_invalid_client_700027(ms: MicrosoftSim) -> None:
    """A thumbprint the app registration does not hold: the key was not found."""
    key, cert = make_certificate()
    credential = {"private_key": key, "thumbprint": thumbprint(cert)}
    result = msal_app(ms, credential).acquire_token_for_client(scopes=SCOPES)
    assert result["error"] == "invalid_client" and result["error_codes"] == [700027]


def test_a_signature_by_another_key_is_refused(ms: MicrosoftSim) -> None:
    """The registered certificate's thumbprint with some other private key: bad signature."""
    _key, cert = make_certificate()
    other_key, _other_cert = make_certificate()
    thumbprint = ms.register_certificate(cert)
    credential = {"private_key": other_key, "thumbprint": thumbprint}
    result = msal_app(ms, credential).acquire_token_for_client(scopes=SCOPES)
    assert result["error_codes"] == [700027]
    assert "InvalidSignatureError" in result["error_description"]


def test_a_throttled_token_request_carries_retry_after_and_msal_replays_it(
    ms: MicrosoftSim,
) -> None:
    """429 + Retry-After on the token endpoint; msal's ThrottledHttpClient then answers the
    same error itself without asking again (TWILIO_API.md §6.4 point 5)."""
    ms.throttle_next(op="token", retry_after=30)
    app = msal_app(ms)
    first = app.acquire_token_for_client(scopes=SCOPES)
    second = app.acquire_token_for_client(scopes=SCOPES)
    assert first["error"] == "temporarily_unavailable" and second["error"] == first["error"]
    assert ms.requests("token") == 1


def test_msal_refuses_the_simulators_plain_http_url(ms: MicrosoftSim) -> None:
    """Why clients rewrite hosts: an http authority is a ValueError in msal."""
    with pytest.raises(ValueError, match="https"):
        msal.ConfidentialClientApplication(
            ms.client_id,
            client_credential=ms.client_secret,
            authority=f"{ms.base_url}/{ms.tenant_id}",
            validate_authority=False,
            instance_discovery=False,
        )
