"""Write a ready-to-use settings file pointing the services at the running simulators."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sandbox.redcap.model import Project


def sandbox_settings(
    redcap_url: str,
    redcap_token: str,
    project: Project,
    twilio_base_url: str,
    twilio_sid: str,
    twilio_token: str,
    twilio_from: str,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every setting the services need to run against the sandbox, fast enough to watch."""
    survey = next((form.name for form in project.forms if form.is_survey), "")
    settings = {
        "REDCAP_API_URL": redcap_url,
        "REDCAP_API_TOKEN": redcap_token,
        "REDCAP_PROJECT_ID": str(project.project_id),
        "REDCAP_EVENT": project.events[0].unique_name if project.is_longitudinal else "",
        "SURVEY_INSTRUMENT": survey,
        "SMS_TEMPLATE": "Hi {field:first_name}, thanks for registering. Next survey: {survey_link}"
        if project.field("first_name") is not None
        else "Thanks for registering. Next survey: {survey_link}",
        "SMS_DELAY_MINUTES": "0.1",
        "POLL_INTERVAL_SECONDS": "2",
        "SMS_MAX_PER_SECOND": "2",
        "SMS_CLAIM_TIMEOUT_SECONDS": "20",
        "TIMEZONE": "UTC",
        "TWILIO_ACCOUNT_SID": twilio_sid,
        "TWILIO_AUTH_TOKEN": twilio_token,
        "TWILIO_FROM_NUMBER": twilio_from,
        "TWILIO_API_BASE_URL": twilio_base_url,
        "HTTP_TIMEOUT_SECONDS": "10",
        "LOG_LEVEL": "INFO",
    }
    settings.update(overrides or {})
    return settings


def write_env(path: Path, settings: Mapping[str, str]) -> None:
    """A .env file the services read with ``--env-file``; private to the user (it holds tokens)."""
    lines = ["# Written by python -m sandbox: settings for the local simulators only."]
    for key, value in settings.items():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{quoted}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
