"""A press on a mock pin becomes a ticket seen through the REST API, over a real Mosquitto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import Receipt
from crowdfix.brokers import MosquittoBroker
from edge_agent.app import EdgeAgent
from edge_agent.hardware.pins import mock_pin
from edge_agent.profile import load_profile
from edge_agent.settings import AgentSettings
from tests.conftest import ROOT, CloudStack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def agent(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[EdgeAgent]:
    """The real agent for a POS terminal on mock pins."""
    path = ROOT / "firmware_configs" / "pos-terminal.yaml"
    settings = AgentSettings(
        device_id="pos-0042",
        profile=path,
        broker_url=mosquitto.url,
        state_dir=tmp_path / "agent",
        pins="mock",
    )
    agent = EdgeAgent(settings, load_profile(path))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    yield agent
    stop.set()
    thread.join(10)


def test_a_button_press_becomes_a_ticket(cloud: CloudStack, agent: EdgeAgent) -> None:
    worker = cloud.worker
    assert agent.transport.link.wait_connected(10), agent.transport.link.last_error
    devices = wait_for(lambda: cloud.get("/api/devices"), 10, "the agent's birth message")
    assert devices[0]["id"] == "pos-0042" and devices[0]["presence"] == "online"

    pin = mock_pin(agent.pin_factory, "GPIO27")  # the printer button
    pin.drive_low()
    pin.drive_high()  # a single press, decided when the double-press window closes

    tickets = wait_for(lambda: cloud.get("/api/tickets")["items"], 10, "a ticket")
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket["device_id"], ticket["category"], ticket["source"], ticket["state"]) == (
        "pos-0042",
        "receipt-printer",
        "button",
        "new",
    )
    # The cloud confirms the stored event to the device, naming the ticket.
    receipt = wait_for(
        lambda: next((c for c in agent.commands if isinstance(c, Receipt)), None), 10, "receipt"
    )
    assert receipt.ticket_id == ticket["id"]
    assert worker.stats.tickets_opened == 1 and not worker.stats.rejected


def test_garbage_is_counted_and_the_worker_keeps_going(cloud, mosquitto: MosquittoBroker) -> None:
    from datetime import UTC, datetime

    from contracts import ButtonEvent, Channel, encode, uplink_topic
    from mqttlink import BrokerSettings, MqttLink

    worker = cloud.worker
    sender = MqttLink(BrokerSettings.from_url(mosquitto.url), "garbage-sender")
    sender.start()
    try:
        assert sender.wait_connected(10) and worker.mqtt.link.wait_connected(10)
        good = ButtonEvent(
            device_id="pos-7", timestamp=datetime.now(UTC), seq=1, button="till", category="till"
        )
        for topic, payload in [
            ("dt/crowdfix/v1/pos-7/button", b"\x00\xff not json"),
            ("dt/crowdfix/v1/pos-7/button", b'{"schema_version": 9}'),
            ("dt/crowdfix/v1/pos-8/button", encode(good)),  # spoofing another device's topic
            ("dt/crowdfix/v1/pos-7/button", b"{}" + b" " * 70_000),
            (uplink_topic("pos-7", Channel.BUTTON), encode(good)),
        ]:
            assert sender.publish(topic, payload).sent
        tickets = wait_for(lambda: cloud.get("/api/tickets")["items"], 10, "ticket")
        assert [t["device_id"] for t in tickets] == ["pos-7"]
        wait_for(lambda: sum(worker.stats.rejected.values()) == 4, 10, "4 rejections")
        assert dict(worker.stats.rejected) == {
            "malformed_json": 1,
            "unsupported_schema_version": 1,
            "device_mismatch": 1,
            "oversized": 1,
        }
    finally:
        sender.stop()
