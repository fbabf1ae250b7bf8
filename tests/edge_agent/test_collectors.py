"""Collectors against real sources: files, disks, GPIO mock pins, a mock ADC, commands, HTTP."""

from __future__ import annotations

import http.server
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge_agent.collectors import Sampler, build_collectors
from edge_agent.profile import Profile
from tests.edge_agent.mock_adc import MockMCP3008
from tests.helpers import wait_for


def collect(collectors: list[dict], factory=None) -> dict[str, float]:
    profile = Profile(profile="t", collectors=collectors)
    built = build_collectors(profile, factory or MockFactory())
    try:
        return {name: value for c in built for name, value, _unit in c.read()}
    finally:
        for c in built:
            c.close()


def test_system_collectors(tmp_path: Path) -> None:
    temp, loadavg = tmp_path / "temp", tmp_path / "loadavg"
    temp.write_text("47123\n")
    loadavg.write_text("0.42 0.30 0.10 1/100 1234\n")
    values = collect(
        [
            {"kind": "cpu_temperature", "name": "cpu_c", "sensor_file": str(temp)},
            {"kind": "load_average", "name": "load", "load_average_file": str(loadavg)},
            {"kind": "disk_usage", "name": "disk", "filesystem": str(tmp_path)},
        ]
    )
    assert values["cpu_c"] == pytest.approx(47.123)
    assert values["load"] == pytest.approx(0.42)
    assert 0.0 < values["disk"] < 100.0


def test_a_door_contact_on_a_gpio_pin() -> None:
    factory = MockFactory()
    profile = Profile(
        profile="t",
        collectors=[{"kind": "digital_input", "name": "door_open", "pin": 24, "bounce_ms": 0}],
    )
    [door] = build_collectors(profile, factory)
    try:
        assert door.read() == [("door_open", 0.0, "")]
        factory.pin(24).drive_low()  # contact closes to ground: active with the pull-up
        assert door.read() == [("door_open", 1.0, "")]
    finally:
        door.close()


def test_an_analog_probe_on_an_mcp3008_channel() -> None:
    factory = MockFactory()
    adc = MockMCP3008(factory)
    adc.channels[2] = 0.75  # a TMP36 at 25 C gives 0.75 V
    # 3.3 V full scale → 330 "degrees", minus the TMP36's 50 C offset.
    values = collect(
        [
            {
                "kind": "adc",
                "name": "probe_c",
                "chip": "MCP3008",
                "channel": 2,
                "scale": 330.0,
                "offset": -50.0,
                "unit": "C",
            }
        ],
        factory,
    )
    assert values["probe_c"] == pytest.approx(25.0, abs=0.5)


@pytest.mark.skipif(shutil.which("ping") is None, reason="no ping binary (iputils-ping)")
def test_ping_the_local_host() -> None:
    assert collect([{"kind": "ping", "name": "router_up", "host": "127.0.0.1"}]) == {
        "router_up": 1.0
    }


def test_command_probes(tmp_path: Path) -> None:
    level = tmp_path / "level"
    level.write_text("12.5 litres\n")
    values = collect(
        [
            {"kind": "command", "name": "ok", "command": [sys.executable, "-c", "pass"]},
            {"kind": "command", "name": "broken", "command": [sys.executable, "-c", "exit(3)"]},
            {
                "kind": "command",
                "name": "hung",
                "timeout_s": 0.3,
                "command": [sys.executable, "-c", "import time; time.sleep(5)"],
            },
            {"kind": "command", "name": "missing", "command": ["/nonexistent/tool"]},
            {"kind": "command", "name": "level", "parse": "number", "command": ["cat", str(level)]},
        ]
    )
    assert values == {"ok": 1.0, "broken": 0.0, "hung": 0.0, "missing": 0.0, "level": 12.5}


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.0)
        self.send_response(200 if self.path in ("/ok", "/slow") else 503)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_http_health_probes() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        values = collect(
            [
                {"kind": "http", "name": "up", "url": f"{base}/ok"},
                {"kind": "http", "name": "down", "url": f"{base}/fail"},
                {"kind": "http", "name": "slow", "url": f"{base}/slow", "timeout_s": 0.2},
                {"kind": "http", "name": "refused", "url": "http://127.0.0.1:1/"},
            ]
        )
    finally:
        server.shutdown()
    assert (values["up"], values["down"], values["slow"], values["refused"]) == (1, 0, 0, 0)
    assert values["up_ms"] >= 0 and values["slow_ms"] < 1000


def test_the_sampler_keeps_going_when_a_collector_fails(tmp_path: Path) -> None:
    good = tmp_path / "temp"
    good.write_text("40000")
    profile = Profile(
        profile="t",
        telemetry={"sample_every_s": 0.05},
        collectors=[
            {"kind": "cpu_temperature", "name": "good", "sensor_file": str(good)},
            {"kind": "cpu_temperature", "name": "bad", "sensor_file": str(tmp_path / "missing")},
        ],
    )
    seen: list[str] = []
    sampler = Sampler(
        build_collectors(profile, MockFactory()),
        0.05,
        lambda samples, _at, _wall: seen.extend(n for n, _, _ in samples),
    )
    sampler.start()
    try:
        wait_for(lambda: seen.count("good") >= 3 and sampler.failures >= 3, 5, "samples")
    finally:
        sampler.stop()
    assert "bad" not in seen
