"""Replies that cannot mislead: a reply window, settled answers, only our numbers, shared phones
recorded as ambiguous (never guessed), Twilio's clock for Twilio's times, every STOP to us, and
auto-answers under the same rules as every message. Sandbox, through the twilio SDK."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sandbox.faults import Fault
from services import registration_detector, reply_poller
from services.admin.status import funnel
from services.sms_sender import Sender
from tests.services.conftest import Rig, at_start, start_rules_rig
from tests.services.replying import (
    CANCELLED,
    CONFIRMED,
    NEWS,
    UNCLEAR,
    VISIT,
    join,
    ours,
    poll,
    send,
    text_back,
)

DAY = 24 * 3600


@pytest.fixture
def visit(tmp_path: Path) -> Iterator[Rig]:
    """The visit rule that takes replies; the simulators on the services' time."""
    yield from start_rules_rig(tmp_path, VISIT, sim_clock=at_start())


@pytest.fixture
def news(tmp_path: Path) -> Iterator[Rig]:
    """The visit rule and a rule without replies."""
    yield from start_rules_rig(tmp_path, VISIT + NEWS, sim_clock=at_start())


# -- 1. the reply window ---------------------------------------------------------------------------
def test_a_text_nine_days_later_answers_nothing(visit: Rig) -> None:
    """YES is confirmed; nine days later "who is this?" is outside the window: ignored, the
    answer stays, no "please reply YES or NO" goes out."""
    join(visit, "1")
    send(visit)
    text_back(visit, "YES")
    assert poll(visit) == {"recorded": 1}
    send(visit)
    visit.advance(9 * DAY)
    text_back(visit, "who is this?")
    assert poll(visit) == {"ignored_outside_window": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    assert send(visit).get("sent", 0) == 0
    assert ours(visit) == [ours(visit)[0], CONFIRMED]


def test_a_rule_sets_its_own_window(tmp_path: Path) -> None:
    """reply_within_hours = 1: a YES two hours after the message answers nothing."""
    rules = VISIT.replace("replies.confirmed", "reply_within_hours = 1\nreplies.confirmed")
    for rig in start_rules_rig(tmp_path, rules, sim_clock=at_start()):
        join(rig, "1")
        send(rig)
        rig.advance(2 * 3600)
        text_back(rig, "yes")
        assert poll(rig) == {"ignored_outside_window": 1}
        assert "visit_reply" not in rig.values("1")


# -- 2. settled answers stay settled ---------------------------------------------------------------
def test_yes_then_an_unclear_text_then_no(visit: Rig) -> None:
    """YES is confirmed and answered; "ok thanks" changes nothing (and gets no answer); NO is a
    clear change of mind: cancelled, with its own answer."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    send(visit)
    text_back(visit, "ok thanks")
    assert poll(visit) == {"already_recorded": 1, "kept_answer": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    assert send(visit).get("sent", 0) == 0
    no = text_back(visit, "no")
    assert poll(visit) == {"already_recorded": 2, "recorded": 1}
    values = visit.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("cancelled", no)
    send(visit)
    assert ours(visit)[1:] == [CONFIRMED, CANCELLED]


def test_two_unclear_texts_get_one_answer(visit: Rig) -> None:
    """ "what?" is unclear and answered once; "huh??" after it is kept out: one answer_unclear."""
    join(visit, "1")
    send(visit)
    first = text_back(visit, "what?")
    poll(visit)
    send(visit)
    text_back(visit, "huh??")
    assert poll(visit) == {"already_recorded": 1, "kept_answer": 1}
    send(visit)
    values = visit.values("1")
    assert (values["visit_reply"], values["visit_reply_sid"]) == ("unclear", first)
    assert ours(visit)[1:] == [UNCLEAR]


def test_the_same_answer_twice_is_answered_once(visit: Rig) -> None:
    """YES, then "y" again: one confirmation."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    send(visit)
    text_back(visit, "y")
    assert poll(visit) == {"already_recorded": 1, "kept_answer": 1}
    send(visit)
    assert ours(visit)[1:] == [CONFIRMED]


# -- 3. only our numbers ---------------------------------------------------------------------------
def test_a_reply_to_another_number_of_the_account_is_not_ours(visit: Rig) -> None:
    """With a Messaging Service the inbound list is the whole account's: a NO to another
    study's number is ignored; one to the service's number is recorded. The service's numbers
    are asked of Twilio once, then trusted for a while."""
    service = {
        "TWILIO_MESSAGING_SERVICE_SID": visit.twilio.messaging_service_sid,
        "TWILIO_FROM_NUMBER": "",
    }
    join(visit, "1")
    send(visit, **service)
    text_back(visit, "no", to="+15005550010")
    poller = reply_poller.ReplyPoller()
    ctx = visit.ctx(**service)
    assert dict(poller.run_once(ctx).counts) == {"ignored_not_our_number": 1}
    assert "visit_reply" not in visit.values("1")
    text_back(visit, "yes")
    visit.twilio.server.reset_stats()
    assert dict(poller.run_once(ctx).counts) == {"recorded": 1}
    assert visit.twilio.server.stats.requests.get("service_numbers/GET/list", 0) == 0
    assert visit.values("1")["visit_reply"] == "confirmed"


def test_the_service_numbers_are_asked_again_after_a_while(visit: Rig) -> None:
    """Past NUMBERS_TTL the poller asks Twilio for the service's numbers again (a number added
    to the service counts from then on)."""
    service = {
        "TWILIO_MESSAGING_SERVICE_SID": visit.twilio.messaging_service_sid,
        "TWILIO_FROM_NUMBER": "",
    }
    join(visit, "1")
    send(visit, **service)
    poller, ctx = reply_poller.ReplyPoller(), visit.ctx(**service)
    text_back(visit, "yes")
    poller.run_once(ctx)
    visit.advance(16 * 60)
    text_back(visit, "y")
    visit.twilio.server.reset_stats()
    poller.run_once(ctx)
    assert visit.twilio.server.stats.requests["service_numbers/GET/list"] == 1


# -- 4. shared phones ------------------------------------------------------------------------------
def test_a_shared_phone_with_two_unanswered_messages_is_ambiguous(visit: Rig) -> None:
    """Two records on one family phone, both reminded minutes apart: NO is recorded on both as
    ambiguous, no auto-answer goes, and admin status names both records for a person."""
    join(visit, "1")
    send(visit)
    visit.advance(120)
    join(visit, "2")
    send(visit)
    sid = text_back(visit, "no")
    assert poll(visit) == {"ambiguous": 1}
    for rid in ("1", "2"):
        values = visit.values(rid)
        assert (values["visit_reply"], values["visit_reply_sid"]) == ("ambiguous", sid)
        assert values.get("visit_answer_status", "") == ""
    assert send(visit).get("sent", 0) == 0
    findings = funnel(visit.ctx())["health"]["findings"]
    [finding] = [f for f in findings if f["check"] == "ambiguous_reply"]
    assert finding["count"] == 2 and "records 1, 2" in finding["what"]
    assert "555" not in finding["what"]
    assert poll(visit) == {"already_recorded": 1}


def test_a_shared_phone_with_one_message_waiting_answers_it(visit: Rig) -> None:
    """Record 1 answered YES; record 2 is reminded later; NO can only answer record 2's
    question: cancelled there, record 1 still confirmed."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    visit.advance(120)
    join(visit, "2")
    send(visit)
    text_back(visit, "no")
    assert poll(visit) == {"already_recorded": 1, "recorded": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    assert visit.values("2")["visit_reply"] == "cancelled"


def test_a_text_while_a_message_to_that_phone_is_unrecorded_waits_for_it(visit: Rig) -> None:
    """Record 1 answered YES; Twilio takes record 2's reminder to the same phone but its answer
    is lost (record 2 still ``sending``); NO is not taken for a change of mind on record 1: it
    waits, and once record 2's message is recorded it answers that one."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    visit.advance(120)
    join(visit, "2")
    visit.twilio.server.faults.add(
        Fault(kind="hang", seconds=2.5, after_apply=True, match={"op": "create"})
    )
    send(visit, HTTP_TIMEOUT_SECONDS="1")
    assert visit.values("2")["visit_status"] == "sending"
    text_back(visit, "no")
    assert poll(visit) == {"already_recorded": 1, "waiting_send_in_flight": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    visit.advance(3600)  # past the claim timeout: the sender finds the message in Twilio
    assert send(visit)["reconcile_adopted"] == 1
    assert poll(visit) == {"already_recorded": 1, "recorded": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    assert visit.values("2")["visit_reply"] == "cancelled"


def test_texts_in_the_same_second_are_not_ordered_by_export(visit: Rig) -> None:
    """Two records texted in the same second, one NO: ambiguous on both, whatever the order
    REDCap exports them in."""
    visit.register("1")
    visit.register("2")
    registration_detector.run_once(visit.ctx(needs_twilio=False))
    send(visit)
    text_back(visit, "no")
    assert poll(visit) == {"ambiguous": 1}
    assert {visit.values(r)["visit_reply"] for r in ("1", "2")} == {"ambiguous"}


# -- 5. Twilio's clock for Twilio's times ----------------------------------------------------------
@pytest.mark.parametrize("skew", [180, -180], ids=["host 3 min ahead", "host 3 min behind"])
def test_a_host_clock_off_by_minutes_loses_no_reply(visit: Rig, skew: int) -> None:
    """The host's clock 3 minutes ahead of Twilio's, or behind: the message's time is Twilio's,
    so the YES that follows it by 30 s is recorded."""
    visit.clock.advance(skew)  # the services' clock only
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    assert poll(visit) == {"recorded": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"


# -- 6. every STOP to us ---------------------------------------------------------------------------
def test_stop_after_a_rule_without_replies_opts_out(news: Rig) -> None:
    """We texted only news (a rule without replies) to a family phone of two records: STOP
    opts both out, and the next news is skipped."""
    for rid in ("1", "2"):
        news.register(rid)
        news.set(rid, visit_status="baseline")
    registration_detector.run_once(news.ctx(needs_twilio=False))
    assert send(news)["sent"] == 2
    stop = text_back(news, "STOP")
    assert poll(news) == {"opted_out": 1}
    for rid in ("1", "2"):
        values = news.values(rid)
        assert (values["relay_opted_out"], values["relay_opt_sid"]) == ("1", stop)
    news.set("1", news_status="registered")
    assert send(news)["not_sent_opted_out"] == 1
    text_back(news, "START")
    assert poll(news) == {"already_recorded": 1, "opted_in": 1}
    assert news.values("2").get("relay_opted_out", "") == ""


def test_stop_after_a_settled_answer_keeps_the_answer(visit: Rig) -> None:
    """YES, then STOP: the record is opted out, and its confirmation stays the recorded
    reply."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    text_back(visit, "stop")
    assert poll(visit) == {"already_recorded": 1, "opted_out": 1}
    values = visit.values("1")
    assert (values["relay_opted_out"], values["visit_reply"]) == ("1", "confirmed")


def test_an_auto_answer_obeys_the_allow_list(visit: Rig) -> None:
    """The allow-list narrowed after the reply: the auto-answer is skipped (not_allowed),
    nothing goes."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    counts = send(visit, SMS_ALLOWED_NUMBERS="+16175550199")
    assert counts == {"not_sent_not_allowed": 1}
    assert visit.values("1")["visit_answer_status"] == "skipped"
    assert ours(visit)[1:] == []


def test_a_dry_run_sends_no_auto_answer(visit: Rig) -> None:
    """DRY_RUN: the queued auto-answer is logged, not sent, and stays queued."""
    join(visit, "1")
    send(visit)
    text_back(visit, "yes")
    poll(visit)
    counts = dict(Sender(dry_run=True).run_once(visit.ctx(DRY_RUN="1")).counts)
    assert counts == {"dry_run_would_send": 1}
    assert visit.values("1")["visit_answer_status"] == "registered"
    assert ours(visit)[1:] == []


# -- upgrading ------------------------------------------------------------------------------------
def test_replies_recorded_before_the_replies_read_note_are_not_read_again(visit: Rig) -> None:
    """A record whose replies were recorded by an earlier version (no relay_replies_read):
    YES then NO in the window are done, not applied again (no second answer); a new text is
    read as usual and the note starts."""
    join(visit, "1")
    send(visit)
    yes = text_back(visit, "yes")
    no = text_back(visit, "no")
    at = visit.clock.now()
    visit.set(
        "1",
        visit_reply="cancelled",
        visit_reply_sid=no,
        visit_reply_at=at.strftime("%Y-%m-%d %H:%M:%S"),
    )
    assert yes != no
    assert poll(visit) == {"already_recorded": 2}
    assert visit.values("1")["visit_reply"] == "cancelled"
    assert send(visit).get("sent", 0) == 0
    visit.advance(60)
    text_back(visit, "yes")
    assert poll(visit) == {"already_recorded": 2, "recorded": 1}
    assert visit.values("1")["visit_reply"] == "confirmed"
    assert len(visit.values("1")["relay_replies_read"].splitlines()) == 3


def test_the_window_default_is_72_hours(visit: Rig) -> None:
    """A YES 71 hours after the message is recorded; one 73 hours after is not."""
    join(visit, "1")
    send(visit)
    visit.advance(71 * 3600)
    text_back(visit, "yes")
    assert poll(visit) == {"recorded": 1}
    join(visit, "2", "(617) 555-0101")
    send(visit)
    visit.advance(timedelta(hours=73).total_seconds())
    text_back(visit, "no", phone="+16175550101")
    assert poll(visit) == {"ignored_outside_window": 1}


# -- admin check ----------------------------------------------------------------------------------
def lines(stdout: str) -> dict[str, str]:
    return {line.split(": ", 1)[0]: line for line in stdout.splitlines() if ": " in line}


def test_check_compares_the_clocks_and_warns_past_30_seconds(tmp_path: Path) -> None:
    """admin check compares this machine's clock with REDCap's and Twilio's Date headers: in
    step, ok; two minutes apart, a [warn] saying by how much and which way, exit still 0."""
    for rig in start_rules_rig(tmp_path, VISIT):  # the simulators on real time
        done = rig.run("services.admin", "check")
        assert done.returncode == 0, done.stdout
        seen = lines(done.stdout)
        assert seen["[ok  ] REDCap clock"].endswith("s of it")
        assert seen["[ok  ] Twilio clock"].endswith("s of it")
        rig.sim_clock.advance(120)  # REDCap's and Twilio's clocks run 2 minutes ahead
        done = rig.run("services.admin", "check")
        assert done.returncode == 0, done.stdout
        seen = lines(done.stdout)
        for name in ("REDCap", "Twilio"):
            line = seen[f"[warn] {name} clock"]
            assert "behind" in line and "timedatectl" in line


def test_check_warns_when_the_lookback_is_shorter_than_a_window(tmp_path: Path) -> None:
    """REPLY_LOOKBACK_HOURS=24 with a 72-hour reply window: a [warn] naming both and the fix."""
    for rig in start_rules_rig(tmp_path, VISIT):
        done = rig.run("services.admin", "check", REPLY_LOOKBACK_HOURS="24")
        line = lines(done.stdout)["[warn] replies visit"]
        assert "REPLY_LOOKBACK_HOURS=24" in line and "reply_within_hours = 72" in line
        done = rig.run("services.admin", "check")
        assert "replies visit" not in done.stdout
