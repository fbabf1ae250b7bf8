"""Operator alerts through a real Alertmanager: crowdfix posts them to its API, Alertmanager
notifies a receiver that they fire, and that they are resolved when crowdfix clears them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud.db import transaction
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from crowdfix.brokers import free_port
from tests.cloud.test_alerts import escalated_ticket
from tests.helpers import WebhookReceiver, wait_for

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        BINARY is None,
        reason="no Alertmanager here (Debian: apt-get install prometheus-alertmanager)",
    ),
]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """Where Alertmanager sends its notifications (an on-call tool, a mailer...)."""
    with WebhookReceiver("/alertmanager") as hook:
        yield hook


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: WebhookReceiver) -> Iterator[str]:
    """An Alertmanager of the test's own on a free port, routing every alert to the receiver
    at once, resolved ones too; its base URL."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: on-call\n"
        "  group_by: [alertname, ticket]\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: on-call\n"
        "    webhook_configs:\n"
        f"      - url: {receiver.url}\n"
        "        send_resolved: true\n"
    )
    port = free_port()
    process = subprocess.Popen(
        [
            str(BINARY), f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 20, "Alertmanager ready")
        yield base
    finally:
        process.terminate()
        process.wait(10)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def active(base: str) -> dict[str, dict]:
    """Alertmanager's active alerts by alertname."""
    found = httpx.get(f"{base}/api/v2/alerts", params={"active": "true"}, timeout=5).json()
    return {a["labels"]["alertname"]: a for a in found if a["status"]["state"] == "active"}


def notified(receiver: WebhookReceiver) -> list[tuple[str, str, str]]:
    """(status, alertname, ticket) of every alert in every notification, in order."""
    return [
        (alert["status"], alert["labels"]["alertname"], alert["labels"]["ticket"])
        for post in receiver.taken
        for alert in json.loads(post.body)["alerts"]
    ]


def test_alerts_fire_in_alertmanager_stay_firing_and_resolve_when_cleared(
    sessions, worker_for, alertmanager: str, receiver: WebhookReceiver
) -> None:
    ticket_id = escalated_ticket(sessions)  # opened days ago: escalated and long late now
    worker = worker_for(
        sessions, alert_webhook_url=f"{alertmanager}/api/v2/alerts",
        alert_webhook_format="alertmanager", public_url="https://desk.example",
    )  # fmt: skip
    assert worker.raise_alerts() == 2
    assert worker.relay_webhooks() == 1  # Alertmanager took the POST
    firing = wait_for(lambda: len(active(alertmanager)) == 2 and active(alertmanager), 10, "2")
    escalation = firing["CrowdfixTicketEscalated"]
    assert escalation["labels"] | {"episode": "-"} == {
        "alertname": "CrowdfixTicketEscalated", "severity": "critical", "service": "crowdfix",
        "kind": "escalated", "ticket": str(ticket_id), "episode": "-",
    }  # fmt: skip
    assert escalation["generatorURL"] == f"https://desk.example/ui/ticket?id={ticket_id}"
    assert "is escalated: no eligible technician" in escalation["annotations"]["summary"]
    assert firing["CrowdfixOnSiteBreached"]["labels"]["severity"] == "critical"
    wait_for(lambda: len(notified(receiver)) >= 2, 15, "Alertmanager's notifications")
    assert sorted(notified(receiver)) == [
        ("firing", "CrowdfixOnSiteBreached", str(ticket_id)),
        ("firing", "CrowdfixTicketEscalated", str(ticket_id)),
    ]

    # A minute on, the breach still holds: crowdfix sends it again and it stays firing.
    ends = firing["CrowdfixOnSiteBreached"]["endsAt"]
    worker._alerts_resent = 0.0
    assert worker.raise_alerts() == 0 and worker.relay_webhooks() == 1
    wait_for(
        lambda: active(alertmanager)["CrowdfixOnSiteBreached"]["endsAt"] > ends, 10, "later end"
    )

    # An operator assigns it: the escalation is over, and Alertmanager says it is resolved.
    with transaction(sessions) as db:
        ticket = db.get(Ticket, ticket_id)
        tickets.transition(
            db_session=db, ticket=ticket, to=TicketState.ASSIGNED, actor="olga",
            reason="sam goes", now=ticket.opened_at, assigned_to="sam",
        )  # fmt: skip
        ticket.technician_id = "sam"
    assert worker.raise_alerts() == 0 and worker.relay_webhooks() == 1
    wait_for(lambda: list(active(alertmanager)) == ["CrowdfixOnSiteBreached"], 10, "one left")
    wait_for(
        lambda: ("resolved", "CrowdfixTicketEscalated", str(ticket_id)) in notified(receiver),
        15, "the escalation resolved",
    )  # fmt: skip
    [resolved] = [
        alert
        for post in receiver.taken
        for alert in json.loads(post.body)["alerts"]
        if alert["status"] == "resolved"
    ]
    assert resolved["annotations"]["resolution"].endswith(
        "no longer escalated; sam holds it (assigned)."
    )


def test_an_admin_test_alert_reaches_alertmanager(sessions, worker_for, alertmanager: str) -> None:
    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.main import create_app
    from tests.cloud.factories import token_for

    settings = CloudSettings(
        alert_webhook_url=f"{alertmanager}/api/v2/alerts", alert_webhook_format="alertmanager"
    )
    api = TestClient(create_app(settings, sessions))
    api.headers["Authorization"] = f"Bearer {token_for(sessions, 'admin', 'ada')}"
    assert api.post("/api/alerts/test").status_code == 202
    assert worker_for(sessions).relay_webhooks() == 1  # a worker relays it, as any POST
    test = wait_for(lambda: active(alertmanager).get("CrowdfixTest"), 10, "the test alert")
    assert "a test alert, sent by ada" in test["annotations"]["summary"]
