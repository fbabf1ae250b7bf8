"""The requester's rating: a one-time link (random token, only its hash stored) that lets the
person at the device rate the job without an account. The technician shows it on site or an
operator sends it; whoever rates first (operator or requester) rates the ticket."""

from __future__ import annotations

import hashlib
import io
import secrets
from datetime import datetime, timedelta

import segno
from sqlalchemy import delete
from sqlalchemy.orm import Session

from cloud.dispatch import policy
from cloud.dispatch import service as dispatcher
from cloud.dispatch.models import RatingLink, Technician
from cloud.dispatch.schemas import RatingInviteOut
from cloud.errors import Conflict, NotFound
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket

LINK_LIFETIME = timedelta(days=7)
REQUESTER = "requester"
# States in which a link can be made: the technician is there, or the job is done.
LINKABLE = frozenset({TicketState.ON_SITE, TicketState.RESOLVED, TicketState.CLOSED})


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    *, db_session: Session, ticket_id: int, by: str, now: datetime
) -> tuple[str, datetime]:
    """A new link for the ticket (the previous one stops working); (token, expiry)."""
    ticket = tickets.get_or_raise(db_session=db_session, ticket_id=ticket_id, lock=True)
    if TicketState(ticket.state) not in LINKABLE or ticket.technician_id is None:
        raise Conflict(
            f"ticket {ticket_id} is {ticket.state}: a rating link is for a job a technician "
            "is on site for or has finished"
        )
    if ticket.rating is not None:
        raise Conflict(
            f"ticket {ticket_id} was rated already ({ticket.rating} by {ticket.rated_by})"
        )
    db_session.execute(delete(RatingLink).where(RatingLink.ticket_id == ticket_id))
    token = secrets.token_urlsafe(24)
    expires = now + LINK_LIFETIME
    db_session.add(
        RatingLink(
            token_hash=_hash(token),
            ticket_id=ticket_id,
            created_by=by,
            created_at=now,
            expires_at=expires,
        )
    )
    tickets.record(
        db_session=db_session,
        ticket=ticket,
        actor=by,
        kind="rating-link",
        now=now,
        reason=f"a rating link for the requester, valid until {expires:%Y-%m-%d %H:%M} UTC",
    )
    return token, expires


def _link(db_session: Session, token: str, now: datetime) -> tuple[RatingLink, Ticket]:
    link = db_session.get(RatingLink, _hash(token))
    if link is None or link.expires_at <= now:
        raise NotFound("this rating link is unknown or has expired: ask for a new one")
    return link, tickets.get_or_raise(db_session=db_session, ticket_id=link.ticket_id)


def invite(*, db_session: Session, token: str, now: datetime) -> RatingInviteOut:
    """The job behind a link (the technician by first name only)."""
    return _invite(db_session, *_link(db_session, token, now))


def _invite(db_session: Session, link: RatingLink, ticket: Ticket) -> RatingInviteOut:
    tech = db_session.get(Technician, ticket.technician_id) if ticket.technician_id else None
    return RatingInviteOut(
        ticket_id=ticket.id,
        title=ticket.title,
        technician=tech.name.split()[0] if tech else "",
        state=ticket.state,
        rated=ticket.rating is not None,
        expires_at=link.expires_at,
    )


def rate_by_link(
    *,
    db_session: Session,
    token: str,
    stars: int,
    comment: str,
    now: datetime,
    rules: policy.DispatchPolicy,
) -> RatingInviteOut:
    """The requester's stars; the link is used up."""
    link, ticket = _link(db_session, token, now)
    if TicketState(ticket.state) not in (TicketState.RESOLVED, TicketState.CLOSED):
        raise Conflict("the job is not finished yet: rate it once the technician marked it fixed")
    dispatcher.rate(
        db_session=db_session,
        ticket_id=ticket.id,
        stars=stars,
        rated_by=REQUESTER,
        now=now,
        rules=rules,
        comment=comment,
    )
    done = _invite(db_session, link, ticket)
    db_session.delete(link)
    return done


def purge_expired(*, db_session: Session, now: datetime) -> None:
    """Forget links past their expiry."""
    db_session.execute(delete(RatingLink).where(RatingLink.expires_at <= now))


def qr_svg(url: str) -> str:
    """The link as a QR code, an SVG of its own (no outside resource)."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return out.getvalue().decode()
