"""``python -m sandbox``: run the REDCap and Twilio simulators on 127.0.0.1 for a rehearsal.

Loads the demo project, or a study's own (``--project-xml``, or ``--dictionary`` with optional
``--records`` and ``--events``), writes ``.env.sandbox`` for the services, optionally simulates
participants registering (``--simulate N``), and runs until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from sandbox.envfile import write_env
from sandbox.participants import demo_cohort, simulate
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.dictionary import load_dictionary, load_project_from_dictionary
from sandbox.redcap.model import Form, Project
from sandbox.redcap.odm import load_project_xml
from sandbox.session import Sandbox

PIPELINE_CSV = Path(__file__).resolve().parent.parent / "redcap" / "pipeline_instrument.csv"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
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
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="simulate N participants completing registration",
    )
    p.add_argument(
        "--simulate-interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between simulated registrations (default 5)",
    )
    return p


def load(args: argparse.Namespace) -> Project:
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
    return add_pipeline(project)


def add_pipeline(project: Project) -> Project:
    """Rehearsing on a study's own project: add the pipeline instrument if it is not there yet."""
    if project.field("pipeline_status") is not None:
        return project
    fields = load_dictionary(PIPELINE_CSV)
    project.fields.extend(fields)
    project.forms.append(Form(name="pipeline", label="Pipeline"))
    if project.is_longitudinal:
        first = project.events[0].unique_name
        project.form_events.setdefault(first, []).append("pipeline")
    return project


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        project = load(args)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"sandbox: {exc}\n")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with Sandbox(project, redcap_port=args.redcap_port, twilio_port=args.twilio_port) as box:
        write_env(args.env_out, box.settings())
        print(
            f"REDCap simulator: {box.redcap.url}  (project {project.project_id}: {project.title})"
        )
        print(f"Twilio simulator: {box.twilio.base_url}")
        print(f"Settings for the services written to {args.env_out}; try:")
        print(f"  python -m services.admin check --env-file {args.env_out}")
        if args.simulate:
            people = demo_cohort(args.simulate, start=len(project.records) + 1)
            simulate(project, box.clock, people, args.simulate_interval, stop)
            print(
                f"Simulating {args.simulate} registrations, one every {args.simulate_interval:g} s"
            )
        print("Ctrl-C to stop.")
        sys.stdout.flush()
        stop.wait()
    print("sandbox stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
