"""Account use cases: users, tokens, login with a rate limit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cloud.auth.models import ApiToken, FailedLogin, User
from cloud.auth.passwords import hash_password, new_token, token_hash, verify_password
from cloud.auth.roles import Principal, Role
from cloud.errors import Conflict, NotFound, TooManyAttempts, Unauthorized

LOGIN_WINDOW = timedelta(minutes=5)
LOGIN_MAX_FAILURES = 5
LOGIN_TOKEN_TTL = timedelta(hours=12)


def create_user(
    *,
    db_session: Session,
    username: str,
    role: Role,
    password: str | None,
    now: datetime,
    technician_id: str | None = None,
) -> User:
    """A new account; technicians must name the technician they act for."""
    if db_session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already")
    if role is Role.TECHNICIAN and not technician_id:
        raise Conflict("a technician account needs the technician_id it acts for")
    user = User(
        username=username,
        role=role.value,
        technician_id=technician_id,
        active=True,
        password_hash=hash_password(password) if password else None,
        created_at=now,
    )
    db_session.add(user)
    db_session.flush()
    return user


def get_by_name(*, db_session: Session, username: str) -> User | None:
    """The account with this username."""
    return db_session.scalars(select(User).where(User.username == username)).first()


def list_users(*, db_session: Session) -> Sequence[User]:
    """Every account."""
    return db_session.scalars(select(User).order_by(User.username)).all()


def issue_token(
    *, db_session: Session, user: User, name: str, now: datetime, ttl: timedelta | None = None
) -> tuple[str, ApiToken]:
    """A new bearer token for the user; the plain token is returned once, only its hash kept."""
    token = new_token()
    record = ApiToken(
        user_id=user.id,
        token_hash=token_hash(token),
        name=name,
        created_at=now,
        expires_at=now + ttl if ttl else None,
    )
    db_session.add(record)
    db_session.flush()
    return token, record


def authenticate(*, db_session: Session, token: str, now: datetime) -> Principal | None:
    """Who a bearer token belongs to, if it is valid."""
    row = db_session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    user, record = row
    if not user.active or record.revoked_at is not None:
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    return Principal(user.id, user.username, Role(user.role), user.technician_id)


def login(
    *, db_session: Session, username: str, password: str, address: str, now: datetime
) -> User:
    """Check a password; refuse for a while after LOGIN_MAX_FAILURES failures."""
    since = now - LOGIN_WINDOW
    failures = (
        db_session.scalar(
            select(func.count())
            .select_from(FailedLogin)
            .where(FailedLogin.username == username, FailedLogin.at >= since)
        )
        or 0
    )
    if failures >= LOGIN_MAX_FAILURES:
        raise TooManyAttempts(
            f"too many failed logins for {username!r}: try again in a few minutes",
            int(LOGIN_WINDOW.total_seconds()),
        )
    user = get_by_name(db_session=db_session, username=username)
    if (
        user is None
        or not user.active
        or user.password_hash is None
        or not verify_password(password, user.password_hash)
    ):
        db_session.add(FailedLogin(username=username, address=address[:64], at=now))
        db_session.execute(delete(FailedLogin).where(FailedLogin.at < now - 4 * LOGIN_WINDOW))
        raise Unauthorized("wrong username or password")
    return user


def revoke_tokens(*, db_session: Session, user_id: int, now: datetime) -> int:
    """Revoke every token of a user; returns how many."""
    tokens = db_session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    for record in tokens:
        record.revoked_at = now
    return len(tokens)


def set_active(
    *, db_session: Session, user: User, active: bool, now: datetime, caller_id: int | None = None
) -> User:
    """Open or close an account: a closed one cannot log in and its tokens are revoked (they
    stay revoked when it is opened again). Nobody closes their own (caller_id): another admin
    must."""
    if not active and user.id == caller_id:
        raise Conflict("you cannot disable your own account: another admin must")
    user.active = active
    if not active:
        revoke_tokens(db_session=db_session, user_id=user.id, now=now)
    return user


def get_or_raise(*, db_session: Session, user_id: int) -> User:
    """The account; NotFound otherwise."""
    user = db_session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def set_password(*, db_session: Session, user: User, password: str) -> None:
    """Replace an account's password."""
    user.password_hash = hash_password(password)
