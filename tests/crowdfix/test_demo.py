"""`crowdfix demo` as a user runs it: on Mosquitto and on the embedded broker, stopped by Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from crowdfix.brokers import find_mosquitto, free_port, port_open
from tests.conftest import ROOT
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one-at-a-time")]


def _processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_demo_turns_presses_into_tickets_and_stops_cleanly(broker: str, tmp_path: Path) -> None:
    if broker == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it)")
    api_port, mqtt_port = free_port(), free_port()
    while mqtt_port == api_port:  # the OS may hand out the same free port twice in a row
        mqtt_port = free_port()
    state = tmp_path / "demo-state"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crowdfix.cli",
            "demo",
            "--broker",
            broker,
            "--api-port",
            str(api_port),
            "--mqtt-port",
            str(mqtt_port),
            "--state-dir",
            str(state),
            "--devices",
            "2",
            "--press-every",
            "1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = f"http://127.0.0.1:{api_port}"

    def get(path: str):
        token = (state / "operator.token").read_text().strip()
        return httpx.get(f"{api}{path}", headers={"Authorization": f"Bearer {token}"}).json()

    try:
        wait_for(
            lambda: (
                demo.poll() is not None
                or (port_open("127.0.0.1", api_port) and (state / "operator.token").exists())
            ),
            60,
            "API",
        )
        assert demo.poll() is None, demo.stderr.read() if demo.stderr else ""
        devices = wait_for(lambda: len(get("/api/devices")) == 2, 30, "devices")
        assert devices
        wait_for(
            lambda: get("/api/tickets")["total"],
            30,
            "a simulated press's ticket",
        )
        # By hand, as the banner shows; on Mosquitto only with the device's own login.
        command = [
            sys.executable, "-m", "crowdfix.cli", "send-button",
            "--broker", f"mqtt://127.0.0.1:{mqtt_port}", "--device", "kiosk-printer-01",
            "--button", "help", "--category", "kiosk-printer", "--action", "urgent",
            "--timeout", "3",
        ]  # fmt: skip
        if broker == "mosquitto":
            anonymous = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert anonymous.returncode == 1 and "Not authorized" in anonymous.stderr
            secret = state / "devices" / "kiosk-printer-01" / "mqtt-password"
            command += ["--username", "kiosk-printer-01", "--password-file", str(secret)]
        sent = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
        wait_for(
            lambda: any(
                t["urgent"] for t in get("/api/tickets?device_id=kiosk-printer-01")["items"]
            ),
            15,
            "the urgent press by hand",
        )
        assert httpx.get(f"{api}/docs").status_code == 200
        # The demo crew takes tickets: offered, accepted, and the device is told.
        wait_for(
            lambda: any(t["technician_id"] for t in get("/api/tickets?limit=500")["items"]),
            45,
            "a ticket taken by the demo crew",
        )
        mia = (state / "mia.token").read_text().strip()
        own = httpx.get(f"{api}/api/offers", headers={"Authorization": f"Bearer {mia}"})
        assert own.status_code == 200
        assert all(o["technician_id"] == "mia" for o in own.json())
    finally:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=60)
    assert demo.returncode == 0, err
    assert "crowdfix demo is running" in out and f"{api}/docs" in out
    assert "operator  operator / " in out
    if broker == "mosquitto":
        assert "--password-file" in out and '-P "$(cat ' in out
    assert not port_open("127.0.0.1", api_port) and not port_open("127.0.0.1", mqtt_port)
    assert _processes_mentioning(str(state)) == [], "the demo left a process behind"
