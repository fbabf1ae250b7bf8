"""Quarantine routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cloud.auth.roles import Role
from cloud.deps import SessionDep, require
from cloud.quarantine import service
from cloud.quarantine.schemas import QuarantinedOut

router = APIRouter(
    prefix="/api/quarantine",
    tags=["quarantine"],
    dependencies=[Depends(require(Role.ADMIN, Role.OPERATOR))],
)


@router.get("", response_model=list[QuarantinedOut])
def list_quarantine(
    db_session: SessionDep,
    reason: str | None = None,
    device_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> list[QuarantinedOut]:
    """Refused messages, newest first; filter by reason or device."""
    rows = service.list_recent(
        db_session=db_session, reason=reason, device_id=device_id, limit=limit, offset=offset
    )
    return [QuarantinedOut.model_validate(r) for r in rows]


@router.get("/counts")
def quarantine_counts(db_session: SessionDep) -> dict[str, int]:
    """How many messages were refused, by reason."""
    return service.counts(db_session=db_session)
