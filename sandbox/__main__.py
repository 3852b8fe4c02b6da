"""``python -m sandbox``: run the REDCap and Twilio simulators on 127.0.0.1 for a rehearsal.

Loads the demo project, or a study's own (``--project-xml``, or ``--dictionary`` with optional
``--records`` and ``--events``), writes ``.env.sandbox`` for the services, optionally simulates
participants registering (``--simulate N``: one before go-live, the N after ``admin baseline``),
and runs until Ctrl-C or SIGTERM.

The rehearsal has a clock of its own, shared by the simulators and the services through
SANDBOX_CLOCK_FILE in ``.env.sandbox`` (:class:`common.clock.ClockFile`): ``--speed 60`` runs it
a minute a second, ``python -m sandbox advance 2h`` moves it on, so real delays (an hour, two
days) are rehearsed as written.

``.env.sandbox`` holds the demo's settings, or with ``--env-file .env`` the study's own: every
setting of that file is kept except the REDCap and Twilio URLs and credentials (and LOCK_DIR),
which point at the simulators. The project is checked against those settings as ``admin check``
does; what it lacks is one line naming the setting and the fix, before anything is simulated.
Settings naming a RULES_FILE get the rules' fields added to the copy, as uploading
``admin instrument``'s CSV would (:func:`sandbox.rehearsal.add_rules`).

From another terminal while it runs: ``python -m sandbox reply ...`` (:mod:`sandbox.reply`)
makes a simulated participant text the study number; ``set``, ``sent`` and ``advance``
(:mod:`sandbox.drive`) change a record, show what was sent, move the clock.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from common.clock import ClockFile
from common.errors import ConfigError, ProjectCheckError
from common.runner import EXIT_CONFIG, EXIT_OK, EXIT_PROJECT
from common.setting_values import default_lock_dir
from sandbox import drive
from sandbox.envfile import write_env
from sandbox.participants import Participant, Registration, demo_cohort, simulate, store
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.dictionary import load_dictionary, load_project_from_dictionary
from sandbox.redcap.model import Form, Project
from sandbox.redcap.odm import load_project_xml
from sandbox.rehearsal import (
    CARRIED,
    PRODUCTION_PREFIXES,
    parse,
    prepare,
    read_study_env,
    rehearsal_env,
    rehearse_registrations,
    waiting_for_baseline,
)
from sandbox.reply import main as reply_main
from sandbox.session import Sandbox

EXAMPLES = """examples:
  .venv/bin/python -m sandbox
      the demo project, with the demo's settings
  .venv/bin/python -m sandbox --rules-file sandbox/rehearsal_rules.toml --speed 60
      the demo project with these rules, a minute of the rules' time every second
  (another terminal, while it runs; each has --help)
  .venv/bin/python -m sandbox set --record 3 visit_datetime=+2d@10:00 language=2
      set fields of record 3, as a REDCap import would (validated by REDCap's rules)
  .venv/bin/python -m sandbox advance 2h
      move the rehearsal's clock (the simulators' and the services') 2 hours on
  .venv/bin/python -m sandbox sent
      every text and e-mail the simulators took, in full
  .venv/bin/python -m sandbox reply --record 3 YES
      record 3's phone texts YES to the study number
  .venv/bin/python -m sandbox --project-xml MyProject.xml --env-file .env --simulate 3
      a copy of your project with your own settings: .env is read, never written; every
      setting is kept except REDCAP_API_URL, REDCAP_API_TOKEN, REDCAP_PROJECT_ID, TWILIO_*
      and LOCK_DIR, which point at the simulators. What the project lacks (a field, the
      event, the survey) ends the sandbox with one line naming the setting and the fix.
"""
PIPELINE_CSV = Path(__file__).resolve().parent.parent / "redcap" / "pipeline_instrument.csv"
# A day a second at most: beyond it a poll interval of seconds skips whole days of the rules.
MAX_SPEED = 86400.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run the REDCap and Twilio simulators on 127.0.0.1 for a rehearsal, write "
        ".env.sandbox for the services, and run until Ctrl-C.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--redcap-port", type=int, default=0, help="REDCap simulator port (0: any)")
    p.add_argument("--twilio-port", type=int, default=0, help="Twilio simulator port (0: any)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--project-xml", type=Path, help="REDCap project XML (CDISC ODM) export")
    source.add_argument("--dictionary", type=Path, help="data dictionary CSV (Online Designer)")
    p.add_argument("--records", type=Path, help="records export (CSV or JSON), with --dictionary")
    p.add_argument("--events", type=Path, help="events CSV, with --dictionary")
    p.add_argument("--project-id", type=int, default=1, help="project id to simulate")
    p.add_argument(
        "--env-out",
        type=Path,
        default=Path(".env.sandbox"),
        help="where to write the services' settings (default .env.sandbox)",
    )
    p.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="the study's own settings file (e.g. .env): .env.sandbox keeps its settings and "
        "replaces only the REDCap and Twilio URLs and credentials (and LOCK_DIR)",
    )
    p.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="simulate participants completing registration: one before go-live, then N once "
        "admin baseline has run; the registration field, a phone in the first of PHONE_FIELDS, "
        "and plausible values in the fields the rules read",
    )
    p.add_argument(
        "--simulate-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between simulated registrations (default 5)",
    )
    p.add_argument(
        "--rules-file",
        type=Path,
        metavar="PATH",
        help="rehearse these message rules (RULES_FILE in .env.sandbox, over --env-file's)",
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="N",
        help="the rehearsal's clock runs N times as fast (60: a minute a second); default 1",
    )
    return p


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not 0 < speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number from 0.1 to {MAX_SPEED:g}")
    return speed


def load(args: argparse.Namespace, event: str = "") -> Project:
    """The project to serve; ValueError with a one-line reason for bad files."""
    if args.project_xml:
        project = load_project_xml(args.project_xml, project_id=args.project_id)
    elif args.dictionary:
        project = load_project_from_dictionary(
            args.dictionary,
            records=args.records,
            events=args.events,
            project_id=args.project_id,
        )
    else:
        if args.records or args.events:
            raise ValueError("--records and --events go with --dictionary")
        return build_demo_project(project_id=args.project_id)
    return add_pipeline(project, event)


def add_pipeline(project: Project, event: str = "") -> Project:
    """Rehearsing on a study's own project: add the pipeline instrument if it is not there yet,
    in ``event`` (REDCAP_EVENT) on longitudinal projects, else in the first event."""
    if project.field("pipeline_status") is not None:
        return project
    fields = load_dictionary(PIPELINE_CSV)
    project.fields.extend(fields)
    project.forms.append(Form(name="pipeline", label="Pipeline"))
    if project.is_longitudinal:
        names = [item.unique_name for item in project.events]
        target = event if event in names else names[0]
        project.form_events.setdefault(target, []).append("pipeline")
    return project


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["reply"]:
        return reply_main(given[1:])
    if given[:1] and given[0] in drive.COMMANDS:
        return drive.main(given[0], given[1:])
    args = parser().parse_args(given)
    try:
        study = read_study_env(args.env_file) if args.env_file else None
        if args.env_file and args.env_out.resolve() == args.env_file.resolve():
            raise ConfigError(
                f"--env-out {args.env_out} is the study's settings file; write the sandbox's "
                "settings elsewhere (default .env.sandbox)"
            )
        project = load(args, (study or {}).get("REDCAP_EVENT", ""))
    except (ConfigError, OSError, ValueError) as exc:  # a bad settings or project file
        sys.stderr.write(f"sandbox: {exc}\n")
        return EXIT_CONFIG
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    clock = ClockFile(args.env_out.resolve().with_name(args.env_out.name + ".clock"))
    clock.start(args.speed)
    try:
        return serve(args, project, study, clock, stop)
    finally:
        clock.path.unlink(missing_ok=True)  # the services' clock goes with the simulators


def serve(
    args: argparse.Namespace,
    project: Project,
    study: Mapping[str, str] | None,
    clock: ClockFile,
    stop: threading.Event,
) -> int:
    """Run the simulators until ``stop``: write the services' settings, say where everything
    is, and let the simulated participants register."""
    ports = {"redcap_port": args.redcap_port, "twilio_port": args.twilio_port}
    with Sandbox(project, clock_file=clock, **ports) as box:
        try:
            env, registration, people, waiting = setup(args, box, study, os.environ)
        except ConfigError as exc:
            sys.stderr.write(f"sandbox: {exc}\n")
            return EXIT_CONFIG
        except ProjectCheckError as exc:
            sys.stderr.write(f"sandbox: {exc}\n")
            return EXIT_PROJECT
        write_env(args.env_out, env)
        print(
            f"REDCap simulator: {box.redcap.url}  (project {project.project_id}: {project.title})"
        )
        print(f"Twilio simulator: {box.twilio.base_url}")
        print(f"Settings for the services written to {args.env_out}; try:")
        print(f"  .venv/bin/python -m services.admin check --env-file {args.env_out}")
        now = box.clock.now().astimezone(ZoneInfo(env.get("TIMEZONE") or "UTC"))
        pace = f", running {args.speed:g}x" if args.speed != 1 else ""
        print(
            f"Sandbox time: {now:%Y-%m-%d %H:%M}{pace}; move it on with "
            f".venv/bin/python -m sandbox advance 2h"
        )
        if people:
            _simulate(args, box, people, registration, waiting, stop)
        print("Ctrl-C to stop.")
        sys.stdout.flush()
        stop.wait()
    print("sandbox stopped")
    return EXIT_OK


def _simulate(
    args: argparse.Namespace,
    box: Sandbox,
    people: list[Participant],
    registration: Registration,
    waiting: Callable[[], int],
    stop: threading.Event,
) -> None:
    """The first participant registers now, before go-live; the others once ``admin baseline``
    has marked whoever was there (the seed among them), so none of them is baselined."""
    seed, *rest = people
    store(box.project, box.clock, [seed], registration)
    every = f"one every {args.simulate_interval:g} s"
    if waiting() == 0:  # no rule applies to a registration: nothing to baseline
        print(f"Simulating {len(rest)} registrations, {every}")
    else:
        print(
            f"Record {seed.record_id} registered before go-live. Run "
            f".venv/bin/python -m services.admin baseline --env-file {args.env_out} "
            f"(as at go-live): then {len(rest)} new participants register, {every}"
        )
    simulate(
        box.project,
        box.clock,
        rest,
        args.simulate_interval,
        stop,
        registration,
        ready=lambda: waiting() == 0,
    )


def setup(
    args: argparse.Namespace,
    box: Sandbox,
    study: Mapping[str, str] | None,
    environ: Mapping[str, str],
) -> tuple[dict[str, str], Registration, list[Participant], Callable[[], int]]:
    """The settings to write, what a simulated registration fills, who registers (the first
    before go-live) and how many records wait for ``admin baseline``.

    With the study's settings every mismatch with the project is refused; with the demo's it is
    refused only when simulating (today's rehearsal without --env-file), else a note.
    """
    if study is None:
        env, source = box.settings(), "the demo settings"
    else:
        lock_dir = os.path.join(default_lock_dir(environ), "redcap-relay-sandbox")
        env, source = rehearsal_env(study, box, lock_dir), str(args.env_file)
    if args.rules_file:
        env["RULES_FILE"] = str(args.rules_file.resolve())
    settings = parse(env, source, file_names=study or ())
    registration, people = Registration(), []
    waiting: Callable[[], int] = lambda: 0  # noqa: E731 - nothing to wait for unless simulating
    try:
        registration, notes = prepare(box, settings, demo_fields=study is None)
        if args.simulate:
            people = demo_cohort(args.simulate + 1, start=next_record_number(box.project))
            scratch = load(args, settings.redcap_event)
            rehearse_registrations(scratch, box.clock, people, registration)
            waiting = waiting_for_baseline(settings)
    except (ConfigError, ProjectCheckError) as exc:
        if study is not None or args.simulate:
            hint = "" if study is not None else " (demo settings: rehearse with --env-file .env)"
            raise type(exc)(f"{exc}{hint}") from None
        notes = [f"the demo settings do not fit this project: {exc}; try --env-file .env"]
    for note in notes:
        sys.stderr.write(f"sandbox: {note}\n")
    shadowed = [key for key in env if key in environ and _points_away(key)]
    if shadowed:
        sys.stderr.write(
            f"sandbox: warning: {', '.join(shadowed)} set in this shell would win over "
            f"{args.env_out} when the services run; unset them first\n"
        )
    return env, registration, people, waiting


def next_record_number(project: Project) -> int:
    """The first numbered record id after the project's own, so no simulated registration
    lands on an existing record."""
    numbers = [int(name) for name in project.records if name.isdigit()]
    return max(numbers, default=0) + 1


def _points_away(key: str) -> bool:
    """A setting that, taken from the shell instead of .env.sandbox, could reach production."""
    if key in CARRIED:
        return False
    return key.startswith(PRODUCTION_PREFIXES) or key in ("REDCAP_PROJECT_ID", "LOCK_DIR")


if __name__ == "__main__":
    raise SystemExit(main())
