"""One sender per project, and one record's REDCap rejection never stops the others."""

from __future__ import annotations

import pytest

from common.errors import RedcapRejected
from common.lock import ProcessLock
from common.writes import write_rows
from tests.services.conftest import Rig


def test_second_sender_says_so_and_exits(rig: Rig) -> None:
    """While another sender holds the project's lock, a new one exits 1 naming the lock."""
    ctx = rig.ctx()
    lock = ProcessLock(rig.tmp, f"redcap-relay-sender-{ctx.layout.project_id}").acquire()
    try:
        done = rig.run("services.sms_sender", "--once")
    finally:
        lock.release()
    assert done.returncode == 1
    assert "another sender is already running" in done.stderr
    assert rig.run("services.sms_sender", "--once").returncode == 0


def test_a_rejected_row_is_flagged_and_the_rest_land(rig: Rig) -> None:
    """REDCap refusing one row of a batch: the others are written; that one is needs_review."""
    rig.register("1")
    rig.register("2")
    ctx = rig.ctx(needs_twilio=False)
    rows = [
        ctx.layout.row("1", {"pipeline_status": "registered", "pipeline_sms_attempts": "two"}),
        ctx.layout.row("2", {"pipeline_status": "registered", "pipeline_sms_attempts": "2"}),
    ]
    assert write_rows(ctx.redcap, ctx.layout, rows, ctx.rules.written[0].fields) == {"1"}
    assert rig.status("2") == "registered"
    assert rig.status("1") == "needs_review"
    assert "pipeline_sms_attempts" in rig.values("1")["pipeline_error_message"]
    assert "two" not in rig.values("1")["pipeline_error_message"]


def test_redcap_rejection_text_never_quotes_the_value(rig: Rig) -> None:
    """An import REDCap refuses is reported by record, field and reason, without the value."""
    rig.register("1")
    ctx = rig.ctx(needs_twilio=False)
    row = ctx.layout.row(
        "1", {"pipeline_sms_to": "+16175550100", "pipeline_sms_attempts": "6175550100x"}
    )
    with pytest.raises(RedcapRejected) as refused:
        ctx.redcap.import_rows([row])
    message = str(refused.value)
    assert "record 1" in message and "pipeline_sms_attempts" in message
    assert "6175550100" not in message
