"""Presence for real: an agent killed -9 is declared offline by its last will, gets a ticket
after the grace period, and coming back resolves it (nobody was dispatched)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from cloud.tickets.models import Ticket
from cloud.tickets.taxonomy import DEFAULT_TAXONOMY
from crowdfix.brokers import MosquittoBroker
from tests.conftest import CloudStack
from tests.edge_agent.test_store_and_forward import DEVICE, AgentProcess
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def cloud_overrides(tmp_path: Path) -> dict[str, object]:
    """The shipped taxonomy with a 3 second offline grace instead of 5 minutes."""
    taxonomy = yaml.safe_load(DEFAULT_TAXONOMY.read_text())
    taxonomy["presence"]["offline_grace_min"] = 0.05
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(taxonomy))
    return {"taxonomy_file": path}


def _tickets(cloud: CloudStack) -> list[Ticket]:
    with cloud.sessions() as db:
        return list(db.scalars(select(Ticket).where(Ticket.device_id == DEVICE)))


def test_a_dead_agent_becomes_a_ticket_and_its_return_resolves_it(
    tmp_path: Path, mosquitto: MosquittoBroker, cloud: CloudStack
) -> None:
    agent = AgentProcess(tmp_path, mosquitto.url)
    agent.start()
    try:
        wait_for(lambda: (d := cloud.device(DEVICE)) and d.presence == "online", 30, "online")
        agent.stop(signal.SIGKILL)  # no goodbye: the broker sends the last will
        wait_for(lambda: cloud.device(DEVICE).presence == "offline", 15, "offline")
        [ticket] = wait_for(_tickets_of(cloud), 15, "the device-offline ticket")
        assert (ticket.category, ticket.source, ticket.state) == (
            "device-offline",
            "offline",
            "new",
        )
        agent.start()
        wait_for(lambda: _tickets(cloud)[0].state == "resolved", 30, "auto-resolved on return")
        assert cloud.device(DEVICE).presence == "online"
        assert _tickets(cloud)[0].resolution == "auto"
    finally:
        agent.stop()


def _tickets_of(cloud: CloudStack):
    return lambda: _tickets(cloud)
