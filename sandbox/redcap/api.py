"""The REDCap simulator's front door: one HTTP request in, REDCap's answer out.

:class:`RedcapApp` is the :class:`sandbox.httpserver.App` behind ``POST /api/``. It runs REDCap
15.7.6's checks in REDCap's order (REDCAP_API.md §1.3, §9): the web server's path handling,
the IP ban, the request method (501), the token (403), a JSON ``data`` payload that does not
decode (400), ``content`` (400), ``action``; then it hands an :class:`ApiCall` to the method and
renders any :class:`ApiError` in the ``returnFormat`` shape (§1.4).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable

from sandbox.clock import SimClock
from sandbox.httpserver import Request, Response
from sandbox.redcap import (
    methods,
    methods_events,
    methods_record,
    methods_survey,
    record_delete,
    render,
)
from sandbox.redcap.errors import ApiError
from sandbox.redcap.model import Project
from sandbox.redcap.params import ApiCall, Param, php_form
from sandbox.redcap.ratelimit import RateLimiter, ban_message

Handler = Callable[[ApiCall], Response]

# Every content 15.7.6 accepts (API/index.php); the ones not in HANDLERS answer 501 here.
VALID_CONTENTS = frozenset(
    {
        "record", "metadata", "file", "fileRepository", "repeatingFormsEvents", "instrument",
        "event", "arm", "user", "project_settings", "report", "version", "pdf", "surveyLink",
        "surveyAccessCode", "surveyQueueLink", "surveyReturnCode", "participantList",
        "exportFieldNames", "appRightsCheck", "formEventMapping", "fieldValidation",
        "attachment", "project", "generateNextRecordName", "project_xml", "dag",
        "userDagMapping", "log", "userRole", "userRoleMapping", "tableau", "mycap", "authkey",
        "externalModule", "filesize", "fileinfo",
    }
)  # fmt: skip
# Contents whose action REDCap reads from the ``action`` parameter instead of inferring it.
_EXPLICIT_ACTION = frozenset({"fileRepository", "file", "event", "arm", "dag", "user", "userRole"})
_DEFAULT_EXPORT = frozenset({"event", "arm", "dag", "user", "userRole"})
_VALID_ACTIONS = frozenset(
    {"export", "delete", "import", "import_app", "switch", "list", "createFolder"}
)
_RECORD_ACTIONS = frozenset({"delete", "rename", "randomize"})
_TOKEN = re.compile(r"^[A-Za-z0-9]+$")

HANDLERS: dict[tuple[str, str], Handler] = {
    ("version", "export"): methods.export_version,
    ("project", "export"): methods.export_project,
    ("metadata", "export"): methods.export_metadata,
    ("instrument", "export"): methods.export_instruments,
    ("exportFieldNames", "export"): methods.export_field_names,
    ("event", "export"): methods_events.export_events,
    ("arm", "export"): methods_events.export_arms,
    ("formEventMapping", "export"): methods_events.export_form_event_mapping,
    ("repeatingFormsEvents", "export"): methods_events.export_repeating,
    ("generateNextRecordName", "export"): methods.generate_next_record_name,
    ("record", "export"): methods_record.export_records,
    ("record", "import"): methods_record.import_records,
    ("record", "delete"): record_delete.delete_records,
    ("report", "export"): methods_record.export_report,
    ("surveyLink", "export"): methods_survey.export_survey_link,
    ("participantList", "export"): methods_survey.export_participant_list,
}

# Apache's answers for paths REDCap never sees.
_NOT_FOUND_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    "<title>404 Not Found</title>\n</head><body>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on this server.</p>\n</body></html>\n"
)
_APACHE_HTML = "text/html; charset=iso-8859-1"


def _moved_html(location: str) -> str:
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        "<title>301 Moved Permanently</title>\n</head><body>\n<h1>Moved Permanently</h1>\n"
        f'<p>The document has moved <a href="{location}">here</a>.</p>\n</body></html>\n'
    )


def _text(form: dict[str, Param], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def infer_action(form: dict[str, Param], content: str) -> str:
    """The action REDCap settles on (REDCAP_API.md §1.2): records infer it from ``data``."""
    action = _text(form, "action")
    if content == "record":
        if action in _RECORD_ACTIONS:
            return action
        return "import" if "data" in form else "export"
    if content in _EXPLICIT_ACTION:
        return "export" if action == "" and content in _DEFAULT_EXPORT else action
    if content == "version":
        return "export"
    return "import" if "data" in form else "export"


def formats(form: dict[str, Param]) -> tuple[str, str]:
    """``format`` (anything unknown means xml) and ``returnFormat`` (defaults to format)."""
    fmt = _text(form, "format")
    if fmt not in ("json", "csv", "odm"):
        fmt = "xml"
    requested = (_text(form, "returnFormat") or fmt).lower()
    return fmt, requested if requested in ("json", "csv") else "xml"


def _check_json_data(form: dict[str, Param]) -> None:
    """REDCap decodes a JSON ``data`` payload before it even looks at ``content``."""
    if "data" not in form:
        return
    data = form["data"]
    if not isinstance(data, str):
        return
    try:
        decoded = json.loads(data)
    except ValueError:
        reason = "Syntax error"
    else:
        # PHP's ``$content == ''`` is also true for null, false and "".
        if decoded is not None and decoded is not False and decoded != "":
            return
        reason = "No error"
    raise ApiError(
        400,
        "The data being imported is not formatted correctly. PHP error from JSON decoder: "
        f"{reason}. The JSON must be in an array, as in [{{ ... }}].",
    )


class RedcapApp:
    """Serves one or more projects, each behind its own API token."""

    def __init__(self, clock: SimClock, limiter: RateLimiter, version: str = "15.7.6") -> None:
        self.clock = clock
        self.limiter = limiter
        self.version = version
        self.base_url = ""  # set by the server once its port is known
        self._projects: dict[str, Project] = {}
        self._lock = threading.Lock()

    def add_project(self, project: Project, token: str) -> None:
        with self._lock:
            self._projects[token] = project

    def project_for(self, token: str) -> Project | None:
        with self._lock:
            return self._projects.get(token)

    # -- App protocol ------------------------------------------------------------------------
    def describe(self, request: Request) -> dict[str, str]:
        """``{"content": ..., "action": ...}`` for stats and fault matching; ``{}`` off-API."""
        if request.path != "/api/":
            return {}
        form = _read_form(request)
        content = _text(form, "content")
        return {"content": content, "action": infer_action(form, content) if content else ""}

    def handle(self, request: Request) -> Response:
        if request.path == "/api":
            # Apache adds the slash with a 301; clients then repeat a POST as a GET (§1.1).
            location = f"{self.base_url}/api/"
            return Response(301, _moved_html(location), _APACHE_HTML, {"Location": location})
        if request.path != "/api/":
            return Response(404, _NOT_FOUND_HTML, _APACHE_HTML)
        if not self.limiter.admit(request.client_ip):
            return Response(429, ban_message(request.client_ip), render.PHP_DEFAULT_TYPE)
        form = _read_form(request) if request.method == "POST" else {}
        fmt, return_format = formats(form)
        try:
            call = self._authorise(request, form, fmt, return_format)
            handler = HANDLERS.get((call.content, call.action))
            if handler is None:
                raise ApiError(
                    501,
                    f"The REDCap simulator does not serve content={call.content} "
                    f"action={call.action}.",
                )
            return handler(call)
        except ApiError as exc:
            return render.error(exc.status, exc.message, return_format)

    def _authorise(
        self, request: Request, form: dict[str, Param], fmt: str, return_format: str
    ) -> ApiCall:
        """REDCap's checks before any method runs, in its order (REDCAP_API.md §1.3)."""
        if request.method != "POST":
            raise ApiError(501, "The requested method is not implemented.")
        token = _text(form, "token")
        project = self.project_for(token) if _TOKEN.match(token) else None
        if project is None:
            raise ApiError(403, "You do not have permissions to use the API")
        if fmt == "json":
            _check_json_data(form)
        content = _text(form, "content")
        if content not in VALID_CONTENTS:
            raise ApiError(400, 'The value of the parameter "content" is not valid')
        action = infer_action(form, content)
        if content in _EXPLICIT_ACTION and action not in _VALID_ACTIONS:
            raise ApiError(400, 'The value of the parameter "action" is not valid')
        return ApiCall(
            params=form,
            project=project,
            content=content,
            action=action,
            format=fmt,
            return_format=return_format,
            now=self.clock.local_naive(),
            base_url=self.base_url,
            version=self.version,
        )


def _read_form(request: Request) -> dict[str, Param]:
    try:
        return php_form(request.form())
    except ValueError:  # undecodable body: PHP would see no usable fields either
        return {}
