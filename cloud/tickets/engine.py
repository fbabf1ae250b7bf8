"""The ticket engine's use cases: load what the rules need, decide (pure), persist.

Every function runs inside the caller's transaction; a race with another worker ends in
a unique-index violation there, and the caller retries the whole message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.devices import service as devices
from cloud.devices.models import Device
from cloud.ingest.models import IngestedMessage
from cloud.sites.models import Site
from cloud.telemetry import service as telemetry
from cloud.tickets import rules
from cloud.tickets import service as tickets
from cloud.tickets.describe import DeviceContext, FaultView, ReadingView, describe, describe_site
from cloud.tickets.lifecycle import OPEN, TicketState
from cloud.tickets.models import Ticket
from cloud.tickets.taxonomy import Priority, ResolvedCategory, Taxonomy
from contracts import Action, ButtonEvent, Severity

OFFLINE_CODE = "device-offline"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The ticket an event landed on, and whether it was opened by it."""

    ticket_id: int
    category: str
    opened: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """One report of a problem on a device: who/what said it, when, and about what."""

    device: Device
    site: Site | None
    category: ResolvedCategory
    trigger: str
    at: datetime
    source: str
    source_message_id: str | None = None
    fault_code: str | None = None
    requested: bool = False
    urgent: bool = False


def _priority(
    taxonomy: Taxonomy, report: Report, severity: Severity | None = None
) -> tuple[Priority, tuple[str, ...]]:
    criticality = report.device.criticality or (report.site.criticality if report.site else None)
    hours = rules.in_business_hours(
        report.at, taxonomy.business_hours, report.site.timezone if report.site else None
    )
    return rules.priority(
        report.category,
        severity=severity,
        urgent=report.urgent,
        site_criticality=Priority.parse(criticality) if criticality else None,
        business_hours=hours,
    )


def on_button(
    *,
    db_session: Session,
    taxonomy: Taxonomy,
    device: Device,
    site: Site | None,
    event: ButtonEvent,
    now: datetime,
) -> Outcome | None:
    """A help button press: open, join or cancel a request."""
    category = taxonomy.for_button(event.category)
    report = Report(
        device,
        site,
        category,
        f"{event.button} button ({event.gesture.value} press, {event.action.value})",
        event.timestamp,
        "button",
        event.message_id,
        requested=event.action is not Action.CANCEL,
        urgent=event.action is Action.URGENT,
    )
    wanted, reasons = _priority(taxonomy, report)
    open_ticket = tickets.find_open(
        db_session=db_session, device_id=device.id, problem_key=category.name
    )
    decision = rules.decide_button(
        event.action,
        tickets.view(open_ticket),
        wanted=wanted,
        reasons=reasons,
        cancelled_later=event.action is not Action.CANCEL
        and _cancelled_later(db_session, device.id, category.name, event.seq),
    )
    return _apply(db_session, taxonomy, decision, report, now)


def _cancelled_later(db_session: Session, device_id: str, problem_key: str, seq: int) -> bool:
    """A cancel from this device and problem with a higher seq was already processed."""
    return (
        db_session.scalars(
            select(IngestedMessage.message_id).where(
                IngestedMessage.device_id == device_id,
                IngestedMessage.problem_key == problem_key,
                IngestedMessage.action == Action.CANCEL.value,
                IngestedMessage.seq > seq,
            )
        ).first()
        is not None
    )


@dataclass(frozen=True, slots=True)
class FaultReport:
    """A raise or clear of one fault code."""

    code: str
    raised: bool
    severity: Severity
    summary: str
    readings: dict[str, float]
    at: datetime
    seq: int  # -1 for the cloud's own (device-offline)
    source_message_id: str | None


def on_fault(
    *,
    db_session: Session,
    taxonomy: Taxonomy,
    device: Device,
    site: Site | None,
    fault: FaultReport,
    now: datetime,
) -> Outcome | None:
    """A fault raised or cleared: open, join, reopen, resolve or note."""
    record = devices.fault(db_session=db_session, device_id=device.id, code=fault.code)
    if not devices.record_fault(
        db_session=db_session,
        record=record,
        raised=fault.raised,
        at=fault.at,
        seq=fault.seq,
        severity=fault.severity.value,
        summary=fault.summary,
        readings=fault.readings,
    ):
        return None  # older than what is known, or already in that state
    category = taxonomy.for_fault(fault.code)
    open_ticket = tickets.find_open(
        db_session=db_session, device_id=device.id, problem_key=category.name
    )
    if not fault.raised:
        decision = rules.decide_fault_cleared(
            fault.code, tickets.view(open_ticket), category.auto_resolve
        )
        report = Report(
            device,
            site,
            category,
            f"{fault.code} cleared",
            fault.at,
            "fault",
            fault.source_message_id,
            fault_code=fault.code,
        )
        return _apply(db_session, taxonomy, decision, report, now)
    report = Report(
        device,
        site,
        category,
        f"fault {fault.code} ({fault.severity.value})"
        + (f": {fault.summary}" if fault.summary else ""),
        fault.at,
        "offline" if fault.code == OFFLINE_CODE else "fault",
        fault.source_message_id,
        fault_code=fault.code,
    )
    wanted, reasons = _priority(taxonomy, report, fault.severity)
    window_start = fault.at - timedelta(minutes=taxonomy.flapping.window_min)
    decision = rules.decide_fault_raised(
        tickets.view(open_ticket),
        tickets.view(
            tickets.find_last(db_session=db_session, device_id=device.id, problem_key=category.name)
        ),
        now=fault.at,
        raise_times=devices.raise_times(
            db_session=db_session, device_id=device.id, code=fault.code, since=window_start
        ),
        flapping_policy=taxonomy.flapping,
        wanted=wanted,
        reasons=reasons,
    )
    return _apply(db_session, taxonomy, decision, report, now)


# -- applying decisions -------------------------------------------------------------------


def _apply(
    db_session: Session,
    taxonomy: Taxonomy,
    decision: rules.Decision,
    report: Report,
    now: datetime,
) -> Outcome | None:
    if isinstance(decision, rules.Ignore):
        return None
    if isinstance(decision, rules.Open):
        ticket = _open(db_session, decision, report, now)
        group_site(db_session=db_session, taxonomy=taxonomy, ticket=ticket, report=report, now=now)
        return Outcome(ticket.id, ticket.category, opened=True)
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=decision.ticket_id, lock=True)
    if isinstance(decision, rules.Join):
        _join(db_session, ticket, decision.priority, decision.flapping, report, now)
    elif isinstance(decision, rules.Reopen):
        _join(db_session, ticket, decision.priority, decision.flapping, report, now)
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.NEW,
            actor=tickets.SYSTEM,
            now=now,
            reason=f"{report.fault_code} raised soon after this ticket was resolved",
        )
        group_site(db_session=db_session, taxonomy=taxonomy, ticket=ticket, report=report, now=now)
    elif isinstance(decision, rules.Cancel):
        ticket.resolution = "cancelled"
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.CANCELLED,
            actor=f"device {report.device.id}",
            now=now,
            reason=f"cancelled at the device: {report.trigger}",
        )
    elif isinstance(decision, rules.FaultCleared):
        _fault_cleared(db_session, ticket, decision, report, now)
    else:
        tickets.record(
            db_session=db_session,
            ticket=ticket,
            actor=tickets.SYSTEM,
            kind="note",
            reason=decision.text,
            now=now,
        )
    return Outcome(ticket.id, ticket.category)


def _open(db_session: Session, decision: rules.Open, report: Report, now: datetime) -> Ticket:
    device = report.device
    readings = [
        ReadingView(r.name, r.value, r.unit, r.at)
        for r in telemetry.latest(db_session=db_session, device_id=device.id)
    ]
    faults = [
        FaultView(f.code, f.severity, f.summary, f.raised_at)
        for f in devices.active_faults(db_session=db_session, device_id=device.id)
    ]
    context = DeviceContext(
        device.id,
        device.profile,
        report.site.name if report.site else None,
        device.presence,
        device.agent_version,
        device.backlog,
    )
    title, description, snapshot = describe(
        report.category, context, report.trigger, report.at, readings, faults
    )
    return tickets.create(
        db_session=db_session,
        new=tickets.NewTicket(
            category=report.category,
            priority=decision.priority,
            source=report.source,
            title=title,
            description=description,
            snapshot=snapshot,
            opened_at=report.at,
            device_id=device.id,
            site_id=device.site_id,
            requested=report.requested,
            urgent=report.urgent,
            flapping=decision.flapping,
            active_faults=(report.fault_code,) if report.fault_code else (),
            source_message_id=report.source_message_id,
        ),
        reasons=decision.reasons,
        now=now,
    )


def _join(
    db_session: Session,
    ticket: Ticket,
    priority: Priority | None,
    flapping: bool,
    report: Report,
    now: datetime,
) -> None:
    tickets.occurrence(
        db_session=db_session,
        ticket=ticket,
        at=report.at,
        what=report.trigger,
        now=now,
        priority=priority,
    )
    ticket.requested = ticket.requested or report.requested
    ticket.urgent = ticket.urgent or report.urgent
    if report.fault_code and report.fault_code not in ticket.active_faults:
        ticket.active_faults = [*ticket.active_faults, report.fault_code]
    if flapping and not ticket.flapping:
        ticket.flapping = True
        tickets.record(
            db_session=db_session,
            ticket=ticket,
            actor=tickets.SYSTEM,
            kind="flapping",
            now=now,
            reason=f"{report.fault_code} keeps coming back: held open for a technician",
        )


def _fault_cleared(
    db_session: Session,
    ticket: Ticket,
    decision: rules.FaultCleared,
    report: Report,
    now: datetime,
) -> None:
    ticket.active_faults = [c for c in ticket.active_faults if c != report.fault_code]
    ticket.updated_at = now
    if decision.resolve:
        ticket.resolution = "auto"
        tickets.transition(
            db_session=db_session,
            ticket=ticket,
            to=TicketState.RESOLVED,
            actor=tickets.SYSTEM,
            reason=decision.note,
            now=now,
        )
    else:
        tickets.record(
            db_session=db_session,
            ticket=ticket,
            actor=tickets.SYSTEM,
            kind="fault_cleared",
            reason=decision.note,
            now=now,
        )


# -- site grouping ------------------------------------------------------------------------


def group_site(
    *, db_session: Session, taxonomy: Taxonomy, ticket: Ticket, report: Report, now: datetime
) -> None:
    """Link this device ticket (and its site's siblings) to one site-level ticket if needed."""
    site = report.site
    if site is None:
        return
    category = report.category
    rows = db_session.scalars(
        select(Ticket).where(
            Ticket.site_id == site.id,
            Ticket.problem_key == category.name,
            Ticket.state.in_([s.value for s in OPEN]),
        )
    ).all()
    site_ticket = next((t for t in rows if t.is_site), None)
    candidates = [
        rules.SiteCandidate(t.id, t.device_id or "", t.opened_at, t.parent_id)
        for t in rows
        if not t.is_site
    ]
    decision = rules.decide_site_grouping(
        candidates,
        site_ticket.id if site_ticket else None,
        now=now,
        policy=taxonomy.site_grouping,
    )
    if decision is None:
        return
    members = [t for t in rows if not t.is_site]
    if site_ticket is None:
        site_ticket = _open_site_ticket(db_session, site, category, members, now)
    for child in members:
        if child.id in decision.link:
            child.parent_id = site_ticket.id
            tickets.record(
                db_session=db_session,
                ticket=child,
                actor=tickets.SYSTEM,
                kind="linked",
                now=now,
                reason=f"part of site ticket {site_ticket.id}: not dispatched alone",
            )


def _open_site_ticket(
    db_session: Session,
    site: Site,
    category: ResolvedCategory,
    members: list[Ticket],
    now: datetime,
) -> Ticket:
    top = max((Priority.parse(t.priority) for t in members), default=category.priority)
    devices_ = [t.device_id for t in members if t.device_id]
    return tickets.create(
        db_session=db_session,
        new=tickets.NewTicket(
            category=category,
            priority=Priority(min(Priority.CRITICAL, top + 1)),
            source="site",
            title=f"{category.title}: {len(devices_)} devices at {site.name}",
            description=describe_site(category, site.name, devices_),
            snapshot={"devices": sorted(devices_)},
            opened_at=min(t.opened_at for t in members),
            site_id=site.id,
            is_site=True,
            requested=any(t.requested for t in members),
        ),
        reasons=(
            f"{len(devices_)} devices of {site.name} report it within "
            f"{category.name} grouping window; one level above the highest device ticket",
        ),
        now=now,
    )
