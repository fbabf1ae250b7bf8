"""The REST API over a real database."""

from __future__ import annotations

from typing import Any

from cloud.db import transaction
from cloud.quarantine import service as quarantine
from contracts import Rejection
from tests.cloud.factories import T0, fault, ingest, press, register
from tests.cloud.factories import client as logged_in


def client(sessions, role: str = "operator") -> Any:
    return logged_in(sessions, role)


def test_tickets_are_listed_filtered_paged_and_detailed(sessions) -> None:
    register(sessions, "pos-1", "pos-2", site="zurich-hb")
    ingest(sessions, press("pos-1", category="network"))
    ingest(sessions, press("pos-2", category="till"))
    ingest(sessions, press("pos-1", category="till"))
    api = client(sessions)
    page = api.get("/api/tickets").json()
    assert page["total"] == 3 and [t["id"] for t in page["items"]] == [3, 2, 1]
    assert page["items"][0]["opened_at"].startswith("2026-11-23T10:00:00")
    assert [t["id"] for t in api.get("/api/tickets?device_id=pos-1").json()["items"]] == [3, 1]
    assert [t["id"] for t in api.get("/api/tickets?category=network").json()["items"]] == [1]
    assert [t["id"] for t in api.get("/api/tickets?limit=1&offset=1").json()["items"]] == [2]
    assert api.get("/api/tickets?status=open").json()["total"] == 3
    assert (
        api.get("/api/tickets?site_id=zurich-hb&priority=high&category=till").json()["total"] == 2
    )
    assert api.get("/api/tickets?priority=low").json()["total"] == 0
    detail = api.get("/api/tickets/2").json()
    assert detail["device_id"] == "pos-2" and detail["events"][0]["kind"] == "opened"
    assert "Reported by: b button" in detail["description"]
    missing = api.get("/api/tickets/99")
    assert missing.status_code == 404 and "ticket 99 does not exist" in missing.json()["detail"]
    assert api.get("/api/tickets?limit=0").status_code == 422


def test_transitions_through_the_api_are_checked_and_audited(sessions) -> None:
    register(sessions, "pos-1")
    ingest(sessions, press("pos-1"))
    api = client(sessions)
    bad = api.post("/api/tickets/1/transitions", json={"to": "resolved", "reason": ""})
    assert bad.status_code == 422
    illegal = api.post("/api/tickets/1/transitions", json={"to": "on_site", "reason": "x"})
    assert illegal.status_code == 409 and "possible:" in illegal.json()["detail"]
    # Giving it to someone is an assignment, with a technician: not a bare move.
    bare = api.post("/api/tickets/1/transitions", json={"to": "assigned", "reason": "Ana takes it"})
    assert bare.status_code == 409 and "POST /api/tickets/1/assign" in bare.json()["detail"]
    moved = api.post(
        "/api/tickets/1/transitions",
        json={"to": "escalated", "reason": "needs a decision"},
    )
    assert moved.status_code == 200
    body = moved.json()
    assert body["state"] == "escalated" and body["dispatched_at"] is None
    assert body["events"][-1]["actor"].startswith("operator-")  # the operator, by name
    assert body["events"][-1]["reason"] == "needs a decision"


def test_devices_sites_and_their_details(sessions) -> None:
    api = client(sessions, "admin")
    assert (
        api.put(
            "/api/sites/zurich-hb",
            json={"id": "zurich-hb", "name": "Zurich HB", "timezone": "Europe/Zurich"},
        ).status_code
        == 200
    )
    bad_zone = api.put("/api/sites/x", json={"id": "x", "name": "X", "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 409 and "IANA" in bad_zone.json()["detail"]
    no_site = api.put("/api/devices/pos-9", json={"id": "pos-9", "site_id": "nowhere"})
    assert no_site.status_code == 409 and "create it first" in no_site.json()["detail"]
    assert (
        api.put(
            "/api/devices/pos-9",
            json={"id": "pos-9", "site_id": "zurich-hb", "profile": "pos-terminal"},
        ).status_code
        == 200
    )
    assert api.put("/api/devices/pos-9", json={"id": "other"}).status_code == 409
    ingest(sessions, fault("pos-9", "terminal-unreachable"))
    device = api.get("/api/devices/pos-9").json()
    assert device["faults"][0]["code"] == "terminal-unreachable" and device["faults"][0]["active"]
    assert [d["id"] for d in api.get("/api/devices?site_id=zurich-hb").json()] == ["pos-9"]
    assert api.get("/api/sites").json()[0]["name"] == "Zurich HB"
    assert api.get("/api/devices/pos-9/telemetry").json() == {}


def test_quarantine_health_readiness_and_metrics(sessions) -> None:
    with transaction(sessions) as db:
        quarantine.add(
            db_session=db,
            topic="dt/crowdfix/v1/pos-1/button",
            payload=b"\xff{",
            reason=Rejection.MALFORMED_JSON,
            detail="not JSON",
            now=T0,
        )
    api = client(sessions)
    [entry] = api.get("/api/quarantine?reason=malformed_json").json()
    assert entry["device_id"] == "pos-1" and entry["payload"] == "\\xff{"
    assert api.get("/api/quarantine/counts").json() == {"malformed_json": 1}
    assert api.get("/api/health").json()["status"] == "ok"
    assert api.get("/api/ready").json()["status"] == "ready"
    assert "crowdfix_messages_rejected_total" in api.get("/metrics").text
    assert "/api/tickets/{ticket_id}/transitions" in api.get("/openapi.json").json()["paths"]
