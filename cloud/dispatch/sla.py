"""SLA compliance and KPIs over a period: the share of tickets accepted, on site and resolved
in time, and the KPI view (times, tickets over time)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.dispatch.kpis import TicketTimes, kpis
from cloud.dispatch.schemas import ComplianceOut, ComplianceRow
from cloud.tickets.lifecycle import OPEN
from cloud.tickets.models import Ticket


def _share(met: list[bool]) -> float | None:
    return round(sum(met) / len(met), 4) if met else None


@dataclass
class _Tally:
    """Targets met and missed, over some tickets."""

    tickets: int = 0
    accepted: list[bool] = field(default_factory=list)
    arrived: list[bool] = field(default_factory=list)
    resolved: list[bool] = field(default_factory=list)
    breached_open: int = 0

    def row(self) -> ComplianceRow:
        return ComplianceRow(
            tickets=self.tickets,
            accepted_in_time=_share(self.accepted),
            on_site_in_time=_share(self.arrived),
            resolved_in_time=_share(self.resolved),
            breached_open=self.breached_open,
        )


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
    """Of the top-level tickets opened in the period: how many met each target (a target
    not reached yet counts once its deadline has passed), in all, by category and by site."""
    everyone = _Tally()
    by_category: dict[str, _Tally] = {}
    by_site: dict[str, _Tally] = {}
    still_open = {s.value for s in OPEN}
    for t in opened_since(db_session=db_session, since=now - timedelta(days=days)):
        tallies = [everyone, by_category.setdefault(t.category, _Tally())]
        if t.site_id:
            tallies.append(by_site.setdefault(t.site_id, _Tally()))
        for name, met_at, due in (
            ("accepted", t.dispatched_at, t.sla_accept_by),
            ("arrived", t.on_site_at, t.sla_arrive_by),
            ("resolved", t.resolved_at, t.sla_resolve_by),
        ):
            if met_at is not None or (now > due and t.state in still_open):
                for tally in tallies:
                    getattr(tally, name).append(met_at is not None and met_at <= due)
        late = t.state in still_open and now > t.sla_arrive_by and t.on_site_at is None
        for tally in tallies:
            tally.tickets += 1
            tally.breached_open += late
    return ComplianceOut(
        **everyone.row().model_dump(),
        by_category={name: tally.row() for name, tally in sorted(by_category.items())},
        by_site={name: tally.row() for name, tally in sorted(by_site.items())},
    )
