"""Login, who am I, and account administration."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from cloud.auth import service
from cloud.auth.roles import Principal, Role
from cloud.auth.schemas import LoginIn, MeOut, TokenOut, UserIn, UserOut
from cloud.clock import utc_now
from cloud.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AdminDep,
    CallerDep,
    IdPath,
    SessionDep,
    WriterSessionDep,
)
from cloud.errors import Unauthorized

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/login", response_model=TokenOut)
def login(
    body: LoginIn, request: Request, response: Response, db_session: WriterSessionDep
) -> TokenOut:
    """Username and password for a token (also set as an HTTP-only session cookie).
    Five wrong passwords within five minutes lock the username for five minutes (429)."""
    now = utc_now()
    address = request.client.host if request.client else ""
    try:
        user = service.login(
            db_session=db_session,
            username=body.username,
            password=body.password.get_secret_value(),
            address=address,
            now=now,
        )
    except Unauthorized:
        db_session.commit()  # the failed attempt counts
        raise
    token, record = service.issue_token(
        db_session=db_session, user=user, name="login", now=now, ttl=service.LOGIN_TOKEN_TTL
    )
    db_session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(service.LOGIN_TOKEN_TTL.total_seconds()),
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        httponly=False,  # the page reads it and echoes it in a header
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=int(service.LOGIN_TOKEN_TTL.total_seconds()),
    )
    return TokenOut(
        token=token, username=user.username, role=Role(user.role), expires_at=record.expires_at
    )


@router.get("/auth/me", response_model=MeOut)
def me(caller: CallerDep) -> MeOut:
    """Who the token belongs to."""
    return MeOut(username=caller.username, role=caller.role, technician_id=caller.technician_id)


@router.get("/users", response_model=list[UserOut])
def list_users(_admin: AdminDep, db_session: SessionDep) -> list[UserOut]:
    """Every account (admins only)."""
    return [UserOut.model_validate(u) for u in service.list_users(db_session=db_session)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(body: UserIn, _admin: AdminDep, db_session: WriterSessionDep) -> UserOut:
    """Create an account (admins only)."""
    user = service.create_user(
        db_session=db_session,
        username=body.username,
        role=body.role,
        password=body.password.get_secret_value() if body.password else None,
        technician_id=body.technician_id,
        now=utc_now(),
    )
    db_session.commit()
    return UserOut.model_validate(user)


@router.post("/users/{user_id}/tokens", response_model=TokenOut, status_code=201)
def create_token(user_id: IdPath, _admin: AdminDep, db_session: WriterSessionDep) -> TokenOut:
    """A long-lived API token for an account (admins only; shown once)."""
    user = service.get_or_raise(db_session=db_session, user_id=user_id)
    token, record = service.issue_token(db_session=db_session, user=user, name="api", now=utc_now())
    db_session.commit()
    return TokenOut(
        token=token, username=user.username, role=Role(user.role), expires_at=record.expires_at
    )


@router.post("/users/{user_id}/disable", response_model=UserOut)
def disable_user(user_id: IdPath, admin: AdminDep, db_session: WriterSessionDep) -> UserOut:
    """Close an account (someone who left): no login, every token revoked (admins only, not
    their own). A technician's accounts close with their retirement."""
    return _set_active(db_session, user_id, admin, active=False)


@router.post("/users/{user_id}/enable", response_model=UserOut)
def enable_user(user_id: IdPath, admin: AdminDep, db_session: WriterSessionDep) -> UserOut:
    """Open a closed account again: it logs in with its password or a new token (admins)."""
    return _set_active(db_session, user_id, admin, active=True)


def _set_active(db_session: Session, user_id: int, admin: Principal, *, active: bool) -> UserOut:
    user = service.get_or_raise(db_session=db_session, user_id=user_id)
    service.set_active(
        db_session=db_session, user=user, active=active, caller_id=admin.user_id, now=utc_now()
    )
    db_session.commit()
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}/tokens", status_code=204)
def revoke_tokens(user_id: IdPath, _admin: AdminDep, db_session: WriterSessionDep) -> None:
    """Revoke every token of an account (admins only)."""
    service.get_or_raise(db_session=db_session, user_id=user_id)
    service.revoke_tokens(db_session=db_session, user_id=user_id, now=utc_now())
    db_session.commit()
