"""The REST API over a real database."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from cloud.config import CloudSettings
from cloud.db import transaction
from cloud.ingest.service import ingest
from cloud.main import create_app
from contracts import ButtonEvent

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_tickets_and_devices_are_listed(sessions) -> None:
    with transaction(sessions) as db_session:
        for i, device in enumerate(["pos-1", "pos-2", "pos-1"]):
            ingest(
                db_session=db_session,
                message=ButtonEvent(
                    device_id=device,
                    timestamp=NOW,
                    seq=i,
                    button="b",
                    category="till" if i else "network",
                ),
                now=NOW,
            )
    client = TestClient(create_app(CloudSettings(), sessions))
    body = client.get("/api/tickets").json()
    assert [t["id"] for t in body] == [3, 2, 1]
    assert body[0]["opened_at"].startswith("2026-11-23T10:00:00")
    assert [t["id"] for t in client.get("/api/tickets?device_id=pos-1").json()] == [3, 1]
    assert [t["id"] for t in client.get("/api/tickets?category=network").json()] == [1]
    assert [t["id"] for t in client.get("/api/tickets?limit=1&offset=1").json()] == [2]
    assert client.get("/api/tickets/2").json()["device_id"] == "pos-2"
    missing = client.get("/api/tickets/99")
    assert missing.status_code == 404 and "ticket 99 does not exist" in missing.json()["detail"]
    assert client.get("/api/tickets?limit=0").status_code == 422
    assert [d["id"] for d in client.get("/api/devices").json()] == ["pos-1", "pos-2"]
    assert client.get("/api/health").json()["status"] == "ok"
    assert "/api/tickets" in client.get("/openapi.json").json()["paths"]
