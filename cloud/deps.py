"""FastAPI dependencies shared by the routers: database sessions and who is calling."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cloud.auth import service as auth
from cloud.auth.roles import Principal, Role
from cloud.clock import utc_now
from cloud.dispatch.policy import DispatchPolicy
from cloud.errors import Forbidden, Unauthorized

SESSION_COOKIE = "crowdfix_session"
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer cfx_…`")


def get_db(request: Request) -> Iterator[Session]:
    """A session per request from the app's session factory."""
    with request.app.state.sessions() as session:
        yield session


def get_writer_db(request: Request) -> Iterator[Session]:
    """A session for a request that changes things (on SQLite it takes the write lock at
    once, so what it reads cannot change before it writes)."""
    with request.app.state.writer_sessions() as session:
        yield session


def get_rules(request: Request) -> DispatchPolicy:
    """The dispatch rules of the app's settings."""
    rules: DispatchPolicy = request.app.state.rules
    return rules


def get_map_url(request: Request) -> str:
    """The template of a link to a map of a job's place (empty: none)."""
    url: str = request.app.state.settings.map_url
    return url


def get_webhook_key(request: Request) -> bytes:
    """The key technicians' webhook secrets are derived from."""
    key: bytes = request.app.state.settings.webhook_signing_key()
    return key


SessionDep = Annotated[Session, Depends(get_db)]
WebhookKeyDep = Annotated[bytes, Depends(get_webhook_key)]
RulesDep = Annotated[DispatchPolicy, Depends(get_rules)]
MapUrlDep = Annotated[str, Depends(get_map_url)]
# Row ids in paths: positive and within a 32-bit integer (bigger ones cannot exist).
IdPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
WriterSessionDep = Annotated[Session, Depends(get_writer_db)]


def current_principal(
    request: Request,
    db_session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a bearer token (API) or the session cookie (pages)."""
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if token and credentials is None and request.method not in SAFE_METHODS:
        _check_csrf(request)
    if not token:
        raise Unauthorized(
            "log in first: send `Authorization: Bearer <token>` (POST /api/auth/login gives one)"
        )
    principal = auth.authenticate(db_session=db_session, token=token, now=utc_now())
    if principal is None:
        raise Unauthorized("the token is unknown, expired or revoked: log in again")
    return principal


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_COOKIE = "crowdfix_csrf"
CSRF_HEADER = "X-CSRF-Token"


def _check_csrf(request: Request) -> None:
    """A cookie-authenticated change must echo the CSRF cookie in a header (double submit):
    another site can make the browser send the cookie, but cannot read it."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie, header):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header: reload the page and try again")


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only these roles through."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Forbidden(f"{principal.role.value}s may not do this (needs {allowed})")
        return principal

    return check


CallerDep = Annotated[Principal, Depends(current_principal)]
StaffDep = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]
