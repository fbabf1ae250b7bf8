"""The whole agent on mock pins against a real Mosquitto and the real cloud worker."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import ButtonEvent, FaultEvent, Heartbeat
from crowdfix.brokers import MosquittoBroker
from edge_agent.app import EdgeAgent
from edge_agent.feedback import Indication
from edge_agent.hardware.keyboard import press
from edge_agent.hardware.pins import mock_pin
from edge_agent.profile import parse_profile
from edge_agent.settings import AgentSettings
from mqttlink import link as link_module
from tests.conftest import CloudStack
from tests.edge_agent.rig import Recorder, rig_profile
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _quick_reconnect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(link_module, "RECONNECT_MAX_S", 0.5)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The agent's behaviour does not depend on the cloud's database: SQLite is enough here."""
    return sqlite_url


@pytest.fixture
def rig(
    mosquitto: MosquittoBroker, tmp_path: Path, _recorder: None
) -> Iterator[tuple[EdgeAgent, Path]]:
    value_file = tmp_path / "level"
    value_file.write_text("10\n")
    raw = rig_profile(
        value_file, {"till": 17, "printer": 27}, outputs=[{"name": "led", "kind": "led", "pin": 23}]
    )
    raw["buttons"][1].update(cooldown_s=0, actions={"double": None})
    profile = parse_profile(raw, "test-rig")
    settings = AgentSettings(
        device_id="rig-01",
        profile=tmp_path / "p.yaml",
        broker_url=mosquitto.url,
        state_dir=tmp_path / "state",
        pins="mock",
    )
    agent = EdgeAgent(settings, profile)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    assert agent.transport.link.wait_connected(10), agent.transport.link.last_error
    yield agent, value_file
    stop.set()
    thread.join(10)


def _events(cloud: CloudStack) -> list:
    return cloud.ingested("rig-01", "button", "fault")


def test_gestures_become_requests_cancels_and_urgent_ones(rig, cloud: CloudStack) -> None:
    agent, _ = rig
    till = mock_pin(agent.pin_factory, 17)
    timing = agent.profile.gestures
    press(till, "s", timing)
    wait_for(lambda: len(_events(cloud)) == 1, 10, "single")
    press(till, "l", timing)
    wait_for(lambda: len(_events(cloud)) == 2, 10, "long")
    press(till, "d", timing)
    wait_for(lambda: len(_events(cloud)) == 3, 10, "double")
    actions = [c.message_ids[0] for c in agent.commands if c.type == "receipt"]
    assert len(actions) == 3
    sent = [m for m in _decoded(agent) if isinstance(m, ButtonEvent)]
    assert [(m.gesture.value, m.action.value) for m in sent] == [
        ("single", "request"),
        ("long", "urgent"),
        ("double", "cancel"),
    ]
    wait_for(lambda: agent.store.pending_ids() == [], 10, "outbox emptied by receipts")
    # The double press cancelled the request: the cloud says so, the lights show it, then rest.
    wait_for(
        lambda: any(c.type == "feedback" and c.state.value == "cancelled" for c in agent.commands),
        10,
        "the cancelled feedback",
    )
    wait_for(lambda: agent.showing is Indication.IDLE, 10, "idle lights")


def test_a_hammered_button_sends_one_request(rig, cloud: CloudStack) -> None:
    agent, _ = rig
    till = mock_pin(agent.pin_factory, 17)
    for _ in range(15):
        press(till, "s", agent.profile.gestures)
        threading.Event().wait(0.35)  # each one a separate single press
    wait_for(lambda: len(_events(cloud)) >= 1, 10, "the request")
    threading.Event().wait(1.0)
    assert len(_events(cloud)) == 1


def test_a_stuck_button_raises_and_clears_a_fault(rig, cloud: CloudStack) -> None:
    agent, _ = rig
    pin = mock_pin(agent.pin_factory, 27)
    pin.drive_low()
    wait_for(lambda: any(m.type == "fault" for m in _decoded(agent)), 15, "stuck fault")
    pin.drive_high()
    wait_for(
        lambda: len([m for m in _decoded(agent) if isinstance(m, FaultEvent)]) == 2, 10, "cleared"
    )
    faults = [m for m in _decoded(agent) if isinstance(m, FaultEvent)]
    assert [(f.code, f.state.value) for f in faults] == [
        ("button-stuck-printer", "raised"),
        ("button-stuck-printer", "cleared"),
    ]
    # The held button also made one long press (urgent), and nothing else.
    assert [m.action.value for m in _decoded(agent) if isinstance(m, ButtonEvent)] == ["urgent"]


def test_readings_raise_and_clear_faults_and_flow_as_telemetry(rig, cloud: CloudStack) -> None:
    agent, value_file = rig
    value_file.write_text("75\n")
    wait_for(lambda: [e.type for e in _events(cloud)] == ["fault"], 10, "fault raised")
    value_file.write_text("45\n")  # between the levels: hysteresis holds the fault
    threading.Event().wait(1.0)
    value_file.write_text("30\n")
    wait_for(lambda: len(_events(cloud)) == 2, 10, "fault cleared")
    faults = [m for m in _decoded(agent) if isinstance(m, FaultEvent)]
    assert [(f.state.value, f.readings) for f in faults] == [
        ("raised", {"level": 75.0}),
        ("cleared", {"level": 30.0}),
    ]
    wait_for(lambda: cloud.readings("rig-01").get("level") == 30.0, 10, "telemetry")
    heartbeat = next(m for m in _decoded(agent) if isinstance(m, Heartbeat))
    assert heartbeat.profile == "test-rig" and heartbeat.config_hash == agent.profile.config_hash()


def test_offline_presses_wait_show_queued_and_are_reported_in_heartbeats(
    rig, mosquitto: MosquittoBroker, cloud: CloudStack
) -> None:
    agent, _ = rig
    mosquitto.stop()
    press(mock_pin(agent.pin_factory, 17), "s", agent.profile.gestures)
    press(mock_pin(agent.pin_factory, 27), "s", agent.profile.gestures)
    wait_for(lambda: len(agent.store.pending_ids()) == 2, 10, "two events in the outbox")
    wait_for(lambda: agent.showing is Indication.QUEUED, 10, "the queued pattern")
    mosquitto.start()
    wait_for(
        lambda: any(
            isinstance(m, Heartbeat) and m.backlog == 2 and m.oldest_pending_s
            for m in _decoded(agent)
        ),
        20,
        "a heartbeat with the backlog",
    )
    wait_for(lambda: agent.store.pending_ids() == [], 20, "receipts")
    wait_for(lambda: len(_events(cloud)) == 2, 10, "both events at the cloud")
    wait_for(lambda: agent.showing is Indication.RECEIVED, 10, "received")


def _decoded(agent: EdgeAgent) -> list:
    """Everything the agent published, as a separate subscriber on the broker saw it."""
    return _RECORDER[0].decoded()


_RECORDER: list[Recorder] = []


@pytest.fixture
def _recorder(mosquitto: MosquittoBroker) -> Iterator[None]:
    recorder = Recorder(mosquitto.url, "rig-01").start()
    _RECORDER.append(recorder)
    yield
    recorder.stop()
    _RECORDER.clear()
