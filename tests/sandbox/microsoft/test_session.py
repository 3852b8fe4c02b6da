"""The Microsoft simulator inside the shared Sandbox: started with the others, and its
settings in what ``.env.sandbox`` is written from."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.graph_client import GraphMailer
from common.settings import load_settings
from sandbox.envfile import write_env
from sandbox.redcap.model import Project
from sandbox.session import Sandbox


def test_the_sandbox_serves_microsoft_and_its_settings_reach_the_adapter(
    classic_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """box.settings() carries the GRAPH_* values; written to an env file and read back as the
    services read it, they send a mail the simulator logs; stop() stops all three."""
    monkeypatch.delenv("MSAL_FORCE_REGION", raising=False)
    with Sandbox(classic_project) as box:
        env = box.settings(LOCK_DIR=str(tmp_path))
        assert env["GRAPH_AUTHORITY_URL"] == box.microsoft.base_url
        assert env["TWILIO_API_BASE_URL"] == box.twilio.base_url  # the rest is unchanged
        path = tmp_path / ".env.sandbox"
        write_env(path, env)
        settings = load_settings(str(path), {})
        graph = GraphMailer.from_settings(settings, http_cache={})
        graph.send("participant@example.org", "S", "T", message_id="box-1")
        assert [m.headers["x-redcap-relay-id"] for m in box.microsoft.sent()] == ["box-1"]
        assert graph.find_sent("box-1", box.clock.now().replace(year=2000)) is not None
        assert box.microsoft.clock is box.clock
    # A rehearsal replaces the study's Graph settings with these: never its real tenant.
    assert box.connection()["GRAPH_TENANT_ID"] == box.microsoft.tenant_id
