"""SLA compliance and KPIs over a period: the share of tickets accepted, on site and resolved
in time, and the KPI view (times, tickets over time)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dispatch.kpis import TicketTimes, kpis
from cloud.dispatch.schemas import ComplianceOut
from cloud.tickets.lifecycle import OPEN
from cloud.tickets.models import Ticket


def _share(met: list[bool]) -> float | None:
    return round(sum(met) / len(met), 4) if met else None


def opened_since(*, db_session: Session, since: datetime) -> Sequence[Ticket]:
    """The top-level tickets opened since `since` (device tickets under a site ticket are
    counted through it)."""
    return db_session.scalars(
        select(Ticket).where(Ticket.opened_at >= since, Ticket.parent_id.is_(None))
    ).all()


def kpi_view(*, db_session: Session, now: datetime, days: float) -> dict[str, Any]:
    """The KPIs and the SLA compliance of the tickets opened in the last `days`."""
    rows = [
        TicketTimes(
            opened_at=t.opened_at,
            category=t.category,
            site_id=t.site_id,
            accepted_at=t.dispatched_at,
            on_site_at=t.on_site_at,
            resolved_at=t.resolved_at,
        )
        for t in opened_since(db_session=db_session, since=now - timedelta(days=days))
    ]
    view = kpis(rows, now=now, days=days)
    view["compliance"] = compliance(db_session=db_session, now=now, days=days)
    return view


def compliance(*, db_session: Session, now: datetime, days: float) -> ComplianceOut:
    """Of the dispatched top-level tickets opened in the period: how many met each target
    (a target not reached yet counts once its deadline has passed)."""
    rows = opened_since(db_session=db_session, since=now - timedelta(days=days))
    accepted: list[bool] = []
    arrived: list[bool] = []
    resolved: list[bool] = []
    breached_open = 0
    for t in rows:
        for bucket, met_at, due in (
            (accepted, t.dispatched_at, t.sla_accept_by),
            (arrived, t.on_site_at, t.sla_arrive_by),
            (resolved, t.resolved_at, t.sla_resolve_by),
        ):
            if met_at is not None:
                bucket.append(met_at <= due)
            elif now > due and t.state in {s.value for s in OPEN}:
                bucket.append(False)
        if t.state in {s.value for s in OPEN} and now > t.sla_arrive_by and t.on_site_at is None:
            breached_open += 1
    return ComplianceOut(
        tickets=len(rows),
        accepted_in_time=_share(accepted),
        on_site_in_time=_share(arrived),
        resolved_in_time=_share(resolved),
        breached_open=breached_open,
    )
