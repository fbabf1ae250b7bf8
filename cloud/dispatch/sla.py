"""SLA compliance over a period: the share of tickets accepted, on site and resolved in time."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dispatch.schemas import ComplianceOut
from cloud.tickets.lifecycle import OPEN
from cloud.tickets.models import Ticket


def _share(met: list[bool]) -> float | None:
    return round(sum(met) / len(met), 4) if met else None


def compliance(*, db_session: Session, now: datetime, days: float) -> ComplianceOut:
    """Of the dispatched top-level tickets opened in the period: how many met each target
    (a target not reached yet counts once its deadline has passed)."""
    rows = db_session.scalars(
        select(Ticket).where(
            Ticket.opened_at >= now - timedelta(days=days), Ticket.parent_id.is_(None)
        )
    ).all()
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
