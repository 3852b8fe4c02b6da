"""``make demo``: the whole pipeline against the sandbox, start to finish, in about a minute.

Starts both simulators with the demo project, shows a PyCap export, baselines three pre-go-live
registrations, runs the detector, sender and checker as real processes in loop mode while
participants register, then stops them with SIGTERM and prints ``admin status``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from redcap.project import Project as PyCapProject

from sandbox.envfile import write_env
from sandbox.participants import Participant, demo_cohort, register
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.model import Project
from sandbox.session import Sandbox

SERVICES = ("registration_detector", "sms_sender", "delivery_checker")
SETTLED = {
    "delivered",
    "undelivered",
    "failed",
    "skipped",
    "baseline",
    "unconfirmed",
    "needs_review",
}
MAX_SECONDS = 90.0


def cohort() -> list[Participant]:
    """Eight new participants: six ordinary, plus the problems a study meets in real life."""
    people = demo_cohort(6, start=4)
    people.append(Participant("10", "call me after 5", "Kai"))  # no usable phone -> skipped
    people.append(Participant("11", "+15005553003", "Lea"))  # handset off -> undelivered 30003
    return people


def run(python: str = sys.executable) -> int:
    project = build_demo_project()
    with Sandbox(project) as box, tempfile.TemporaryDirectory() as tmp:
        redcap, twilio, clock = box.redcap, box.twilio, box.clock
        env_file = Path(tmp) / ".env.sandbox"
        write_env(env_file, box.settings(LOCK_DIR=tmp))
        print(f"== sandbox up: REDCap {redcap.url}  Twilio {twilio.base_url}")

        for person in demo_cohort(3):
            register(project, clock, person)
        rows = PyCapProject(redcap.url, redcap.token).export_records(
            fields=["record_id", "registration_complete", "pipeline_status"]
        )
        print(f"== PyCap export before go-live: {rows}")

        admin = [python, "-m", "services.admin"]
        subprocess.run([*admin, "check", "--env-file", str(env_file)], check=False, timeout=60)
        subprocess.run([*admin, "baseline", "--env-file", str(env_file)], check=True, timeout=60)

        print("== starting the three services (loop mode)")
        procs = [
            subprocess.Popen([python, "-m", f"services.{name}", "--env-file", str(env_file)])
            for name in SERVICES
        ]
        try:
            people = cohort()
            deadline = time.monotonic() + MAX_SECONDS
            for person in people:
                time.sleep(2)
                register(project, clock, person)
                print(f"== participant {person.record_id} completed registration")
            while time.monotonic() < deadline and not settled(project):
                time.sleep(1)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        print(f"== services stopped; Twilio accepted {len(twilio.sent())} message(s)")
        print("== python -m services.admin status")
        status = subprocess.run(
            [*admin, "status", "--env-file", str(env_file)], check=False, timeout=60
        )
        return 0 if settled(project) and status.returncode == 0 else 1


def settled(project: Project) -> bool:
    """Every record has reached a status the pipeline will not move on its own."""
    with project.lock:
        statuses = [
            values.get("pipeline_status", "")
            for record in project.records.values()
            for values in record.slots.values()
        ]
    return bool(statuses) and all(s in SETTLED for s in statuses)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(run())
