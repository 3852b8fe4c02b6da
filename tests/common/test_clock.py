"""The rehearsal's clock: one file a sandbox writes and every process of the rehearsal reads,
moved on by ``advance`` or running faster by ``speed``; and production can never be on it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.clock import ClockFile, RehearsalClock, SystemClock, clock_for
from common.errors import ConfigError
from common.settings import Settings
from sandbox.clock import SimClock
from tests.common.test_setting_errors import GOOD

T0 = 1_800_000_000.0  # a real moment, as Unix seconds


class Real:
    """Real time, as the test says it is."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_the_clock_runs_at_its_speed_and_advance_moves_it_on(tmp_path: Path) -> None:
    """speed 60: ten real seconds are ten minutes; advance adds on top and the speed stays."""
    real = Real()
    clock = ClockFile(tmp_path / "clock", real=real)
    clock.start(speed=60)
    assert clock.now() == T0
    real.now += 10
    assert clock.now() == T0 + 600
    assert clock.advance(7200) == T0 + 600 + 7200
    real.now += 1
    assert clock.now() == T0 + 7800 + 60


def test_every_reader_sees_a_change_and_keeps_the_last_clock_if_it_goes(tmp_path: Path) -> None:
    """Another process's advance is seen at once; the file removed (the sandbox stopped)
    leaves readers on the last clock rather than failing mid-cycle."""
    real = Real()
    writer, reader = (
        ClockFile(tmp_path / "clock", real=real),
        ClockFile(tmp_path / "clock", real=real),
    )
    writer.start()
    assert reader.now() == T0
    writer.advance(3600)
    assert reader.now() == T0 + 3600
    (tmp_path / "clock").unlink()
    assert reader.now() == T0 + 3600


def test_the_simulators_and_the_services_share_it(tmp_path: Path) -> None:
    """A SimClock following the file and a service's RehearsalClock tell the same time."""
    path = tmp_path / "clock"
    ClockFile(path).start()
    ClockFile(path).advance(2 * 86400)
    sim = SimClock(follow=ClockFile(path).now)
    service = RehearsalClock(UTC, path)
    assert abs((sim.now() - service.now()).total_seconds()) < 1
    assert (service.now() - datetime.now(UTC)).total_seconds() == pytest.approx(2 * 86400, abs=5)


def test_a_clock_file_that_is_no_clock_is_a_config_error(tmp_path: Path) -> None:
    """Garbage where the clock should be: one line naming SANDBOX_CLOCK_FILE at startup."""
    path = tmp_path / "clock"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"SANDBOX_CLOCK_FILE: .* not a sandbox clock"):
        clock_for(UTC, path)


LOCAL = {
    **GOOD,
    "REDCAP_API_URL": "http://127.0.0.1:8080/api/",
    "TWILIO_API_BASE_URL": "http://127.0.0.1:8081",
    "GRAPH_AUTHORITY_URL": "http://127.0.0.1:8082",
    "GRAPH_API_BASE_URL": "http://127.0.0.1:8082",
}


@pytest.mark.parametrize(
    "production",
    ["REDCAP_API_URL", "TWILIO_API_BASE_URL", "GRAPH_AUTHORITY_URL", "GRAPH_API_BASE_URL"],
)
def test_production_settings_refuse_a_rehearsal_clock(tmp_path: Path, production: str) -> None:
    """SANDBOX_CLOCK_FILE beside any service that is not on this machine (or left at its
    default, Twilio's or Microsoft's) is refused, naming both: production never runs on it."""
    path = tmp_path / "clock"
    ClockFile(path).start()
    real = {key: value for key, value in LOCAL.items() if key != production}
    if production == "REDCAP_API_URL":
        real[production] = GOOD["REDCAP_API_URL"]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**real, "SANDBOX_CLOCK_FILE": str(path)})
    assert f"SANDBOX_CLOCK_FILE is set but {production} is not on this machine" in str(caught.value)


def test_only_a_rehearsal_runs_on_it(tmp_path: Path) -> None:
    """Local services and the file: the services' clock is the rehearsal's; without the
    setting, the system clock."""
    path = tmp_path / "clock"
    ClockFile(path).start()
    settings = Settings.from_env({**LOCAL, "SANDBOX_CLOCK_FILE": str(path)})
    assert isinstance(clock_for(UTC, settings.sandbox_clock_file), RehearsalClock)
    plain = Settings.from_env(GOOD)
    assert plain.sandbox_clock_file is None
    assert type(clock_for(UTC, plain.sandbox_clock_file)) is SystemClock
    with pytest.raises(ConfigError, match="no such file; it is written by python -m sandbox"):
        Settings.from_env({**LOCAL, "SANDBOX_CLOCK_FILE": str(tmp_path / "gone")})
