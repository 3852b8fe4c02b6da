"""Write the services' settings for the sandbox to a private .env file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def write_env(path: Path, settings: Mapping[str, str]) -> None:
    """A .env file the services read with ``--env-file``; private to the user (it holds tokens)."""
    lines = ["# Written by python -m sandbox: settings for the local simulators only."]
    for key, value in settings.items():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key}="{quoted}"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
