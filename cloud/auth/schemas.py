"""Account shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cloud.auth.roles import Role

Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,79}$")]


class LoginIn(BaseModel):
    """Username and password."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=80)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=200)]


class TokenOut(BaseModel):
    """A bearer token, shown once."""

    token: str
    username: str
    role: Role
    expires_at: datetime | None


class UserIn(BaseModel):
    """An account to create."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    role: Role
    password: Annotated[SecretStr, Field(min_length=12, max_length=200)] | None = None
    technician_id: Annotated[str, Field(max_length=64)] | None = None


class UserOut(BaseModel):
    """An account (never its password)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: Role
    technician_id: str | None
    active: bool
    created_at: datetime


class MeOut(BaseModel):
    """Who the caller is."""

    username: str
    role: Role
    technician_id: str | None
