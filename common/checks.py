"""One line of ``admin check`` and of the startup check: what was checked, whether it passed, and
for a failure the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    warning: bool = False  # passed, but worth a look (admin check prints it as [warn])
