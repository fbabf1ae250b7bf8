"""Site routes."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloud.auth.roles import Role
from cloud.clock import utc_now
from cloud.deps import AdminDep, SessionDep, WriterSessionDep, require
from cloud.errors import Conflict
from cloud.sites import service
from cloud.sites.schemas import SiteIn, SiteOut

router = APIRouter(
    prefix="/api/sites", tags=["sites"], dependencies=[Depends(require(Role.ADMIN, Role.OPERATOR))]
)


@router.get("", response_model=list[SiteOut])
def list_sites(db_session: SessionDep) -> list[SiteOut]:
    """Every site."""
    return [SiteOut.model_validate(s) for s in service.list_all(db_session=db_session)]


@router.get("/{site_id}", response_model=SiteOut)
def get_site(site_id: str, db_session: SessionDep) -> SiteOut:
    """One site."""
    return SiteOut.model_validate(service.get_or_raise(db_session=db_session, site_id=site_id))


@router.put("/{site_id}", response_model=SiteOut)
def put_site(
    site_id: str, site_in: SiteIn, _admin: AdminDep, db_session: WriterSessionDep
) -> SiteOut:
    """Create or replace a site (the id in the path and the body must match)."""
    if site_in.id != site_id:
        raise Conflict(f"the body's id {site_in.id!r} differs from the path's {site_id!r}")
    site = service.upsert(db_session=db_session, site_in=site_in, now=utc_now())
    db_session.commit()
    return SiteOut.model_validate(site)
