"""REDCap's own downloads of the reference projects, and a file writer, for the loader tests.

The reference files are real REDCap 14 downloads from REDCapR's test suite (see
``tests/data/README.md``): per project a ``project.xml`` (the ODM export), a ``dictionary.csv`` and,
for some, ``data.csv``, ``event.csv`` and ``arm.csv``.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.redcap.model import Project
from sandbox.redcap.odm import load_project_xml
from tests.reference import redcap_project


def reference(name: str) -> Path:
    return redcap_project(name)


def xml_project(name: str) -> Project:
    return load_project_xml(reference(name) / "project.xml")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
