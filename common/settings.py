"""Settings: one frozen :class:`Settings`, built once at startup from the environment.

Nothing else in redcap-relay reads ``os.environ``. Every problem is a :class:`ConfigError` whose
message names the variable and the fix. ``.env.example`` documents each setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dotenv import dotenv_values

from common.contacts import parse_address_list
from common.errors import ConfigError
from common.setting_values import (
    EnvReader,
    QuietHours,
    check_names,
    check_region,
    default_lock_dir,
    parse_allowed,
    parse_quiet_hours,
    parse_zone,
)

DEFAULT_PHONE_FIELDS = (
    "phone_number,phone,mobile,mobile_number,cell,cell_number,contact_phone,participant_phone"
)
DEFAULT_EMAIL_FIELDS = "email,email_address,e_mail,participant_email,contact_email"
DEFAULT_TEMPLATE = "Thank you for registering. Please complete your next survey: {survey_link}"
# A sent SMS costs one surveyLink plus its share of a claim import, the claim's two reads
# (messaging.claims) and a result import per chunk of ten (docs/PERFORMANCE.md); the sender may
# use this share of REDCap's per-minute limit, leaving the rest to the other services and to
# people using the project.
REDCAP_REQUESTS_PER_MESSAGE = 1.5
# An e-mail costs a link and its launch (the import of its id, with the outcomes so far), plus
# its share of the chunk's claim, two reads and result import.
REDCAP_REQUESTS_PER_EMAIL = 2.5
REDCAP_SHARE = 0.8
# Upper bounds: far beyond any study's need, and well inside what timedelta can hold.
MINUTES_A_YEAR = 366 * 24 * 60
HOURS_A_YEAR = 366 * 24
SECONDS_A_DAY = 24 * 3600
MINUTES_A_DAY = 24 * 60
_TOKEN = re.compile(r"[0-9A-Fa-f]{32}")


def read_env_file(env_file: str | None) -> dict[str, str]:
    """The settings file's values. ``None`` means the default ``.env``, which may be absent; a
    file named explicitly must exist."""
    path = Path(env_file or ".env")
    if path.exists():
        check_private(path)
        return {k: v for k, v in dotenv_values(path).items() if v is not None}
    if env_file is not None:
        raise ConfigError(f"--env-file {env_file}: no such file; create it from .env.example")
    return {}


def check_private(path: Path, holds: str = "tokens", name: str = "") -> None:
    """The settings file holds the REDCap token and Twilio's secret, GRAPH_CERT_PATH a private
    key: refuse one while others can read it (or write it), as ssh does a private key.
    ``name``: the setting that names the file, said first."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"{f'{name}={path}' if name else path}: group or others can access it (mode "
            f"{mode:03o}) and it holds {holds}; make it private: chmod 600 {path}"
        )


def load_environment(env_file: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The env file's values overlaid by the real environment (real variables win)."""
    return {**read_env_file(env_file), **environ}


def load_settings(
    env_file: str | None, environ: Mapping[str, str], *, redcap: bool = True
) -> Settings:
    """Settings from the file and the environment; a name in the file that is no setting (a
    typo such as ``SMS_DELAY_MINUTE``) is an error, since it would silently do nothing.
    ``redcap=False``: for a command that never talks to REDCap, its URL, token and project id
    may be missing."""
    from_file = read_env_file(env_file)
    return Settings.from_env(
        {**from_file, **environ}, file_names=from_file, source=env_file or ".env", redcap=redcap
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of every command, validated."""

    redcap_api_url: str
    redcap_api_token: str
    redcap_project_id: int
    redcap_event: str
    registration_complete_field: str
    registration_complete_value: str
    phone_fields: tuple[str, ...]
    phone_region: str
    survey_instrument: str
    sms_template: str  # the built-in rule's template, checked as it is built
    sms_delay_minutes: float
    poll_interval_seconds: float
    sweep_minutes: float  # 0: every cycle a full export (no change probes)
    sms_max_per_second: float
    redcap_max_per_minute: int
    sms_max_attempts: int
    sms_max_interrupted: int
    max_new_per_cycle: int
    quiet_hours: QuietHours | None
    timezone: ZoneInfo
    redcap_timezone: ZoneInfo  # REDCap's server zone: the one its log (dateRange) speaks
    sms_allowed_numbers: frozenset[str] | None
    email_fields: tuple[str, ...]
    email_allowed_addresses: tuple[str, ...] | None
    email_max_per_minute: float
    alert_email_to: tuple[str, ...]
    alert_min_interval_minutes: float
    report_email_to: tuple[str, ...]
    reply_lookback_hours: float
    conversation_log: bool
    dry_run: bool
    delivery_check_max_hours: float
    sms_claim_timeout_seconds: float
    sms_review_after_hours: float
    send_give_up_hours: float
    claim_settle_seconds: float
    email_sent_items_grace_minutes: float
    http_timeout_seconds: float
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_from_number: str
    twilio_messaging_service_sid: str
    twilio_api_base_url: str
    twilio_lookup: bool  # ask Twilio Lookup each new number's line type (cached on the record)
    graph_tenant_id: str
    graph_client_id: str
    graph_client_secret: str
    graph_cert_path: Path | None
    graph_cert_thumbprint: str
    graph_sender: str
    graph_authority_url: str
    graph_api_base_url: str
    graph_can_read_sent: bool
    log_level: str
    log_format: str
    lock_dir: Path
    rules_file: str  # RULES_FILE; empty: the built-in rule from the settings above
    consent_field: str  # CONSENT_FIELD: admin check warns of a rule whose `when` ignores it
    sandbox_clock_file: Path | None  # a rehearsal's shared clock; never set in production

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        file_names: Iterable[str] = (),
        source: str = ".env",
        *,
        redcap: bool = True,
    ) -> Settings:
        """Parse and check every setting; raise ConfigError naming the first bad one.

        ``file_names`` are the names written in the settings file ``source``: each must be a
        setting (the real environment holds much else and is not checked). ``redcap=False``
        lets REDCAP_API_URL, REDCAP_API_TOKEN and REDCAP_PROJECT_ID be missing (``admin
        instrument``, which makes the fields before anyone has a token); given, they are checked.
        """
        r = EnvReader(env)
        url = r.text("REDCAP_API_URL", required=redcap, hint="e.g. https://redcap.example.org/api/")
        if url and not re.match(r"^https?://", url):
            raise ConfigError(f"REDCAP_API_URL={url!r} is not a URL; set it to your REDCap API URL")
        _check_encrypted("REDCAP_API_URL", url, "the REDCap API token")
        if url.endswith("/api"):
            url += "/"  # REDCap redirects /api to /api/ and the redirect turns POST into GET
        if url and not url.endswith("/api/"):
            raise ConfigError("REDCAP_API_URL must end with /api/ (REDCap's API endpoint)")
        token = r.text("REDCAP_API_TOKEN", required=redcap, hint="from REDCap's API page")
        if token and not _TOKEN.fullmatch(token):
            raise ConfigError(
                "REDCAP_API_TOKEN is not a REDCap project token (32 hex characters); "
                "copy it again from the project's API page"
            )
        region = r.text("PHONE_REGION", default="US").upper()
        check_region(region)
        tz = parse_zone(r.text("TIMEZONE", default=""), env)
        template = r.text("SMS_TEMPLATE", default=DEFAULT_TEMPLATE)
        allowed = r.text("SMS_ALLOWED_NUMBERS", default="")
        mail_allowed = r.text("EMAIL_ALLOWED_ADDRESSES", default="")
        settings = cls(
            redcap_api_url=url,
            redcap_api_token=token,
            redcap_project_id=r.integer("REDCAP_PROJECT_ID", required=redcap, minimum=1),
            redcap_event=r.field("REDCAP_EVENT", "", what="event"),
            registration_complete_field=r.field(
                "REGISTRATION_COMPLETE_FIELD", "registration_complete"
            ),
            registration_complete_value=r.code("REGISTRATION_COMPLETE_VALUE", "2"),
            phone_fields=r.field_list("PHONE_FIELDS", DEFAULT_PHONE_FIELDS),
            phone_region=region,
            survey_instrument=r.field("SURVEY_INSTRUMENT", "", what="instrument"),
            sms_template=template,
            sms_delay_minutes=r.number("SMS_DELAY_MINUTES", 1, minimum=0, maximum=MINUTES_A_YEAR),
            poll_interval_seconds=r.number(
                "POLL_INTERVAL_SECONDS", 10, minimum=0.1, maximum=SECONDS_A_DAY
            ),
            sweep_minutes=r.number("SWEEP_MINUTES", 15, minimum=0, maximum=MINUTES_A_DAY),
            sms_max_per_second=r.number("SMS_MAX_PER_SECOND", 1, minimum=0.01, maximum=100),
            redcap_max_per_minute=r.integer(
                "REDCAP_MAX_PER_MINUTE", default=600, minimum=60, maximum=1_000_000
            ),
            sms_max_attempts=r.integer("SMS_MAX_ATTEMPTS", default=3, minimum=1, maximum=100),
            sms_max_interrupted=r.integer("SMS_MAX_INTERRUPTED", default=5, minimum=1, maximum=100),
            max_new_per_cycle=r.integer(
                "MAX_NEW_PER_CYCLE", default=25, minimum=1, maximum=100_000
            ),
            quiet_hours=parse_quiet_hours(r.text("QUIET_HOURS", default="")),
            timezone=tz,
            redcap_timezone=(
                parse_zone(zone, env, "REDCAP_TIMEZONE")
                if (zone := r.text("REDCAP_TIMEZONE", default=""))
                else tz
            ),
            sms_allowed_numbers=parse_allowed(allowed, region) if allowed else None,
            email_fields=r.field_list("EMAIL_FIELDS", DEFAULT_EMAIL_FIELDS),
            email_allowed_addresses=(
                parse_address_list(mail_allowed, "EMAIL_ALLOWED_ADDRESSES")
                if mail_allowed
                else None
            ),
            email_max_per_minute=r.number("EMAIL_MAX_PER_MINUTE", 30, minimum=0.1, maximum=10_000),
            alert_email_to=parse_address_list(
                r.text("ALERT_EMAIL_TO", default=""), "ALERT_EMAIL_TO"
            ),
            alert_min_interval_minutes=r.number(
                "ALERT_MIN_INTERVAL_MINUTES", 60, minimum=1, maximum=MINUTES_A_YEAR
            ),
            report_email_to=parse_address_list(
                r.text("REPORT_EMAIL_TO", default=""), "REPORT_EMAIL_TO"
            ),
            reply_lookback_hours=r.number(
                "REPLY_LOOKBACK_HOURS", 72, minimum=1, maximum=HOURS_A_YEAR
            ),
            conversation_log=r.boolean("CONVERSATION_LOG"),
            dry_run=r.boolean("DRY_RUN"),
            delivery_check_max_hours=r.number(
                "DELIVERY_CHECK_MAX_HOURS", 72, minimum=0.01, maximum=HOURS_A_YEAR
            ),
            sms_claim_timeout_seconds=r.number(
                "SMS_CLAIM_TIMEOUT_SECONDS", 120, minimum=0, maximum=SECONDS_A_DAY
            ),
            sms_review_after_hours=r.number(
                "SMS_REVIEW_AFTER_HOURS", 24, minimum=0, maximum=HOURS_A_YEAR
            ),
            claim_settle_seconds=r.number("CLAIM_SETTLE_SECONDS", 3, minimum=0.5, maximum=60),
            send_give_up_hours=r.number(
                "SEND_GIVE_UP_HOURS", 24, minimum=0.01, maximum=HOURS_A_YEAR
            ),
            email_sent_items_grace_minutes=r.number(
                "EMAIL_SENT_ITEMS_GRACE_MINUTES", 15, minimum=0, maximum=MINUTES_A_YEAR
            ),
            http_timeout_seconds=r.number("HTTP_TIMEOUT_SECONDS", 30, minimum=1, maximum=600),
            twilio_account_sid=r.text("TWILIO_ACCOUNT_SID", default=""),
            twilio_auth_token=r.text("TWILIO_AUTH_TOKEN", default=""),
            twilio_from_number=r.text("TWILIO_FROM_NUMBER", default=""),
            twilio_messaging_service_sid=r.text("TWILIO_MESSAGING_SERVICE_SID", default=""),
            twilio_api_base_url=r.text(
                "TWILIO_API_BASE_URL", default="https://api.twilio.com"
            ).rstrip("/"),
            twilio_lookup=r.boolean("TWILIO_LOOKUP"),
            graph_tenant_id=r.text("GRAPH_TENANT_ID", default=""),
            graph_client_id=r.text("GRAPH_CLIENT_ID", default=""),
            graph_client_secret=r.text("GRAPH_CLIENT_SECRET", default=""),
            graph_cert_path=Path(cert) if (cert := r.text("GRAPH_CERT_PATH", default="")) else None,
            graph_cert_thumbprint=r.text("GRAPH_CERT_THUMBPRINT", default=""),
            graph_sender=r.text("GRAPH_SENDER", default=""),
            graph_authority_url=r.text(
                "GRAPH_AUTHORITY_URL", default="https://login.microsoftonline.com"
            ).rstrip("/"),
            graph_api_base_url=r.text(
                "GRAPH_API_BASE_URL", default="https://graph.microsoft.com"
            ).rstrip("/"),
            graph_can_read_sent=r.boolean("GRAPH_CAN_READ_SENT"),
            log_level=r.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=r.choice("LOG_FORMAT", "text", ("text", "json")),
            lock_dir=Path(r.text("LOCK_DIR", default="") or default_lock_dir(env)),
            rules_file=r.text("RULES_FILE", default=""),
            consent_field=r.field("CONSENT_FIELD", ""),
            sandbox_clock_file=Path(c) if (c := r.text("SANDBOX_CLOCK_FILE", default="")) else None,
        )
        check_names(file_names, r.names, source)
        settings.check_rehearsal()
        settings.check_redcap_budget()
        return settings

    def check_rehearsal(self) -> None:
        """SANDBOX_CLOCK_FILE moves the rules' time, so it is refused unless every service
        these settings name (defaults included) is on this machine, the sandbox's simulators:
        in production it can only be an error, never a clock."""
        if self.sandbox_clock_file is None:
            return
        for name, url in (
            ("REDCAP_API_URL", self.redcap_api_url),
            ("TWILIO_API_BASE_URL", self.twilio_api_base_url),
            ("GRAPH_AUTHORITY_URL", self.graph_authority_url),
            ("GRAPH_API_BASE_URL", self.graph_api_base_url),
        ):
            if url and urlsplit(url).hostname not in LOCAL_HOSTS:
                raise ConfigError(
                    f"SANDBOX_CLOCK_FILE is set but {name} is not on this machine; only "
                    "python -m sandbox sets it, for its simulators: remove it from these settings"
                )
        if not self.sandbox_clock_file.is_file():
            raise ConfigError(
                f"SANDBOX_CLOCK_FILE={self.sandbox_clock_file}: no such file; it is written by "
                "python -m sandbox while it runs: start it, then use the .env.sandbox it writes"
            )

    def check_redcap_budget(self) -> None:
        """The sender's REDCap traffic must stay well inside REDCap's API rate limit, whose
        penalty is a ban of this machine's address until an administrator lifts it."""
        per_minute = self.sms_max_per_second * 60 * REDCAP_REQUESTS_PER_MESSAGE
        budget = self.redcap_max_per_minute * REDCAP_SHARE
        if per_minute > budget:
            fastest = budget / (60 * REDCAP_REQUESTS_PER_MESSAGE)
            raise ConfigError(
                f"SMS_MAX_PER_SECOND={self.sms_max_per_second:g} would have the sender alone ask "
                f"REDCap about {per_minute:.0f} times a minute, over {REDCAP_SHARE:.0%} of "
                f"REDCAP_MAX_PER_MINUTE={self.redcap_max_per_minute} (REDCap bans the machine "
                f"past its limit); use at most {fastest:.2g}, or raise REDCAP_MAX_PER_MINUTE if "
                "your REDCap administrator set a higher limit"
            )
        per_mail = REDCAP_REQUESTS_PER_EMAIL
        if self.email_max_per_minute * per_mail > budget:
            fastest = budget / per_mail
            raise ConfigError(
                f"EMAIL_MAX_PER_MINUTE={self.email_max_per_minute:g} would have the sender ask "
                f"REDCap about {self.email_max_per_minute * per_mail:.0f} times a minute, over "
                f"{REDCAP_SHARE:.0%} of REDCAP_MAX_PER_MINUTE={self.redcap_max_per_minute}; use "
                f"at most {fastest:.0f} (Exchange Online itself allows a mailbox about 30 a "
                "minute)"
            )

    def require_twilio(self) -> None:
        """Commands that talk to Twilio call this first."""
        _check_twilio(self)

    def require_graph(self) -> None:
        """Commands that send e-mail through Microsoft Graph call this first."""
        _check_graph(self)

    def require_survey(self) -> None:
        """The sender and admin need the survey instrument (the built-in rule's)."""
        if self.rules_file:
            return  # each file rule names its own survey, or has none
        if not self.survey_instrument:
            raise ConfigError(
                "SURVEY_INSTRUMENT is not set; set it to the unique name of the survey "
                "instrument to link (e.g. interest_form)"
            )

    @property
    def sms_delay_seconds(self) -> float:
        return self.sms_delay_minutes * 60

    @property
    def sender_label(self) -> str:
        return self.twilio_from_number or self.twilio_messaging_service_sid


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _check_encrypted(name: str, url: str, secret: str) -> None:
    """Every request to ``url`` carries ``secret``: https, or plain http only to this machine
    (the sandbox's simulators), where nothing crosses a network."""
    try:
        host = urlsplit(url).hostname
    except ValueError:  # an unclosed [ of an IPv6 address
        raise ConfigError(f"{name}={url!r} is not a URL") from None
    if url.startswith("http://") and host not in LOCAL_HOSTS:
        raise ConfigError(
            f"{name}={url}: http:// would send {secret} unencrypted over the network; use "
            "https:// (plain http is allowed only to this machine: localhost, 127.0.0.1, ::1)"
        )


# -- the credentials, checked only by the commands that use them -------------------------------
# Twilio's for a command that texts, Microsoft Graph's for one that mails; each problem names the
# setting and where to find the right value.
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TENANT_DOMAIN = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")
_MAILBOX = re.compile(r"[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def _check_twilio(settings: Settings) -> None:
    """The Twilio settings a command that texts needs; ConfigError naming the first bad one."""
    if not _ACCOUNT_SID.fullmatch(settings.twilio_account_sid):
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
    if settings.twilio_messaging_service_sid and not _SERVICE_SID.fullmatch(
        settings.twilio_messaging_service_sid
    ):
        raise ConfigError("TWILIO_MESSAGING_SERVICE_SID must look like MG + 32 hex characters")
    if settings.twilio_from_number and not re.fullmatch(
        r"\+[1-9]\d{6,14}", settings.twilio_from_number
    ):
        raise ConfigError("TWILIO_FROM_NUMBER must be in E.164 form, e.g. +15005550006")
    if not re.match(r"^https?://", settings.twilio_api_base_url):
        raise ConfigError("TWILIO_API_BASE_URL must be a URL (default https://api.twilio.com)")
    _check_encrypted("TWILIO_API_BASE_URL", settings.twilio_api_base_url, "the Twilio auth token")


def _check_graph(settings: Settings) -> None:
    """The Microsoft Graph settings a command that mails needs; ConfigError naming the first
    bad one."""
    where = "from the app registration's Overview page in the Entra admin center"
    if not (
        _GUID.fullmatch(settings.graph_tenant_id)
        or _TENANT_DOMAIN.fullmatch(settings.graph_tenant_id)
    ):
        raise ConfigError(
            f"GRAPH_TENANT_ID must be the Directory (tenant) ID, a GUID {where}"
            if not settings.graph_tenant_id
            else f"GRAPH_TENANT_ID={settings.graph_tenant_id!r} is not a tenant ID (a GUID {where})"
        )
    if not _GUID.fullmatch(settings.graph_client_id):
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
        check_private(settings.graph_cert_path, "the certificate's private key", "GRAPH_CERT_PATH")
        if not _THUMBPRINT.fullmatch(settings.graph_cert_thumbprint):
            raise ConfigError(
                "GRAPH_CERT_THUMBPRINT must be the certificate's thumbprint as the app "
                "registration shows it (40 hex characters)"
            )
    if not _MAILBOX.fullmatch(settings.graph_sender):
        raise ConfigError(
            "GRAPH_SENDER must be the address of the mailbox mail is sent from, e.g. "
            "study-team@example.org"
        )
    for name, value, secret in (
        ("GRAPH_AUTHORITY_URL", settings.graph_authority_url, "the app's credentials"),
        ("GRAPH_API_BASE_URL", settings.graph_api_base_url, "the access token"),
    ):
        if not re.match(r"^https?://[^/\s]+", value):
            raise ConfigError(f"{name}={value!r} must be a URL (leave it empty for Microsoft's)")
        _check_encrypted(name, value, secret)
