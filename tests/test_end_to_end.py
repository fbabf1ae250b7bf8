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
from tests.conftest import ROOT, CloudStack, SecureBroker
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


DEVICE = "pos-0042"


@pytest.fixture
def secure_devices() -> list[str]:
    return [DEVICE]


@pytest.fixture
def mosquitto(secure_mosquitto: SecureBroker) -> MosquittoBroker:
    """The production broker config: the cloud and the agent log in with their own accounts."""
    return secure_mosquitto.broker


@pytest.fixture
def cloud_overrides(secure_cloud_overrides: dict[str, object]) -> dict[str, object]:
    return secure_cloud_overrides


@pytest.fixture
def agent(secure_mosquitto: SecureBroker, tmp_path: Path) -> Iterator[EdgeAgent]:
    """The real agent for a POS terminal on mock pins, with its provisioned password."""
    path = ROOT / "firmware_configs" / "pos-terminal.yaml"
    settings = AgentSettings(
        device_id=DEVICE,
        profile=path,
        broker_url=secure_mosquitto.broker.url,
        mqtt_password=secure_mosquitto.passwords[DEVICE],
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
