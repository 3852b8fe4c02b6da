"""The whole pipeline under random kill -9 and random outside faults: never twice, never lost.

Run: ``.venv/bin/python -m bench.soak [--kills 200] [--participants 60] [--seed 16]``.

The four services run as real processes in loops, as systemd runs them, against the sandbox:
a study with an SMS rule that takes replies (its auto-answer to YES) and an e-mail rule, Sent
Items saving each copy up to :data:`SENT_ITEMS_LAG` seconds late. Participants register in
waves; each one texted replies YES once. ``--kills`` times, a random service is SIGKILLed at a
random moment and started again at once; before each kill a random fault may be switched on
for a few requests: Twilio 429s, 500s, resets or a create applied with its answer withheld;
Graph 429s with a Retry-After, 503s, resets or a sendMail applied with its answer withheld;
REDCap 503s or an import applied with its answer withheld. Then the faults stop, the services
run until every participant is settled (on the sandbox's rehearsal clock, moved ten times
faster once the kills are over, so claim timeouts and the Sent Items grace pass in seconds),
and REDCap and the simulators are judged:

- **duplicates**: a participant given a rule's message twice (an SMS, an e-mail, an auto-answer);
- **lost**: a participant whose message is neither sent and recorded nor left for a person
  (``needs_review``), or recorded as sent with nothing sent, or a YES not recorded, or not
  answered once;
- ``needs_review`` and ``failed`` are counted: a person's work, not a loss.

``tests/services/test_soak.py`` runs a small soak on every ``make test``; the N = 200 result is
in ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.clock import ClockFile
from messaging.rules_file import load_study
from sandbox.envfile import write_env
from sandbox.faults import Fault
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.importer import import_rows
from sandbox.rehearsal import add_rule_fields
from sandbox.session import Sandbox

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("registration_detector", "sms_sender", "delivery_checker", "reply_poller")
RULES = """
[[rule]]
name = "text"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
template = "Your survey: {survey_link}"
replies.yes = ["yes"]
answer_yes = "Thanks, noted."

[[rule]]
name = "mail"
when = "[registration_complete] = '2'"
delay_minutes = 0
survey = "interest_form"
channel = "email"
subject = "Your survey"
email_template = "Your survey: {survey_link}"
"""
ANSWER = "Thanks, noted."
SENT_ITEMS_LAG = 30.0  # seconds: at most this late a copy shows in Sent Items
SETTINGS = {
    "POLL_INTERVAL_SECONDS": "0.3",
    "SMS_MAX_PER_SECOND": "20",
    "REDCAP_MAX_PER_MINUTE": "100000",  # the simulator's limiter is off
    "EMAIL_MAX_PER_MINUTE": "90",
    "SMS_CLAIM_TIMEOUT_SECONDS": "8",  # more than a send takes, with HTTP_TIMEOUT_SECONDS=3
    "HTTP_TIMEOUT_SECONDS": "3",
    "EMAIL_SENT_ITEMS_GRACE_MINUTES": "1",  # more than SENT_ITEMS_LAG
    "MAX_NEW_PER_CYCLE": "100000",
    "SMS_MAX_INTERRUPTED": "100",  # the kills are the soak's: not what it judges
    "REPLY_LOOKBACK_HOURS": "1",
    "LOG_LEVEL": "WARNING",
}
SETTLE_SPEED = 10  # once the kills are over, time runs this much faster (the rehearsal clock)
SETTLED = {"text": {"sms_sent", "delivered"}, "mail": {"sent_email"}}
REVIEW = {"needs_review", "failed"}


@dataclass
class Result:
    participants: int
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    review: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # services that stopped by themselves
    seconds: float = 0.0


def soak(
    kills: int,
    participants: int,
    seed: int,
    log: Callable[[str], None] = lambda line: None,
    *,
    lag: float = SENT_ITEMS_LAG,
    settle_timeout: float = 600.0,
    victims: Sequence[str] = SERVICES,
    faults: bool = True,
    **overrides: str,
) -> Result:
    """Run the soak (see the module docstring) and judge what it left: ``victims`` are the
    services killed, ``faults`` whether outside faults are switched on, ``overrides`` settings."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible soak, not a secret)
    result = Result(participants)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.toml"
        rules.write_text(RULES, encoding="utf-8")
        project = add_rule_fields(build_demo_project(), load_study(rules, default_event=""))
        clock = ClockFile(Path(tmp) / "clock.json")  # the rehearsal clock: settling runs fast
        clock.start()
        with Sandbox(project, clock_file=clock) as box:
            box.redcap.limiter.per_minute = 0  # services restarted this often are not the test
            box.microsoft.delay_sent_items(lag)
            env = Path(tmp) / ".env.soak"
            values = {**SETTINGS, **overrides, "LOCK_DIR": tmp, "RULES_FILE": str(rules)}
            write_env(env, box.settings(**values))
            running = {name: _start(name, env) for name in SERVICES}
            replied: set[str] = set()
            try:
                waves = _waves(participants, max(kills, 1), rng)
                first = 1
                for n in range(kills):
                    if waves and rng.random() < 0.5:
                        size = waves.pop()
                        _arrive(box, range(first, first + size))
                        first += size
                    _reply(box, first, replied)
                    if faults and rng.random() < 0.6:
                        result.faults[_fault(box, rng)] += 1
                    time.sleep(rng.uniform(0.1, 1.2))
                    _restart_exited(running, env, result)
                    name = rng.choice(list(victims))
                    running[name].send_signal(signal.SIGKILL)
                    running[name].wait(timeout=10)
                    running[name] = _start(name, env)
                    result.kills += 1
                    if (n + 1) % 20 == 0:
                        log(f"  {n + 1} kills, {first - 1} participants so far")
                for size in waves:
                    _arrive(box, range(first, first + size))
                    first += size
                _clear(box)
                deadline = time.monotonic() + settle_timeout
                while time.monotonic() < deadline:
                    _restart_exited(running, env, result)
                    _reply(box, first, replied)
                    if _settled(box, first, replied):
                        break
                    time.sleep(1)
                    clock.advance(SETTLE_SPEED - 1)  # claim timeouts and grace pass sooner
            finally:
                for proc in running.values():
                    proc.send_signal(signal.SIGTERM)
                for proc in running.values():
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=10)
            _judge(box, first - 1, result)
    result.seconds = time.perf_counter() - started
    return result


def _start(name: str, env: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}", "--env-file", str(env)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _restart_exited(running: dict[str, subprocess.Popen[bytes]], env: Path, result: Result) -> None:
    """A service that stopped by itself is noted (it should not, but for a REDCap ban) and
    started again, as systemd's Restart= would."""
    for name, proc in running.items():
        if proc.poll() is not None:
            result.exits[f"{name} exit {proc.returncode}"] += 1
            running[name] = _start(name, env)


def _waves(participants: int, kills: int, rng: random.Random) -> list[int]:
    """Wave sizes adding up to ``participants``, about one wave per two kills."""
    waves, left = [], participants
    count = max(1, kills // 2)
    while left > 0:
        size = min(left, max(1, round(rng.expovariate(count / participants))))
        waves.append(size)
        left -= size
    return waves


def phone(n: int) -> str:
    return f"+1617555{n:04d}"


def address(n: int) -> str:
    return f"participant{n}@example.org"


def _arrive(box: Sandbox, numbers: range) -> None:
    rows: list[dict[str, object]] = [
        {
            "record_id": str(n),
            "registration_complete": "2",
            "first_name": "Ada",
            "phone_number": phone(n),
            "email": address(n),
        }
        for n in numbers
    ]
    import_rows(box.project, rows, overwrite=False, date_format="YMD", now=box.clock.local_naive())


def _reply(box: Sandbox, upto: int, replied: set[str]) -> None:
    """Whoever has been texted the survey and has not replied yet answers YES."""
    texted = {str(m["to"]) for m in box.twilio.sent() if str(m["body"]).startswith("Your survey")}
    for n in range(1, upto):
        if phone(n) in texted and phone(n) not in replied:
            box.twilio.inject_inbound(phone(n), box.twilio.from_number, "YES")
            replied.add(phone(n))


def _fault(box: Sandbox, rng: random.Random) -> str:
    """Switch one random outside fault on for a few requests; its name."""
    twilio, graph, redcap = box.twilio.server.faults, box.microsoft, box.redcap.server.faults
    n = rng.randint(1, 6)
    choice = rng.randrange(10)
    if choice == 0:
        twilio.add(Fault(kind="status", status=429, times=n, match={"op": "create"}))
        return "twilio 429"
    if choice == 1:
        twilio.add(Fault(kind="status", status=500, times=1, match={"op": "create"}))
        return "twilio 500 on a create"
    if choice == 2:
        twilio.add(Fault(kind="reset", times=1, match={"op": "create"}))
        return "twilio reset on a create"
    if choice == 3:
        twilio.add(Fault(kind="hang", seconds=5, after_apply=True, match={"op": "create"}))
        return "twilio create applied, answer lost"
    if choice == 4:
        graph.throttle_next(n, retry_after=rng.choice((0, 1, 5, 20)))
        return "graph 429 + Retry-After"
    if choice == 5:
        graph.throttle_next(1, status=503, retry_after=0)
        return "graph 503"
    if choice == 6:
        graph.hang_next(after_apply=True, seconds=5)
        return "graph sendMail applied, answer lost"
    if choice == 7:
        graph.reset_next()
        return "graph reset on a sendMail"
    if choice == 8:
        redcap.add(Fault(kind="status", status=503, times=n * 3))
        return "redcap 503"
    redcap.add(
        Fault(
            kind="hang",
            seconds=5,
            after_apply=True,
            match={"content": "record", "action": "import"},
        )
    )
    return "redcap import applied, answer lost"


def _clear(box: Sandbox) -> None:
    for faults in (box.twilio.server.faults, box.redcap.server.faults, box.microsoft.server.faults):
        faults.clear()
    box.microsoft.app.injected.clear()


def _values(box: Sandbox, record: str) -> dict[str, str]:
    with box.project.lock:
        merged: dict[str, str] = {}
        for slot in box.project.records[record].slots.values():
            merged.update(slot)
        return merged


def _settled(box: Sandbox, upto: int, replied: set[str]) -> bool:
    with box.project.lock:
        present = set(box.project.records)
    for n in range(1, upto):
        if str(n) not in present:
            return False
        values = _values(box, str(n))
        for rule, done in SETTLED.items():
            if values.get(f"{rule}_status") not in done | REVIEW:
                return False
        if phone(n) in replied and values.get("text_reply") != "yes":
            return False
        if values.get("text_reply") == "yes" and values.get("text_answer_status") not in (
            SETTLED["text"] | REVIEW
        ):
            return False
    return True


def _judge(box: Sandbox, participants: int, result: Result) -> None:
    """Every broken promise, per participant (module docstring)."""
    texts = Counter(
        (str(m["to"]), "answer" if str(m["body"]) == ANSWER else "text") for m in box.twilio.sent()
    )
    mails = Counter(to for mail in box.microsoft.sent() for to in mail.to)
    for n in range(1, participants + 1):
        values = _values(box, str(n))
        given = {
            "text": texts[(phone(n), "text")],
            "mail": mails[address(n)],
            "text_answer": texts[(phone(n), "answer")],
        }
        for rule, count in given.items():
            status = values.get(f"{rule}_status", "")
            if count > 1:
                result.duplicates.append(f"participant {n}: {count} × {rule}")
            if status in REVIEW:
                result.review[f"{rule} {status}:{values.get(f'{rule}_error_code', '')}"] += 1
            elif status in SETTLED["text"] | SETTLED["mail"]:
                if count == 0:
                    result.lost.append(f"participant {n}: {rule} recorded {status}, none sent")
            elif rule != "text_answer" or values.get("text_reply") == "yes":
                result.lost.append(f"participant {n}: {rule} ended {status or 'blank'}")
        if values.get("text_reply") != "yes":
            result.lost.append(f"participant {n}: the YES is not recorded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--participants", type=int, default=60)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    print(
        f"soak: {args.kills} kills, {args.participants} participants, seed {args.seed}", flush=True
    )
    result = soak(args.kills, args.participants, args.seed, lambda line: print(line, flush=True))
    print()
    print("| kills | participants | faults switched on | duplicates | lost | for a person | time |")
    print("|---|---|---|---|---|---|---|")
    review = ", ".join(f"{k} {v}" for k, v in sorted(result.review.items())) or "none"
    print(
        f"| {result.kills} | {result.participants} | {sum(result.faults.values())} | "
        f"{len(result.duplicates)} | {len(result.lost)} | {review} | {result.seconds:.0f} s |"
    )
    print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(result.faults.items())))
    if result.exits:
        print("stopped by themselves: " + ", ".join(f"{k} ({v})" for k, v in result.exits.items()))
    for line in result.duplicates + result.lost:
        print(f"problem: {line}")
    return 1 if result.duplicates or result.lost or result.exits else 0


if __name__ == "__main__":
    raise SystemExit(main())
