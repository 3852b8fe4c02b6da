"""Raw HTTP to the REDCap simulator, for the tests that check exact statuses, bodies and types.

PyCap hides most of these details (it never looks at the status code, §7.4), so these tests
post with ``requests`` directly and compare bytes with what REDCap 15.7.6 sends.
"""

from __future__ import annotations

import requests

from sandbox.redcap.server import RedcapSim

TIMEOUT = 5
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" ?>'


def post(sim: RedcapSim, **data: str) -> requests.Response:
    """POST a form to the simulator with its token (unless the test overrides it)."""
    data.setdefault("token", sim.token)
    return requests.post(sim.url, data=data, timeout=TIMEOUT)
