"""Who may call what: every route of the OpenAPI document, with every role."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloud.config import CloudSettings
from cloud.main import create_app
from tests.cloud.factories import T0, register, token_for

PUBLIC = "public"
ADMIN, OPERATOR, TECHNICIAN = "admin", "operator", "technician"
STAFF = {ADMIN, OPERATOR}
ANY = {ADMIN, OPERATOR, TECHNICIAN}
SELF = "self"  # staff, and a technician for their own technician id only

# The access matrix, written down independently of the code: a new route without an entry
# here fails the test, so nobody adds one without deciding who may call it.
MATRIX: dict[tuple[str, str], set[str] | str] = {
    ("POST", "/api/auth/login"): PUBLIC,
    ("GET", "/api/auth/me"): ANY,
    ("GET", "/api/users"): {ADMIN},
    ("POST", "/api/users"): {ADMIN},
    ("POST", "/api/users/{user_id}/tokens"): {ADMIN},
    ("DELETE", "/api/users/{user_id}/tokens"): {ADMIN},
    ("POST", "/api/users/{user_id}/disable"): {ADMIN},
    ("POST", "/api/users/{user_id}/enable"): {ADMIN},
    ("GET", "/api/tickets"): STAFF,
    ("GET", "/api/tickets/{ticket_id}"): STAFF,
    ("POST", "/api/tickets/{ticket_id}/transitions"): STAFF,
    ("GET", "/api/devices"): STAFF,
    ("GET", "/api/devices/{device_id}"): STAFF,
    ("PUT", "/api/devices/{device_id}"): {ADMIN},
    ("GET", "/api/devices/{device_id}/telemetry"): STAFF,
    ("GET", "/api/fleet"): STAFF,
    ("GET", "/api/sites"): STAFF,
    ("GET", "/api/sites/{site_id}"): STAFF,
    ("PUT", "/api/sites/{site_id}"): {ADMIN},
    ("GET", "/api/quarantine"): STAFF,
    ("GET", "/api/quarantine/counts"): STAFF,
    ("GET", "/api/alerts"): STAFF,
    ("POST", "/api/alerts/test"): {ADMIN},
    ("GET", "/api/technicians"): STAFF,
    ("GET", "/api/technicians/{technician_id}"): SELF,
    ("GET", "/api/technicians/{technician_id}/history"): SELF,
    ("POST", "/api/technicians/{technician_id}/webhook-secret"): SELF,
    ("PUT", "/api/technicians/{technician_id}"): {ADMIN},
    ("POST", "/api/technicians/import"): {ADMIN},
    ("GET", "/api/technicians/export"): {ADMIN},
    ("PUT", "/api/technicians/{technician_id}/availability"): SELF,
    ("POST", "/api/technicians/{technician_id}/review"): STAFF,
    ("POST", "/api/technicians/{technician_id}/retire"): STAFF,
    ("POST", "/api/technicians/{technician_id}/reinstate"): STAFF,
    ("GET", "/api/offers"): ANY,
    ("POST", "/api/offers/{offer_id}/accept"): {TECHNICIAN},
    ("POST", "/api/offers/{offer_id}/decline"): {TECHNICIAN},
    ("GET", "/api/jobs"): {TECHNICIAN},
    ("POST", "/api/jobs/{ticket_id}/progress"): {TECHNICIAN},
    ("POST", "/api/jobs/{ticket_id}/give-back"): {TECHNICIAN},
    ("GET", "/api/skills"): ANY,
    ("POST", "/api/tickets/{ticket_id}/assign"): STAFF,
    ("GET", "/api/tickets/{ticket_id}/offers"): STAFF,
    ("GET", "/api/tickets/{ticket_id}/sla"): STAFF,
    ("POST", "/api/tickets/{ticket_id}/rating"): STAFF,
    ("GET", "/api/sla/compliance"): STAFF,
    ("GET", "/api/kpis"): STAFF,
    ("POST", "/api/tickets/{ticket_id}/rating-link"): STAFF,
    ("POST", "/api/jobs/{ticket_id}/rating-link"): {TECHNICIAN},
    ("GET", "/api/rate/{token}"): PUBLIC,
    ("POST", "/api/rate/{token}"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/ready"): PUBLIC,
}


@pytest.fixture
def api(sessions) -> tuple[TestClient, dict[str, str]]:
    register(sessions, "dev-1")
    tokens = {
        role: token_for(sessions, role, technician_id="tech-1" if role == TECHNICIAN else None)
        for role in ANY
    }
    return TestClient(create_app(CloudSettings(), sessions)), tokens


def _operations(app_client: TestClient) -> list[tuple[str, str]]:
    paths = app_client.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in ops]


def test_every_route_is_in_the_matrix(api) -> None:
    client, _ = api
    assert sorted(_operations(client)) == sorted(MATRIX)


@pytest.mark.parametrize("role", [None, ADMIN, OPERATOR, TECHNICIAN])
def test_each_role_gets_exactly_its_routes(api, role: str | None) -> None:
    client, tokens = api
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    for method, path in _operations(client):
        allowed = MATRIX[(method, path)]
        url = re.sub(r"\{[^}]+\}", "999", path)  # nothing to find: the guard answers first
        response = client.request(method, url, headers=headers, json=_body(method, path))
        if allowed == SELF and role == TECHNICIAN:
            # Someone else's id is refused; their own gets past the guard.
            assert response.status_code == 403, (role, method, path, response.status_code)
            own = client.request(
                method,
                path.replace("{technician_id}", "tech-1"),
                headers=headers,
                json=_body(method, path),
            )
            assert own.status_code not in (401, 403), (role, method, path, own.text)
            continue
        if allowed == SELF:
            allowed = STAFF
        if allowed == PUBLIC:
            assert response.status_code != 403, (role, method, path)
            assert "log in first" not in response.text, (role, method, path)
        elif role is not None and role in allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        elif role is None:
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers.get("www-authenticate") == "Bearer"
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)


def _body(method: str, path: str) -> Any:
    if path == "/api/auth/login":
        return {"username": "nobody", "password": "x"}
    return {} if method in ("POST", "PUT") else None


def test_a_bad_or_revoked_token_is_refused(api, sessions) -> None:
    client, tokens = api
    assert (
        client.get("/api/tickets", headers={"Authorization": "Bearer cfx_nope"}).status_code == 401
    )
    admin = {"Authorization": f"Bearer {tokens[ADMIN]}"}
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {tokens[OPERATOR]}"})
    users = {u["username"]: u["id"] for u in client.get("/api/users", headers=admin).json()}
    assert (
        client.delete(
            f"/api/users/{users[me.json()['username']]}/tokens", headers=admin
        ).status_code
        == 204
    )
    assert (
        client.get(
            "/api/tickets", headers={"Authorization": f"Bearer {tokens[OPERATOR]}"}
        ).status_code
        == 401
    )


def test_an_admin_closes_an_account_and_its_password_no_longer_logs_in(api, sessions) -> None:
    """Revoking an operator's tokens does not stop them logging in again with their password;
    closing the account does: the login is refused, the tokens stop. No admin closes their
    own account (the last admin would lock everyone out). Opened again, the password works and
    the old token stays revoked."""
    client, tokens = api
    admin = {"Authorization": f"Bearer {tokens[ADMIN]}"}
    operator = {"Authorization": f"Bearer {tokens[OPERATOR]}"}
    users = {u["role"]: u for u in client.get("/api/users", headers=admin).json()}
    olga = users[OPERATOR]
    login = {"username": olga["username"], "password": "correct horse battery staple"}

    closed = client.post(f"/api/users/{olga['id']}/disable", headers=admin)
    assert closed.status_code == 200 and closed.json()["active"] is False
    assert client.get("/api/tickets", headers=operator).status_code == 401
    assert client.post("/api/auth/login", json=login).status_code == 401
    own = client.post(f"/api/users/{users[ADMIN]['id']}/disable", headers=admin)
    assert own.status_code == 409 and "another admin must" in own.text
    assert client.post("/api/users/999/disable", headers=admin).status_code == 404

    opened = client.post(f"/api/users/{olga['id']}/enable", headers=admin)
    assert opened.status_code == 200 and opened.json()["active"] is True
    assert client.get("/api/tickets", headers=operator).status_code == 401
    assert client.post("/api/auth/login", json=login).status_code == 200


def test_tokens_and_passwords_are_hashed_at_rest(api, sessions) -> None:
    from sqlalchemy import select

    from cloud.auth.models import ApiToken, User

    _, tokens = api
    with sessions() as db:
        stored = set(db.scalars(select(ApiToken.token_hash)))
        hashes = list(db.scalars(select(User.password_hash)))
    assert not set(tokens.values()) & stored and all(len(h) == 64 for h in stored)
    assert all(h.startswith("scrypt$") and "battery" not in h for h in hashes)


def test_login_gives_a_token_and_is_rate_limited(api, sessions) -> None:
    from cloud.auth import service as auth
    from cloud.auth.roles import Role
    from cloud.db import transaction

    client, _ = api
    with transaction(sessions) as db:
        auth.create_user(
            db_session=db,
            username="kim",
            role=Role.OPERATOR,
            password="a long enough password",
            now=T0,
        )
    good = client.post(
        "/api/auth/login", json={"username": "kim", "password": "a long enough password"}
    )
    assert good.status_code == 200 and good.json()["role"] == "operator"
    assert "crowdfix_session" in good.cookies
    token = good.json()["token"]
    assert (
        client.get("/api/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    for _ in range(5):
        bad = client.post("/api/auth/login", json={"username": "kim", "password": "wrong"})
        assert bad.status_code == 401
    locked = client.post(
        "/api/auth/login", json={"username": "kim", "password": "a long enough password"}
    )
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
