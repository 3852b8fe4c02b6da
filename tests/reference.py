"""The reference data the tests check the simulators against, shipped in ``tests/data/``.

``tests/data/README.md`` says where each file came from and what it is the ground truth for.
Every name is listed here, so a missing file fails the test that needs it (never a silent skip
or an empty parameter list).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
REDCAP_PROJECTS_DIR = DATA / "redcap-projects"
TWILIO_OPENAPI = DATA / "twilio-oai" / "twilio_api_v2010.json"
TWILIO_MESSAGING_OPENAPI = DATA / "twilio-oai" / "twilio_messaging_v1.json"
TWILIO_LOOKUPS_OPENAPI = DATA / "twilio-oai" / "twilio_lookups_v2.json"

# REDCapR's test projects, each a real REDCap export (project.xml + dictionary.csv, ...).
REDCAP_PROJECTS = (
    "arm-single-longitudinal",
    "checkboxes-1",
    "clinical-trial-1",
    "longitudinal",
    "repeating-instruments",
    "simple",
    "survey",
    "validation-types-1",
)


def redcap_project(name: str) -> Path:
    """The folder of one reference project; fails loudly if it is not in the checkout."""
    folder = REDCAP_PROJECTS_DIR / name
    if not (folder / "project.xml").is_file():
        raise FileNotFoundError(f"reference project {name!r} is missing from {REDCAP_PROJECTS_DIR}")
    return folder


def redcap_project_xmls() -> list[Path]:
    return [redcap_project(name) / "project.xml" for name in REDCAP_PROJECTS]
