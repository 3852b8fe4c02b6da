"""Write the services' settings for the sandbox to a private .env file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def write_env(path: Path, settings: Mapping[str, str]) -> None:
    """A .env file the services read with ``--env-file``; private to the user (it holds tokens)."""
    lines = ["# Written by python -m sandbox: settings for the local simulators only."]
    for key, value in settings.items():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{quoted}"')
    # Written aside and renamed into place: whoever waits for the file never reads half of it.
    # Created private (it holds tokens) before anything is written to it.
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(partial, 0o600)  # an older file of that name kept its mode
    partial.replace(path)
