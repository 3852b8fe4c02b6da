"""What the bounded transport (:mod:`common.http_bounds`) costs, and what it buys.

Run: ``.venv/bin/python -m bench.http_bounds [--requests 2000] [--timeout 1]``.

1. **Overhead.** ``--requests`` POSTs over one kept-alive connection to the REDCap simulator
   (``content=version``, a few bytes, and ``content=metadata``, the demo dictionary, about
   14 KB), with a plain ``requests.Session`` and with one carrying :class:`BoundedAdapter`:
   requests a second, the median of three runs, and the connections each opened.
2. **A trickling server.** The simulator sends the dictionary 500 bytes every 0.5 s (each read
   far within the timeout): how long one call is held with the plain session (per-read
   timeout only: until the last byte) and with the bounded one (``--timeout`` x 2, then an
   error), for ``--timeout`` 1 and 3.

Prints the Markdown tables of ``docs/PERFORMANCE.md``. The simulator is stopped on the way out.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import requests

from bench.measure import machine
from common.http_bounds import AnswerBounds, BoundedAdapter, mount_bounded
from sandbox.faults import Fault
from sandbox.redcap.demo import build_demo_project
from sandbox.redcap.server import RedcapSim

RUNS = 3


def _post(session: requests.Session, sim: RedcapSim, content: str, timeout: float) -> bytes:
    data = {"token": sim.token, "content": content, "format": "json", "returnFormat": "json"}
    response = session.post(sim.url, data=data, timeout=timeout)
    response.raise_for_status()
    return response.content


def _session(bounded: bool, timeout: float) -> tuple[requests.Session, BoundedAdapter | None]:
    session = requests.Session()
    adapter = mount_bounded(session, AnswerBounds.for_timeout(timeout)) if bounded else None
    return session, adapter


def _connections(session: requests.Session) -> int:
    adapter = session.get_adapter("http://")
    pools = adapter.poolmanager.pools  # type: ignore[attr-defined]
    return sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118 - no iteration


def _rate(sim: RedcapSim, content: str, bounded: bool, n: int, timeout: float) -> tuple[float, int]:
    session, _ = _session(bounded, timeout)
    _post(session, sim, content, timeout)  # warm-up: the connection opens
    started = time.perf_counter()
    for _ in range(n):
        _post(session, sim, content, timeout)
    rate = n / (time.perf_counter() - started)
    opened = _connections(session)
    session.close()
    return rate, opened


def overhead(sim: RedcapSim, n: int, timeout: float) -> list[str]:
    rows = ["| answer | transport | requests/s | connections opened |", "|---|---|---|---|"]
    for content in ("version", "metadata"):
        size = len(_post(requests.Session(), sim, content, timeout))
        runs: dict[bool, list[tuple[float, int]]] = {False: [], True: []}
        for _ in range(RUNS):  # alternated, so both meet the same machine
            for bounded in (False, True):
                runs[bounded].append(_rate(sim, content, bounded, n, timeout))
        for bounded in (False, True):
            name = "bounded" if bounded else "plain requests"
            rate = statistics.median(r for r, _ in runs[bounded])
            opened = max(o for _, o in runs[bounded])
            rows.append(f"| {content} ({size:,} B) | {name} | {rate:,.0f} | {opened} |")
    return rows


def held(sim: RedcapSim, call: Callable[[], object]) -> tuple[float, str]:
    sim.server.faults.clear()
    sim.server.faults.add(
        Fault(kind="trickle", chunk=500, seconds=0.5, match={"content": "metadata"})
    )
    started = time.perf_counter()
    try:
        call()
        outcome = "answer read"
    except requests.RequestException as exc:
        outcome = type(exc).__name__
    return time.perf_counter() - started, outcome


def trickle(sim: RedcapSim, timeouts: list[float]) -> list[str]:
    rows = ["| HTTP_TIMEOUT_SECONDS | transport | call held | outcome |", "|---|---|---|---|"]
    for timeout in timeouts:
        for bounded in (False, True):
            session, _ = _session(bounded, timeout)
            seconds, outcome = held(sim, partial(_post, session, sim, "metadata", timeout))
            name = "bounded" if bounded else "plain requests"
            rows.append(f"| {timeout:g} | {name} | {seconds:.1f} s | {outcome} |")
            session.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_bounds", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=1.0, help="the overhead runs' timeout")
    args = parser.parse_args(argv)
    with RedcapSim(build_demo_project(), rate_limit_per_minute=0) as sim:
        print(machine())
        print()
        print("\n".join(overhead(sim, args.requests, args.timeout)))
        print()
        print("\n".join(trickle(sim, [1.0, 3.0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
