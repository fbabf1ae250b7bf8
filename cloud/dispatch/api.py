"""Dispatch routes: technicians (admin), offers and jobs (the technician's own), and the
operator's assignment, explanation, SLA and rating routes on tickets."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.roles import Principal, Role
from cloud.clock import utc_now
from cloud.deps import (
    AdminDep,
    CallerDep,
    IdPath,
    MapUrlDep,
    RulesDep,
    SessionDep,
    StaffDep,
    WebhookKeyDep,
    WriterSessionDep,
    require,
)
from cloud.dispatch import csvimport, history, ratings, service
from cloud.dispatch.models import Offer, Technician
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import (
    AcceptIn,
    AssignIn,
    AvailabilityIn,
    CertificationDue,
    ComplianceOut,
    DeclineIn,
    GiveBackIn,
    HistoryJobOut,
    HistoryTotalsOut,
    ImportResult,
    JobOut,
    KpiOut,
    OfferOut,
    PlaceView,
    ProgressIn,
    RatingIn,
    RatingInviteOut,
    RatingLinkOut,
    RequesterRatingIn,
    RetireIn,
    ReviewIn,
    SlaOut,
    TechnicianChangeOut,
    TechnicianHistoryOut,
    TechnicianId,
    TechnicianIn,
    TechnicianOut,
    WebhookHealthOut,
    WebhookSecretOut,
)
from cloud.dispatch.sla import compliance, kpi_view
from cloud.tickets.api import detail
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from cloud.tickets.schemas import TicketDetail, TicketOut

TechnicianDep = Annotated[Principal, Depends(require(Role.TECHNICIAN))]
router = APIRouter(tags=["dispatch"])


def technician_out(
    db_session: Session,
    tech: Technician,
    jobs: dict[str, int],
    rules: DispatchPolicy,
    answers: dict[str, list[bool]] | None = None,
) -> TechnicianOut:
    """A technician with their KPIs (answers: everyone's, read at once for a list)."""
    if answers is None:
        answers = service.outcomes(db_session=db_session, rules=rules, technician_id=tech.id)
    outcomes = answers.get(tech.id, [])
    out = TechnicianOut.model_validate(tech)
    now = utc_now()
    duty = service.shift_status(tech, now)
    out.on_shift, out.shift_changes_at = duty.on_shift, duty.changes_at
    out.on_leave = str(duty.on_leave) if duty.on_leave else None
    out.certifications_due = [
        CertificationDue(skill=skill, expires_at=until, expired=until <= now)
        for skill, until in service.certifications_due(tech, now)
    ]
    out.rating = round(tech.rating_sum / tech.rating_count, 2) if tech.rating_count else None
    out.acceptance_rate = round(sum(outcomes) / len(outcomes), 3) if outcomes else None
    out.active_jobs = jobs.get(tech.id, 0)
    health = service.webhook_health(db_session=db_session, tech=tech)
    out.webhook = WebhookHealthOut.model_validate(health) if health else None
    return out


def _saved(db_session: Session, tech: Technician, rules: DispatchPolicy) -> TechnicianOut:
    """Commit a change to a technician; the technician as they are now."""
    db_session.commit()
    return technician_out(db_session, tech, service.active_jobs(db_session=db_session), rules)


@router.get("/api/technicians", response_model=list[TechnicianOut])
def list_technicians(
    _staff: StaffDep, db_session: SessionDep, rules: RulesDep
) -> list[TechnicianOut]:
    """Every technician with availability, skills and KPIs."""
    jobs = service.active_jobs(db_session=db_session)
    answers = service.outcomes(db_session=db_session, rules=rules)
    techs = db_session.scalars(select(Technician).order_by(Technician.id))
    return [technician_out(db_session, t, jobs, rules, answers) for t in techs]


@router.get(
    "/api/technicians/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_technicians(_admin: AdminDep, db_session: SessionDep) -> PlainTextResponse:
    """The roster as CSV, in the columns the import reads (retired technicians left out):
    edit it and import it again."""
    techs = db_session.scalars(
        select(Technician).where(Technician.retired_at.is_(None)).order_by(Technician.id)
    )
    return PlainTextResponse(
        csvimport.export_csv(techs),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="technicians.csv"'},
    )


@router.get("/api/technicians/{technician_id}", response_model=TechnicianOut)
def get_technician(
    technician_id: TechnicianId, caller: CallerDep, db_session: SessionDep, rules: RulesDep
) -> TechnicianOut:
    """One technician (a technician may read only themselves)."""
    service.forbid_foreign_technician(caller, technician_id)
    tech = service.get_technician(db_session=db_session, technician_id=technician_id)
    return technician_out(db_session, tech, service.active_jobs(db_session=db_session), rules)


@router.get("/api/technicians/{technician_id}/history", response_model=TechnicianHistoryOut)
def technician_history(
    technician_id: TechnicianId,
    caller: CallerDep,
    db_session: SessionDep,
    map_url: MapUrlDep,
    rules: RulesDep,
    limit: Annotated[int, Query(ge=1, le=500, description="jobs and offers listed")] = 50,
    days: Annotated[
        float | None, Query(gt=0, le=3660, description="only the last so many days (all: none)")
    ] = None,
) -> TechnicianHistoryOut:
    """Every job the technician held (given back or reassigned ones too) and every offer
    made to them, counted, with the latest listed; or those of the last `days` (a technician
    may read only their own)."""
    service.forbid_foreign_technician(caller, technician_id)
    tech = service.get_technician(db_session=db_session, technician_id=technician_id)
    since = utc_now() - timedelta(days=days) if days is not None else None
    jobs, held = service.jobs_held(db_session=db_session, technician_id=technician_id, since=since)
    counts = service.offer_counts(db_session=db_session, technician_id=technician_id, since=since)
    done = history.totals(jobs, {i: t.sla_arrive_by for i, t in held.items()})
    query = select(Offer).where(Offer.technician_id == technician_id)
    if since is not None:
        query = query.where(Offer.offered_at >= since)
    offers = db_session.scalars(
        query.order_by(Offer.offered_at.desc(), Offer.id.desc()).limit(limit)
    )
    return TechnicianHistoryOut(
        technician=technician_out(
            db_session, tech, service.active_jobs(db_session=db_session), rules
        ),
        totals=HistoryTotalsOut(
            offers=counts.total(),
            offers_by_state=dict(counts),
            decline_reasons=service.decline_reasons(
                db_session=db_session, technician_id=technician_id, since=since
            ),
            jobs=done,
        ),
        jobs=[_job_out(job, held[job.ticket_id]) for job in reversed(jobs[-limit:])],
        offers=[_offer_out(o, caller, db_session, map_url) for o in offers],
        changes=[
            TechnicianChangeOut.model_validate(c)
            for c in service.changes(db_session=db_session, technician_id=tech.id, limit=limit)
        ],
    )


def _job_out(job: history.HeldJob, ticket: Ticket) -> HistoryJobOut:
    resolved_it = job.ending is history.Ending.RESOLVED and job.ended_at == ticket.resolved_at
    return HistoryJobOut(
        ticket_id=job.ticket_id,
        title=ticket.title,
        category=ticket.category,
        assigned_at=job.assigned_at,
        assigned_how=job.assigned_how,
        en_route_at=job.en_route_at,
        on_site_at=job.on_site_at,
        on_site_by=ticket.sla_arrive_by,
        on_site_in_time=history.in_time(job, ticket.sla_arrive_by),
        ended_at=job.ended_at,
        ending=job.ending.value,
        end_reason=job.end_reason,
        ended_by=job.ended_by,
        rating=ticket.rating if resolved_it else None,
    )


@router.put("/api/technicians/{technician_id}", response_model=TechnicianOut)
def put_technician(
    technician_id: TechnicianId,
    body: TechnicianIn,
    _admin: AdminDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TechnicianOut:
    """Create a technician, or change the details sent of one who exists: what is left out
    keeps its value (their toggle, hours and webhook are theirs to set too); KPIs are kept.
    Waiting tickets look again at the next round: the change may let someone take one."""
    now = utc_now()
    tech = csvimport.upsert(
        db_session=db_session, technician_id=technician_id, body=body, now=now,
        only=body.model_fields_set,
    )  # fmt: skip
    service.wake_waiting(db_session=db_session, now=now)
    return _saved(db_session, tech, rules)


@router.post("/api/technicians/import", response_model=ImportResult)
def import_technicians(
    _admin: AdminDep,
    db_session: WriterSessionDep,
    csv_file: Annotated[bytes, Body(media_type="text/csv", max_length=2_000_000)],
    dry_run: Annotated[
        bool, Query(description="check the file and say what it would do; save nothing")
    ] = False,
) -> ImportResult:
    """Bulk import from CSV (header: id,name,kind,skills,home_lat,home_lon,radius_km,capacity,
    and optionally certifications,shifts,time_off,timezone); good rows are imported, each bad row is
    reported with its error. A technician who exists changes only in what their row says.
    The answer says who is new and what changes for whom; with `dry_run` nothing is saved.
    New or changed technicians have waiting tickets look again at the next round.
    UTF-8, or Windows-1252 as spreadsheets save CSV in western European languages."""
    text = csvimport.decode(csv_file)
    now = utc_now()
    result = csvimport.import_csv(db_session=db_session, text=text, now=now)
    if dry_run:
        db_session.rollback()
        result.dry_run = True
    else:
        if result.created or result.changed:  # someone may now take a waiting ticket
            service.wake_waiting(db_session=db_session, now=now)
        db_session.commit()
    return result


@router.put("/api/technicians/{technician_id}/availability", response_model=TechnicianOut)
def set_availability(
    technician_id: TechnicianId,
    body: AvailabilityIn,
    caller: CallerDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TechnicianOut:
    """Available or not (the toggle), the current position when shared, working hours and
    time zone: each only when sent (the technician, or staff)."""
    service.forbid_foreign_technician(caller, technician_id)
    tech = service.set_availability(
        db_session=db_session, technician_id=technician_id, change=body, now=utc_now()
    )
    return _saved(db_session, tech, rules)


@router.post("/api/technicians/{technician_id}/webhook-secret", response_model=WebhookSecretOut)
def new_webhook_secret(
    technician_id: TechnicianId, caller: CallerDep, db_session: WriterSessionDep, key: WebhookKeyDep
) -> WebhookSecretOut:
    """A new secret for checking the signature on every POST to the technician's webhook,
    shown this once (the old one stops at once; the technician, or staff)."""
    service.forbid_foreign_technician(caller, technician_id)
    secret = service.rotate_webhook_secret(
        db_session=db_session, technician_id=technician_id, key=key
    )
    db_session.commit()
    return WebhookSecretOut(secret=secret)


@router.post("/api/technicians/{technician_id}/review", response_model=TechnicianOut)
def review_technician(
    technician_id: TechnicianId,
    body: ReviewIn,
    caller: StaffDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TechnicianOut:
    """Lift a policy pause after reviewing the technician."""
    tech = service.review(
        db_session=db_session,
        technician_id=technician_id,
        caller=caller,
        note=body.note,
        now=utc_now(),
    )
    return _saved(db_session, tech, rules)


@router.post("/api/technicians/{technician_id}/retire", response_model=TechnicianOut)
def retire_technician(
    technician_id: TechnicianId,
    body: RetireIn,
    caller: StaffDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TechnicianOut:
    """The technician leaves: no more offers, their pending offers withdrawn and open jobs
    re-dispatched (they are told), their accounts closed; history and ratings stay. Their
    broker account goes with `crowdfix provision retired` on the broker's host."""
    tech = service.retire(
        db_session=db_session, technician_id=technician_id, caller=caller, reason=body.reason,
        now=utc_now(), rules=rules,
    )  # fmt: skip
    return _saved(db_session, tech, rules)


@router.post("/api/technicians/{technician_id}/reinstate", response_model=TechnicianOut)
def reinstate_technician(
    technician_id: TechnicianId, caller: StaffDep, db_session: WriterSessionDep, rules: RulesDep
) -> TechnicianOut:
    """A retired technician returns: offers resume, their accounts may sign in again."""
    tech = service.reinstate(
        db_session=db_session, technician_id=technician_id, caller=caller, now=utc_now()
    )
    return _saved(db_session, tech, rules)


# -- offers and jobs ----------------------------------------------------------------------


@router.get("/api/offers", response_model=list[OfferOut])
def list_offers(
    caller: CallerDep,
    db_session: SessionDep,
    map_url: MapUrlDep,
    state: str | None = None,
    brief: Annotated[
        bool, Query(description="leave out the candidates (the technicians considered)")
    ] = False,
) -> list[OfferOut]:
    """A technician's own offers (staff: everyone's), newest first."""
    query = select(Offer).order_by(Offer.offered_at.desc(), Offer.id.desc()).limit(200)
    if not caller.is_staff():
        query = query.where(Offer.technician_id == (caller.technician_id or ""))
    if state:
        query = query.where(Offer.state == state)
    offers = db_session.scalars(query).all()
    return [_offer_out(o, caller, db_session, map_url, brief) for o in offers]


def _where(db_session: Session, ticket: Ticket, map_url: str) -> PlaceView | None:
    """Where the ticket's job is, with a link to a map of it (CROWDFIX_MAP_URL)."""
    return service.place(db_session=db_session, ticket=ticket, map_url=map_url)


def _offer_out(
    offer: Offer, caller: Principal, db_session: Session, map_url: str, brief: bool = False
) -> OfferOut:
    out = OfferOut.model_validate(offer)
    ticket = db_session.get(Ticket, offer.ticket_id)
    if ticket is not None:
        out.title, out.category = ticket.title, ticket.category
        out.where = _where(db_session, ticket, map_url)
        out.arrive_by = ticket.sla_arrive_by
    if brief or not caller.is_staff():
        out.candidates = []  # other technicians' scores are not a technician's business
        out.left_out = {}
    return out


@router.post("/api/offers/{offer_id}/accept", response_model=TicketOut)
def accept_offer(
    offer_id: IdPath, body: AcceptIn, caller: TechnicianDep, db_session: WriterSessionDep
) -> TicketOut:
    """Take the job (before the deadline); the device shows that help is on its way."""
    ticket = service.accept(
        db_session=db_session, offer_id=offer_id, caller=caller, now=utc_now(), eta_min=body.eta_min
    )
    db_session.commit()
    return TicketOut.model_validate(ticket)


@router.post("/api/offers/{offer_id}/decline", response_model=OfferOut)
def decline_offer(
    offer_id: IdPath,
    body: DeclineIn,
    caller: TechnicianDep,
    db_session: WriterSessionDep,
    map_url: MapUrlDep,
    rules: RulesDep,
) -> OfferOut:
    """Say no, with a reason; the next technician gets the offer at once."""
    service.decline(
        db_session=db_session,
        offer_id=offer_id,
        caller=caller,
        reason=body.reason,
        now=utc_now(),
        rules=rules,
    )
    db_session.commit()
    offer = service.own_offer(db_session=db_session, offer_id=offer_id, caller=caller)
    return _offer_out(offer, caller, db_session, map_url)


@router.get("/api/jobs", response_model=list[JobOut])
def list_jobs(
    caller: TechnicianDep, db_session: SessionDep, map_url: MapUrlDep, status: str = "open"
) -> list[JobOut]:
    """The calling technician's tickets (open by default; `all` for their history), each
    with where it is."""
    query = select(Ticket).where(Ticket.technician_id == caller.technician_id)
    if status == "open":
        query = query.where(Ticket.state.in_(["assigned", "en_route", "on_site"]))
    rows = db_session.scalars(query.order_by(Ticket.opened_at.desc()).limit(200))
    return [
        JobOut(
            **TicketOut.model_validate(t).model_dump(),
            where=_where(db_session, t, map_url),
        )
        for t in rows
    ]


@router.post("/api/jobs/{ticket_id}/progress", response_model=TicketOut)
def job_progress(
    ticket_id: IdPath, body: ProgressIn, caller: TechnicianDep, db_session: WriterSessionDep
) -> TicketOut:
    """En route (with ETA), on site, or resolved (with notes); the device is told each."""
    ticket = service.own_ticket(db_session=db_session, ticket_id=ticket_id, caller=caller)
    service.progress(
        db_session=db_session,
        ticket=ticket,
        to=TicketState(body.state),
        actor=caller.technician_id or caller.username,  # the technician, or staff by name
        now=utc_now(),
        reason=body.notes,
        eta_min=body.eta_min,
    )
    db_session.commit()
    return TicketOut.model_validate(ticket)


@router.get("/api/skills", response_model=list[str])
def skills(request: Request, _caller: CallerDep, db_session: SessionDep) -> list[str]:
    """Every skill crowdfix knows of: the taxonomy's categories' and the technicians' (a job
    given back as needing more skill names some of these)."""
    return service.known_skills(db_session=db_session, taxonomy=request.app.state.taxonomy)


@router.post("/api/jobs/{ticket_id}/give-back", response_model=TicketOut)
def job_give_back(
    request: Request,
    ticket_id: IdPath,
    body: GiveBackIn,
    caller: TechnicianDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TicketOut:
    """Drop the job or report that it needs other skills (ones crowdfix knows: GET
    /api/skills): it is dispatched again."""
    ticket = service.own_ticket(db_session=db_session, ticket_id=ticket_id, caller=caller)
    service.give_back(
        db_session=db_session,
        ticket=ticket,
        actor=caller.technician_id or caller.username,
        now=utc_now(),
        reason=body.reason,
        extra_skills=body.needs_skills,
        rules=rules,
        known_skills=service.known_skills(
            db_session=db_session, taxonomy=request.app.state.taxonomy
        ),
    )
    db_session.commit()
    return TicketOut.model_validate(ticket)


# -- the operator on tickets --------------------------------------------------------------


@router.post("/api/tickets/{ticket_id}/assign", response_model=TicketDetail)
def assign_ticket(
    ticket_id: IdPath,
    body: AssignIn,
    caller: StaffDep,
    db_session: WriterSessionDep,
    map_url: MapUrlDep,
) -> TicketDetail:
    """Assign or reassign by hand (a pending offer is withdrawn)."""
    ticket = service.assign(
        db_session=db_session,
        ticket_id=ticket_id,
        technician_id=body.technician_id,
        caller=caller,
        now=utc_now(),
        reason=body.reason,
        map_url=map_url,
    )
    db_session.commit()
    return detail(db_session, ticket)


@router.get("/api/tickets/{ticket_id}/offers", response_model=list[OfferOut])
def ticket_offers(ticket_id: IdPath, _staff: StaffDep, db_session: SessionDep) -> list[OfferOut]:
    """Every offer made for the ticket, with the candidates and scores behind each choice."""
    offers = service.offers_of(db_session=db_session, ticket_id=ticket_id)
    return [OfferOut.model_validate(o) for o in offers]


@router.get("/api/tickets/{ticket_id}/sla", response_model=list[SlaOut])
def ticket_sla(
    ticket_id: IdPath, _staff: StaffDep, db_session: SessionDep, rules: RulesDep
) -> list[SlaOut]:
    """The ticket's SLA clocks: accepted, on site, resolved; warned, breached or met."""
    from cloud.tickets import service as tickets

    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id)
    return [
        SlaOut.model_validate(c, from_attributes=True)
        for c in service.sla(ticket, utc_now(), rules)
    ]


@router.post("/api/tickets/{ticket_id}/rating", response_model=TicketOut)
def rate_ticket(
    ticket_id: IdPath,
    body: RatingIn,
    caller: StaffDep,
    db_session: WriterSessionDep,
    rules: RulesDep,
) -> TicketOut:
    """Rate the technician's work on a resolved ticket (1-5, once)."""
    ticket = service.rate(
        db_session=db_session,
        ticket_id=ticket_id,
        stars=body.stars,
        rated_by=caller.username,
        now=utc_now(),
        rules=rules,
    )
    db_session.commit()
    return TicketOut.model_validate(ticket)


@router.get("/api/sla/compliance", response_model=ComplianceOut)
def sla_compliance(
    _staff: StaffDep, db_session: SessionDep, days: Annotated[float, Query(gt=0, le=366)] = 7.0
) -> ComplianceOut:
    """SLA compliance of the tickets opened in the last `days`."""
    return compliance(db_session=db_session, now=utc_now(), days=days)


@router.get("/api/kpis", response_model=KpiOut)
def get_kpis(
    _staff: StaffDep, db_session: SessionDep, days: Annotated[float, Query(gt=0, le=366)] = 7.0
) -> KpiOut:
    """Mean and median time to accept, arrive and resolve, SLA compliance, and tickets by
    category and by site over time (hourly up to two days, daily beyond)."""
    return KpiOut.model_validate(kpi_view(db_session=db_session, now=utc_now(), days=days))


# -- the requester's rating ---------------------------------------------------------------

RatingToken = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,64}$")]


def _rating_link(request: Request, db_session: Session, ticket_id: int, by: str) -> RatingLinkOut:
    token, expires = ratings.create_link(
        db_session=db_session, ticket_id=ticket_id, by=by, now=utc_now()
    )
    db_session.commit()
    base = request.app.state.settings.public_url or str(request.base_url)
    # The token travels in the fragment: browsers never send it to a server or a Referer.
    url = f"{base.rstrip('/')}/ui/rate#{token}"
    return RatingLinkOut(url=url, expires_at=expires, qr_svg=ratings.qr_svg(url))


@router.post("/api/tickets/{ticket_id}/rating-link", response_model=RatingLinkOut)
def ticket_rating_link(
    ticket_id: IdPath, request: Request, caller: StaffDep, db_session: WriterSessionDep
) -> RatingLinkOut:
    """A one-time link (valid 7 days) for the requester to rate the job; it replaces the
    ticket's previous link."""
    return _rating_link(request, db_session, ticket_id, caller.username)


@router.post("/api/jobs/{ticket_id}/rating-link", response_model=RatingLinkOut)
def job_rating_link(
    ticket_id: IdPath, request: Request, caller: TechnicianDep, db_session: WriterSessionDep
) -> RatingLinkOut:
    """The technician's own job: a link to show the requester on site."""
    service.own_ticket(db_session=db_session, ticket_id=ticket_id, caller=caller)
    return _rating_link(request, db_session, ticket_id, caller.username)


@router.get("/api/rate/{token}", response_model=RatingInviteOut)
def rating_invite(token: RatingToken, db_session: SessionDep) -> RatingInviteOut:
    """Public, for the holder of the link: which job it rates."""
    return ratings.invite(db_session=db_session, token=token, now=utc_now())


@router.post("/api/rate/{token}", response_model=RatingInviteOut)
def rate_with_link(
    token: RatingToken, body: RequesterRatingIn, db_session: WriterSessionDep, rules: RulesDep
) -> RatingInviteOut:
    """Public, for the holder of the link: rate the finished job (once; the link is used up)."""
    done = ratings.rate_by_link(
        db_session=db_session,
        token=token,
        stars=body.stars,
        comment=body.comment,
        now=utc_now(),
        rules=rules,
    )
    db_session.commit()
    return done
