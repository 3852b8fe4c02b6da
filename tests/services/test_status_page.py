"""admin status --html: one self-contained page (inline CSS and SVG, no link, no script) with
the health, last activity and each rule's funnel, failures, waiting and replies; record ids
only; written atomically, 0644; and it renders in headless Chromium."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from sandbox.clock import SimClock
from sandbox.status_page_shot import CHROMIUM, screenshot
from services import delivery_checker, registration_detector, reply_poller
from services.admin.status import EXIT_UNHEALTHY, command_status, funnel
from services.admin.status_page import render, write
from services.sms_sender import Sender
from tests.services.conftest import START, Rig, start_rules_rig
from tests.services.test_admin_replies import RULES, phone

INSTALL_SECONDS = 600
PHONES = {"1": phone("1"), "2": phone("2"), "3": "+15005553003", "4": "+15005550001"}


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt-get when missing (one worker at a time); skipped,
    saying why, only where it cannot be installed."""
    if found := shutil.which(CHROMIUM):
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is missing and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(Path(tempfile.gettempdir()) / "redcap-relay-chromium.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers: one apt-get at a time
        for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"]):
            if shutil.which(CHROMIUM):
                break
            try:
                subprocess.run(command, env=env, capture_output=True, timeout=INSTALL_SECONDS)
            except subprocess.TimeoutExpired:
                pytest.skip(f"installing chromium took over {INSTALL_SECONDS} s")
        if not shutil.which(CHROMIUM):  # after an update, once more
            subprocess.run(
                ["apt-get", "install", "-y", "chromium"],
                env=env,
                capture_output=True,
                timeout=INSTALL_SECONDS,
            )
    found = shutil.which(CHROMIUM)
    if not found:
        pytest.skip("apt-get install chromium failed (no network or no package)")
    return found


@pytest.fixture
def busy(tmp_path: Path) -> Iterator[Rig]:
    """Four participants of rules visit and news: 1 replies YES, 2 STOP, 3's handset is off
    (undelivered 30003), 4's number is invalid (failed 21211); one more not yet sent."""
    for rig in start_rules_rig(tmp_path, RULES, sim_clock=SimClock(UTC, START)):
        for record_id, number in PHONES.items():
            rig.register(record_id, number)
        registration_detector.run_once(rig.ctx(needs_twilio=False))
        Sender(dry_run=False).run_once(rig.ctx())
        rig.sim_clock.advance(600)
        rig.clock.advance(600)
        delivery_checker.run_once(rig.ctx())
        rig.twilio.inject_inbound(PHONES["1"], rig.twilio.from_number, "yes")
        rig.twilio.inject_inbound(PHONES["2"], rig.twilio.from_number, "STOP")
        reply_poller.run_once(rig.ctx())
        Sender(dry_run=False).run_once(rig.ctx())
        rig.register("5", phone("5"))
        yield rig


def page(rig: Rig) -> str:
    ctx = rig.ctx()
    return render(ctx, funnel(ctx, sms=ctx.sms))


def test_the_page_holds_the_funnel_failures_replies_and_activity(busy: Rig) -> None:
    """Per rule: a funnel chart with its counts, failures by code with meaning and what to do,
    replies by meaning; opt-outs; each service's last activity; health at the top."""
    html = page(busy)
    assert html.index("Health: OK") < html.index("Last activity") < html.index("Rule visit")
    visit = html[html.index("Rule visit") : html.index("Rule news")]
    assert "<svg" in visit and ">4</text>" in visit  # due 4 (5 is not detected yet)
    assert "30003" in visit and "handset unreachable" in visit and "requeue later" in visit
    assert "21211" in visit and "correct the phone number" in visit
    assert "<td>confirmed</td><td class=n>1</td>" in visit
    assert "Opted out</strong>" in html and "1 participant(s)" in html
    for service in ("detector", "sender", "checker", "reply poller"):
        assert f"<td>{service}</td><td>2026-03-02T" in html


def test_the_page_has_no_number_address_link_or_text_and_needs_nothing_outside(
    busy: Rig,
) -> None:
    """Nothing of the participants' but record ids: no phone number (in any form), address,
    survey link or reply text; no src/href, no script, no http(s) at all."""
    html = page(busy)
    for number in [*PHONES.values(), phone("5")]:
        assert number not in html and number[2:] not in html and number[-7:] not in html
    for record_id in PHONES:
        values = busy.values(record_id)
        assert values["email"] not in html
        assert values.get("visit_sms_to", "") == "" or values["visit_sms_to"] not in html
    assert busy.redcap_link("1") not in html
    assert "STOP" not in html.replace("STOP, or", "") and ">yes<" not in html
    assert not re.search(r"\b(src|href)\s*=", html, re.IGNORECASE)
    assert "http" not in html and "<script" not in html and "@import" not in html


def test_the_page_escapes_what_it_shows(busy: Rig) -> None:
    """A value with markup in it is shown as text, never as markup."""
    ctx = busy.ctx()
    data = funnel(ctx, sms=ctx.sms)
    data["rules"]["visit"]["waiting"] = [
        {"record": "<b>x</b>", "status": "registered", "minutes": 3.0}
    ]
    data["rules"]["visit"]["waiting_total"] = 1
    html = render(ctx, data)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_the_page_is_written_atomically_and_private(busy: Rig, tmp_path: Path) -> None:
    """--html FILE: the page replaces FILE whole (nothing left beside it), readable only by its
    owner (0600: record ids can be medical record numbers) whatever FILE's mode was, 0644 with
    --public; the exit code is the health's; the findings head the page."""
    target = tmp_path / "site" / "status.html"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    busy.clock.advance(3 * 3600)  # 5 was never detected; 3's news is still sms_sent
    busy.sim_clock.advance(3 * 3600)
    assert command_status(busy.ctx(), False, html=str(target)) == EXIT_UNHEALTHY
    assert os.listdir(target.parent) == ["status.html"]
    assert target.stat().st_mode & 0o777 == 0o600
    html = target.read_text(encoding="utf-8")
    assert html.index("NEEDS ATTENTION") < html.index("Last activity")
    assert "no_delivery_report" in html
    done = busy.run("services.admin", "status", "--html", str(target), "--public")
    assert done.returncode in (0, 1) and "Rule visit" in target.read_text(encoding="utf-8")
    assert target.stat().st_mode & 0o777 == 0o644
    write(target, "new")
    assert target.read_text() == "new" and os.listdir(target.parent) == ["status.html"]
    assert target.stat().st_mode & 0o777 == 0o600


def png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed image data of a PNG (its IDAT chunks)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


@pytest.mark.timeout(3 * INSTALL_SECONDS + 120)  # the first test on a machine may install it
def test_the_page_renders_in_headless_chromium(busy: Rig, chromium: str, tmp_path: Path) -> None:
    """Chromium renders the page to a 1200x1600 screenshot with text and bars on it: a large
    PNG of many shades, not a blank or single-colour one."""
    html, png = tmp_path / "status.html", tmp_path / "status.png"
    write(html, page(busy))
    screenshot(html, png, chromium=chromium, timeout=90)
    data = png.read_bytes()
    width, height, pixels = png_pixels(data)
    assert (width, height) == (1200, 1600) and len(data) > 20_000
    # Scanlines of one colour decompress to a handful of byte values; text and bars to many.
    assert len(set(pixels)) > 64
    assert len(pixels) >= width * height * 3
