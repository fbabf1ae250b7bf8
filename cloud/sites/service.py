"""Site use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.errors import Conflict, NotFound
from cloud.sites.models import Site
from cloud.sites.schemas import SiteIn


def get(*, db_session: Session, site_id: str) -> Site | None:
    """The site, if it exists."""
    return db_session.get(Site, site_id)


def get_or_raise(*, db_session: Session, site_id: str) -> Site:
    """The site; NotFound otherwise."""
    site = get(db_session=db_session, site_id=site_id)
    if site is None:
        raise NotFound(f"site {site_id!r} does not exist")
    return site


def list_all(*, db_session: Session) -> Sequence[Site]:
    """Every site, by id."""
    return db_session.scalars(select(Site).order_by(Site.id)).all()


def upsert(*, db_session: Session, site_in: SiteIn, now: datetime) -> Site:
    """Create the site or replace its details."""
    if site_in.timezone:
        try:
            ZoneInfo(site_in.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise Conflict(
                f"time zone {site_in.timezone!r} is unknown: use an IANA name like Europe/Zurich"
            ) from exc
    site = db_session.get(Site, site_in.id)
    if site is None:
        site = Site(id=site_in.id, created_at=now)
        db_session.add(site)
    for field, value in site_in.model_dump(exclude={"id"}).items():
        setattr(site, field, value)
    db_session.flush()
    return site
