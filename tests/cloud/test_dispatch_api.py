"""Dispatch through the API: CSV import with a row report, a technician who sees and acts on
only their own offers and jobs, and an operator who sees why."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cloud.config import CloudSettings
from cloud.main import create_app
from tests.cloud.factories import ingest, located_shop, press, token_for

CSV = """id,name,kind,skills,home_lat,home_lon,radius_km,capacity,certifications
ana,Ana,crowd,printers;pos,47.3800,8.5400,10,1,printers=2030-01-01
ben,Ben,crowd,printers,47.3900,8.5450,10,2,
sam,Sam,staff,printers;network,47.3700,8.5300,25,3,
bad id,Nobody,crowd,printers,47.0,8.0,10,1,
eve,Eve,crowd,printers,95.0,8.0,10,1,
zed,Zed,robot,printers,47.0,8.0,10,1,
"""


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_import_dispatch_and_a_technicians_own_view(sessions, worker_for) -> None:
    located_shop(sessions, "pos-1")
    client = TestClient(create_app(CloudSettings(), sessions))
    admin = headers(token_for(sessions, "admin"))
    operator = headers(token_for(sessions, "operator"))
    ana = headers(token_for(sessions, "technician", technician_id="ana"))
    ben = headers(token_for(sessions, "technician", technician_id="ben"))

    report = client.post(
        "/api/technicians/import", content=CSV, headers=admin | {"Content-Type": "text/csv"}
    )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["imported"] == 3
    assert [(e["row"], e["technician_id"]) for e in body["errors"]] == [
        (5, "bad id"),
        (6, "eve"),
        (7, "zed"),
    ]
    assert "home_lat" in body["errors"][1]["error"] and "kind" in body["errors"][2]["error"]

    ticket_id = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
    worker = worker_for(sessions)
    assert worker.dispatch() == 1  # one offer made

    offers_ana = client.get("/api/offers", headers=ana).json()
    assert [o["ticket_id"] for o in offers_ana] == [ticket_id]
    assert offers_ana[0]["candidates"] == []  # others' scores are not theirs to see
    assert client.get("/api/offers", headers=ben).json() == []
    assert client.get("/api/technicians/ana", headers=ben).status_code == 403
    offer_id = offers_ana[0]["id"]
    assert client.post(f"/api/offers/{offer_id}/accept", json={}, headers=ben).status_code == 404

    why = client.get(f"/api/tickets/{ticket_id}/offers", headers=operator).json()
    assert {c["technician_id"] for c in why[0]["candidates"]} == {"ana", "ben", "sam"}

    accepted = client.post(f"/api/offers/{offer_id}/accept", json={"eta_min": 15}, headers=ana)
    assert accepted.status_code == 200 and accepted.json()["state"] == "assigned"
    assert [j["id"] for j in client.get("/api/jobs", headers=ana).json()] == [ticket_id]
    assert client.get("/api/jobs", headers=ben).json() == []
    assert (
        client.post(
            f"/api/jobs/{ticket_id}/progress", json={"state": "on_site"}, headers=ben
        ).status_code
        == 404
    )
    for state in ("en_route", "on_site", "resolved"):
        step = client.post(f"/api/jobs/{ticket_id}/progress", json={"state": state}, headers=ana)
        assert step.status_code == 200 and step.json()["state"] == state
    assert (
        client.post(
            f"/api/tickets/{ticket_id}/rating", json={"stars": 5}, headers=operator
        ).status_code
        == 200
    )
    techs = {t["id"]: t for t in client.get("/api/technicians", headers=operator).json()}
    assert techs["ana"]["rating"] == 5.0 and techs["ana"]["acceptance_rate"] == 1.0
    clocks = {
        c["target"]: c for c in client.get(f"/api/tickets/{ticket_id}/sla", headers=operator).json()
    }
    assert clocks["arrive"]["met_at"] is not None
    compliance = client.get("/api/sla/compliance?days=30", headers=operator).json()
    assert compliance["tickets"] == 1
