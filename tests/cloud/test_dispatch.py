"""Dispatch on a real database: offers, the cascade, acceptance, jobs, ratings, and each
deadline firing once with two dispatchers at work."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth import service as accounts
from cloud.auth.roles import Principal, Role
from cloud.db import make_engine, make_sessionmaker, migrate, transaction
from cloud.dispatch import csvimport, matching
from cloud.dispatch import service as dispatcher
from cloud.dispatch.history import Ending
from cloud.dispatch.models import Offer, SweepMark, Technician
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import TechnicianIn
from cloud.errors import Conflict, NotFound
from cloud.outbound.models import OutboundMessage
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.tickets import service as tickets_service
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from tests.cloud.factories import T0, at, ingest, located_shop, press, pushed_to, register

RULES = DispatchPolicy()
OPERATOR = Principal(user_id=1, username="olga", role=Role.OPERATOR)


def techie(technician_id: str) -> Principal:
    return Principal(2, technician_id, Role.TECHNICIAN, technician_id)


def add_tech(sessions, tech_id: str, lat: float, lon: float, **values: object) -> None:
    body = TechnicianIn.model_validate(
        {"name": tech_id, "skills": ["printers"], "home_lat": lat, "home_lon": lon} | values
    )
    with transaction(sessions) as db:
        csvimport.upsert(db_session=db, technician_id=tech_id, body=body, now=T0)


@pytest.fixture
def desk(sessions: sessionmaker[Session]) -> tuple[sessionmaker[Session], int]:
    """A shop at Zurich HB with a POS terminal that asked for printer help, and a crowd."""
    located_shop(sessions, "pos-1")
    add_tech(sessions, "c-near", 47.3800, 8.5400)
    add_tech(sessions, "c-far", 47.4111, 8.5446)
    add_tech(sessions, "c-nope", 47.3780, 8.5400, skills=["pos"])
    add_tech(sessions, "s-1", 47.3700, 8.5300, kind="staff")
    result = ingest(sessions, press("pos-1", "receipt-printer"))
    assert result.ticket_id is not None
    return sessions, result.ticket_id


def test_the_offer_spares_the_technician_whose_other_skill_is_short(sessions) -> None:
    """A till job, two technicians at the same place: one also repairs printers, which the
    recent tickets want and few available people do; the till-only one is asked."""
    located_shop(sessions, "pos-1")
    add_tech(sessions, "a-both", 47.3800, 8.5400, skills=["pos", "printers"])
    add_tech(sessions, "b-till", 47.3800, 8.5400, skills=["pos"])
    add_tech(sessions, "c-till", 47.3800, 8.5400, skills=["pos"])
    for n in range(4):  # what the week asked for: printers, and printers again
        located_shop(sessions, f"printer-{n}", site=f"shop-{n}")
        ingest(sessions, press(f"printer-{n}", "receipt-printer"))
    with transaction(sessions) as db:  # those are being served: only the till job waits
        for ticket in db.scalars(select(Ticket)):
            ticket.next_dispatch_at = at(600)
    till = ingest(sessions, press("pos-1", "till"))
    assert till.ticket_id is not None
    with sessions() as db:
        demand = dispatcher.recent_demand(db_session=db, now=at(1))
    assert demand == {"printers": 4, "pos": 1}
    start(sessions, till.ticket_id, 1)
    [offer] = offers(sessions, till.ticket_id)
    assert offer.technician_id == "b-till"
    verdicts = {c["technician_id"]: c["parts"] for c in offer.candidates}
    assert verdicts["b-till"]["reserve"] > verdicts["a-both"]["reserve"]


def test_a_round_offers_every_waiting_ticket_and_reads_the_weeks_demand_once(
    sessions, monkeypatch
) -> None:
    """Five shops ask at once: one dispatcher round makes five offers to five people and
    looks up the skill demand and the technicians' answers once, not once per offer."""
    for n in range(5):
        located_shop(sessions, f"pos-{n}", site=f"shop-{n}")
        add_tech(sessions, f"c-{n}", 47.3800, 8.5400 + n / 1000)
        ingest(sessions, press(f"pos-{n}", "receipt-printer"))
    lookups = []
    real = dispatcher.recent_demand

    def counted(**kwargs):
        lookups.append(kwargs["now"])
        return real(**kwargs)

    monkeypatch.setattr(dispatcher, "recent_demand", counted)
    answers = []
    real_outcomes = dispatcher.outcomes

    def counted_outcomes(**kwargs):
        answers.append(kwargs.get("technician_id"))
        return real_outcomes(**kwargs)

    monkeypatch.setattr(dispatcher, "outcomes", counted_outcomes)
    moved = dispatcher.run_round(sessions=sessions, now=lambda: at(1), rules=RULES)
    assert moved == 5 and len(lookups) == 1
    assert answers == [None]  # everyone's, once
    with sessions() as db:
        pending = db.scalars(select(Offer.technician_id).where(Offer.state == "pending")).all()
    assert sorted(pending) == [f"c-{n}" for n in range(5)]


def offers(sessions, ticket_id: int) -> list[Offer]:
    with sessions() as db:
        return list(dispatcher.offers_of(db_session=db, ticket_id=ticket_id))


def events_of(sessions, ticket_id: int) -> list[Any]:
    with sessions() as db:
        return list(tickets_service.events(db_session=db, ticket_id=ticket_id))


def ticket_of(sessions, ticket_id: int) -> Ticket:
    with sessions() as db:
        ticket = db.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket


def offer_history(sessions, ticket_id: int, lapses: int, answer_minutes: float) -> None:
    """20 past offers to c-near: the first `lapses` left to expire, the rest accepted; each
    with `answer_minutes` to answer."""
    with transaction(sessions) as db:
        for i in range(20):
            db.add(
                Offer(
                    ticket_id=ticket_id,
                    technician_id="c-near",
                    stage="crowd",
                    state="expired" if i < lapses else "accepted",
                    offered_at=at(-100 + i),
                    deadline=at(-100 + i + answer_minutes),
                    reason="",
                    eta_min=5,
                    score=1,
                    candidates=[],
                )
            )


def test_everyones_answers_read_together_are_their_own_in_order(desk) -> None:
    """The round reads all technicians' last answers with one statement, built once: each
    gets exactly their own, oldest first, ties in time in the order the offers were made;
    withdrawn offers and lapses under a deadline cut short do not count."""
    sessions, ticket_id = desk
    states = ["accepted", "declined", "expired", "withdrawn", "expired"]
    made: list[tuple[str, str, bool]] = []  # technician, state, a full deadline
    with transaction(sessions) as db:
        for n in range(45):
            offered = at(-200 + n // 6)  # two offers a minute each: ties in time
            tech, state, full = ["c-near", "c-far", "s-1"][n % 3], states[(n * 7) % 5], n % 4 > 0
            made.append((tech, state, full))
            db.add(
                Offer(
                    ticket_id=ticket_id, technician_id=tech, stage="crowd", state=state,
                    offered_at=offered, deadline=offered + timedelta(minutes=5 if full else 2),
                    reason="", eta_min=5, score=1, candidates=[],
                )
            )  # fmt: skip
            db.flush()  # ids in the order made
    with sessions() as db:
        together = dispatcher.outcomes(db_session=db, rules=RULES)
        alone = dispatcher.recent_outcomes(db_session=db, technician_id="c-far", rules=RULES)
    counted = [
        (who, state == "accepted")
        for who, state, full in made
        if state in ("accepted", "declined") or (state == "expired" and full)
    ]
    expected = {
        tech: [yes for who, yes in counted if who == tech][-RULES.acceptance_window :]
        for tech in ("c-near", "c-far", "s-1")
    }
    assert together == expected and alone == expected["c-far"]
    assert len({tuple(a) for a in expected.values()}) == 3  # three different records


def start(sessions, ticket_id: int, minutes: float) -> None:
    with transaction(sessions) as db:
        dispatcher.start(db_session=db, ticket_id=ticket_id, now=at(minutes), rules=RULES)


def test_off_shift_gets_no_offer_and_the_explanation_says_so(desk) -> None:
    """c-near works evenings in Zurich; at T0 (Monday, 11:00 there) the offer goes to c-far,
    and c-near is listed as off shift. From 17:00 Zurich time c-near is the one asked."""
    sessions, ticket_id = desk
    evenings = {"shifts": ["mon-fri 17:00-23:00"], "timezone": "Europe/Zurich"}
    add_tech(sessions, "c-near", 47.3800, 8.5400, **evenings)
    start(sessions, ticket_id, 1)
    [offer] = offers(sessions, ticket_id)
    assert offer.technician_id == "c-far"
    verdicts = {c["technician_id"]: c for c in offer.candidates}
    assert verdicts["c-near"]["reasons"] == ["off shift"]
    with sessions() as db:
        board = dispatcher.board(db_session=db, now=at(1), rules=RULES)
        assert board.technicians["off"] == 1  # c-near (toggled available, but off shift)
        evening = dispatcher.board(db_session=db, now=at(6 * 60), rules=RULES)  # 17:00 Zurich
        assert evening.technicians["off"] == 0

    located_shop(sessions, "pos-2", site="hb-2")
    later = ingest(sessions, press("pos-2", "receipt-printer", minutes=6 * 60)).ticket_id
    assert later is not None
    start(sessions, later, 6 * 60)
    assert offers(sessions, later)[0].technician_id == "c-near"


def test_time_off_gets_no_offer_and_the_ticket_is_offered_when_it_ends(desk) -> None:
    """c-near takes Monday off (in Zurich) and c-far the whole week: at 11:00 the printer job
    goes to staff, and the explanation lists both as on leave. A second job nobody free can
    take waits, escalated, saying why; it is looked at again at midnight in Zurich, when
    c-near's day off ends, and offered to her then, not a minute later."""
    sessions, ticket_id = desk
    add_tech(sessions, "c-near", 47.3800, 8.5400, time_off=["2026-11-23"], timezone="Europe/Zurich")
    add_tech(sessions, "c-far", 47.4111, 8.5446, time_off=["2026-11-23..2026-11-29"])
    start(sessions, ticket_id, 1)
    [offer] = offers(sessions, ticket_id)
    assert (offer.technician_id, offer.stage) == ("s-1", "staff")
    verdicts = {c["technician_id"]: c for c in offer.candidates}
    assert verdicts["c-near"]["reasons"] == verdicts["c-far"]["reasons"] == ["on leave"]
    with sessions() as db:
        standing = dispatcher.board(db_session=db, now=at(1), rules=RULES).technicians
        assert (standing["on_leave"], standing["off"], standing["available"]) == (2, 0, 2)
    with transaction(sessions) as db:
        dispatcher.accept(db_session=db, offer_id=offer.id, caller=techie("s-1"), now=at(2),
                          eta_min=None)  # fmt: skip

    located_shop(sessions, "pos-2", site="hb-2")
    waiting = ingest(sessions, press("pos-2", "receipt-printer", minutes=2)).ticket_id
    assert waiting is not None
    start(sessions, waiting, 2)  # s-1 holds the first job: nobody is left
    assert offers(sessions, waiting) == []
    [escalation] = [e for e in events_of(sessions, waiting) if e.to_state == "escalated"]
    assert escalation.reason.endswith("(of the 3 holding printers: 2 on leave, 1 at capacity)")
    midnight = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 00:00 on Tuesday in Zurich
    for minutes in [*range(3, 13 * 60, 45), 13 * 60 - 0.5]:  # it looks again every minute
        dispatcher.run_round(sessions=sessions, now=lambda m=minutes: at(m), rules=RULES)
    assert offers(sessions, waiting) == []
    assert ticket_of(sessions, waiting).next_dispatch_at == midnight
    dispatcher.run_round(sessions=sessions, now=lambda: midnight, rules=RULES)
    [offer] = offers(sessions, waiting)
    assert (offer.technician_id, offer.offered_at) == ("c-near", midnight)


def test_a_lapse_after_the_technicians_hours_ended_is_not_held_against_them(desk) -> None:
    """c-near's shift ends at 11:03 in Zurich, two minutes into the offer made to her at 11:01:
    she lets it lapse, and it says why and does not count against her acceptance (nor is she
    paused for it). c-far, on duty the whole five minutes, lets the next one lapse: his does."""
    sessions, ticket_id = desk
    add_tech(sessions, "c-near", 47.3800, 8.5400, shifts=["mon-fri 07:00-11:03"],
             timezone="Europe/Zurich")  # fmt: skip
    strict = DispatchPolicy(acceptance_window=1, min_acceptance=1.0)  # one lapse pauses
    with transaction(sessions) as db:
        dispatcher.start(db_session=db, ticket_id=ticket_id, now=at(1), rules=strict)
    [first] = offers(sessions, ticket_id)
    assert (first.technician_id, first.deadline) == ("c-near", at(6))
    with transaction(sessions) as db:
        assert dispatcher.expire(db_session=db, offer_id=first.id, now=at(6), rules=strict)
    first, second = offers(sessions, ticket_id)
    assert (first.state, first.reason) == ("expired", dispatcher.LAPSED_OFF_DUTY)
    assert second.technician_id == "c-far"
    with transaction(sessions) as db:
        assert dispatcher.expire(db_session=db, offer_id=second.id, now=at(11), rules=strict)
    with sessions() as db:

        def record(tech_id: str) -> tuple[list[bool], bool]:
            outcomes = dispatcher.recent_outcomes(
                db_session=db, technician_id=tech_id, rules=strict
            )
            tech = db.get(Technician, tech_id)
            assert tech is not None
            return outcomes, tech.paused

        assert record("c-near") == ([], False)
        assert record("c-far") == ([False], True)  # below the (strict) policy: paused
    assert offers(sessions, ticket_id)[1].reason == dispatcher.LAPSED


def test_a_ticket_nobody_can_take_is_offered_the_moment_a_shift_starts(sessions) -> None:
    """At 10:59:30 Zurich time only c-later could take the job, and her shift starts at
    11:01: the ticket is escalated and looked at again at 11:01 sharp, when she is offered it,
    not a minute after the round that found nobody."""
    located_shop(sessions, "pos-1")
    add_tech(sessions, "c-later", 47.3800, 8.5400,
             shifts=["mon-fri 11:01-19:00"], timezone="Europe/Zurich")  # fmt: skip
    add_tech(sessions, "c-offline", 47.3800, 8.5400, available=False)  # her shift: not waited on
    ticket_id = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
    assert ticket_id is not None
    start(sessions, ticket_id, 0.5)
    assert offers(sessions, ticket_id) == []
    assert ticket_of(sessions, ticket_id).state == "escalated"
    assert ticket_of(sessions, ticket_id).next_dispatch_at == at(1)  # not at(0.5) + 1 minute
    dispatcher.run_round(sessions=sessions, now=lambda: at(0.9), rules=RULES)
    assert offers(sessions, ticket_id) == []  # not yet: off shift until 11:01
    dispatcher.run_round(sessions=sessions, now=lambda: at(1), rules=RULES)
    [offer] = offers(sessions, ticket_id)
    assert (offer.technician_id, offer.offered_at) == ("c-later", at(1))


def test_the_cascade_from_crowd_to_staff_with_its_explanation(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    [first] = offers(sessions, ticket_id)
    assert (first.technician_id, first.stage, first.state) == ("c-near", "crowd", "pending")
    assert first.deadline == at(6)  # five minutes to answer: the SLA has slack
    verdicts = {c["technician_id"]: c for c in first.candidates}
    assert verdicts["c-nope"]["eligible"] is False
    assert verdicts["c-nope"]["reasons"] == ["lacks skills: printers"]
    parts = {"eta", "rating", "acceptance", "load", "fairness", "reserve"}
    assert set(verdicts["c-near"]["parts"]) == parts
    assert ticket_of(sessions, ticket_id).state == "dispatching"
    with sessions() as db:
        pushed = db.scalars(select(OutboundMessage.topic)).all()
    assert "tech/crowdfix/v1/c-near/offer" in pushed

    with transaction(sessions) as db:  # c-near says no: c-far gets it at once
        dispatcher.decline(
            db_session=db,
            offer_id=first.id,
            caller=techie("c-near"),
            reason="stuck in traffic",
            now=at(2),
            rules=RULES,
        )
    second = offers(sessions, ticket_id)[-1]
    assert second.technician_id == "c-far" and second.deadline == at(7)

    with transaction(sessions) as db:  # nobody answers: the deadline passes, staff is next
        assert dispatcher.due_offers(db_session=db, now=at(6.9)) == []
        assert dispatcher.due_offers(db_session=db, now=at(7)) == [second.id]
        assert dispatcher.expire(db_session=db, offer_id=second.id, now=at(7), rules=RULES)
    third = offers(sessions, ticket_id)[-1]
    assert (third.technician_id, third.stage) == ("s-1", "staff")
    assert third.deadline == at(12)
    assert [o.state for o in offers(sessions, ticket_id)] == ["declined", "expired", "pending"]


def test_accept_progress_and_rate(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    offer = offers(sessions, ticket_id)[0]
    with transaction(sessions) as db, pytest.raises(NotFound):  # not theirs to take
        dispatcher.accept(
            db_session=db, offer_id=offer.id, caller=techie("c-far"), now=at(2), eta_min=None
        )
    with transaction(sessions) as db:
        dispatcher.accept(
            db_session=db, offer_id=offer.id, caller=techie("c-near"), now=at(2), eta_min=12
        )
    ticket = ticket_of(sessions, ticket_id)
    assert (ticket.state, ticket.technician_id, ticket.dispatched_at) == (
        "assigned",
        "c-near",
        at(2),
    )
    with sessions() as db:
        feedback = db.scalars(
            select(OutboundMessage.payload).where(
                OutboundMessage.topic == "cmd/crowdfix/v1/pos-1/feedback"
            )
        ).all()
    assert json.loads(feedback[-1])["eta_minutes"] == 12  # the device shows help is coming

    for minutes, state in ((3, "en_route"), (14, "on_site"), (40, "resolved")):
        with transaction(sessions) as db:
            job = dispatcher.own_ticket(db_session=db, ticket_id=ticket_id, caller=techie("c-near"))
            dispatcher.progress(
                db_session=db,
                ticket=job,
                to=dispatcher.TicketState(state),
                actor="c-near",
                now=at(minutes),
            )
    ticket = ticket_of(sessions, ticket_id)
    assert (ticket.state, ticket.on_site_at) == ("resolved", at(14))
    with transaction(sessions) as db:
        clocks = {c.target: c for c in dispatcher.sla(ticket, at(50), RULES)}
    assert not clocks["accept"].breached and not clocks["arrive"].breached

    with transaction(sessions) as db:
        dispatcher.rate(
            db_session=db, ticket_id=ticket_id, stars=5, rated_by="olga", now=at(60), rules=RULES
        )
    with transaction(sessions) as db, pytest.raises(Conflict, match="rated already"):
        dispatcher.rate(
            db_session=db, ticket_id=ticket_id, stars=1, rated_by="olga", now=at(61), rules=RULES
        )
    with sessions() as db:
        tech = db.get(Technician, "c-near")
        assert tech is not None and (tech.rating_sum, tech.rating_count) == (5.0, 1)


def test_a_job_given_back_goes_to_someone_else_with_the_skills_it_needs(desk) -> None:
    sessions, ticket_id = desk
    add_tech(sessions, "c-pro", 47.4000, 8.5450, skills=["printers", "electrical"])
    start(sessions, ticket_id, 1)
    first = offers(sessions, ticket_id)[0]
    with transaction(sessions) as db:
        dispatcher.accept(
            db_session=db,
            offer_id=first.id,
            caller=techie(first.technician_id),
            now=at(2),
            eta_min=None,
        )
    with transaction(sessions) as db:
        job = dispatcher.own_ticket(
            db_session=db, ticket_id=ticket_id, caller=techie(first.technician_id)
        )
        dispatcher.give_back(
            db_session=db,
            ticket=job,
            actor=first.technician_id,
            now=at(20),
            reason="the power supply is dead",
            extra_skills=["electrical"],
            rules=RULES,
        )
    latest = offers(sessions, ticket_id)[-1]
    assert latest.technician_id == "c-pro" and latest.state == "pending"
    ticket = ticket_of(sessions, ticket_id)
    assert ticket.state == "dispatching" and "electrical" in ticket.skills


def test_nobody_eligible_escalates_to_an_operator_who_assigns_by_hand(sessions) -> None:
    register(sessions, "pos-9", site="far")
    with transaction(sessions) as db:
        sites.upsert(
            db_session=db,
            site_in=SiteIn(id="far", name="Far", latitude=46.0, longitude=7.0),
            now=T0,
        )
    add_tech(sessions, "c-near", 47.38, 8.54)
    ticket_id = ingest(sessions, press("pos-9", "receipt-printer")).ticket_id
    start(sessions, ticket_id, 1)
    assert offers(sessions, ticket_id) == []
    assert ticket_of(sessions, ticket_id).state == "escalated"
    [escalation] = [
        e for e in events_of(sessions, ticket_id) if e.to_state == TicketState.ESCALATED
    ]
    assert escalation.reason == (  # what the operator reads on the desk and in the alert
        "no eligible technician accepted or is left "
        "(of the 1 holding printers: 1 beyond their service radius)"
    )
    start(sessions, ticket_id, 2)  # it looks again a minute later: no second escalation
    assert sum(e.to_state == "escalated" for e in events_of(sessions, ticket_id)) == 1
    with transaction(sessions) as db:
        dispatcher.assign(
            db_session=db,
            ticket_id=ticket_id,
            technician_id="c-near",
            caller=OPERATOR,
            now=at(5),
            reason="drives there anyway",
        )
    ticket = ticket_of(sessions, ticket_id)
    assert (ticket.state, ticket.technician_id) == ("assigned", "c-near")


def test_missed_offers_pause_a_crowd_technician_until_reviewed(desk) -> None:
    sessions, _ticket_id = desk
    offer_history(sessions, _ticket_id, lapses=6, answer_minutes=5)  # acceptance 70%
    with transaction(sessions) as db:
        dispatcher._check_policy(db, "c-near", at(0), RULES)
    with sessions() as db:
        tech = db.get(Technician, "c-near")
        assert tech is not None and tech.paused and "acceptance 70%" in tech.paused_reason
    start(sessions, _ticket_id, 1)
    assert offers(sessions, _ticket_id)[-1].technician_id == "c-far"  # c-near is paused
    with transaction(sessions) as db:
        dispatcher.review(
            db_session=db, technician_id="c-near", caller=OPERATOR, note="talked it over",
            now=at(2),
        )  # fmt: skip
    with sessions() as db:
        tech = db.get(Technician, "c-near")
        assert tech is not None and not tech.paused
        trail = dispatcher.changes(db_session=db, technician_id="c-near", limit=10)
    assert [(c.kind, c.actor, c.at) for c in trail] == [
        ("reviewed", "olga", at(2)),
        ("paused", "dispatcher", at(0)),
    ]
    assert "acceptance 70%" in trail[1].reason and trail[0].reason == "talked it over"


def test_each_deadline_fires_once_with_two_dispatchers(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    offer = offers(sessions, ticket_id)[0]

    def fire(_: int) -> bool:
        with transaction(sessions) as db:
            return dispatcher.expire(db_session=db, offer_id=offer.id, now=at(10), rules=RULES)

    with ThreadPoolExecutor(4) as pool:
        fired = list(pool.map(fire, range(8)))
    assert fired.count(True) == 1
    states = [o.state for o in offers(sessions, ticket_id)]
    assert states == ["expired", "pending"]


def test_a_technician_cannot_accept_after_the_deadline(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    offer = offers(sessions, ticket_id)[0]
    with transaction(sessions) as db, pytest.raises(Conflict, match="past its deadline"):
        dispatcher.accept(
            db_session=db,
            offer_id=offer.id,
            caller=techie("c-near"),
            now=offer.deadline + timedelta(seconds=1),
            eta_min=None,
        )


def test_a_lapse_under_a_deadline_cut_short_is_not_held_against_anyone(desk) -> None:
    sessions, ticket_id = desk
    offer_history(sessions, ticket_id, lapses=6, answer_minutes=2)  # cut short for the SLA
    with transaction(sessions) as db:
        assert (
            dispatcher.recent_outcomes(db_session=db, technician_id="c-near", rules=RULES)
            == [True] * 14
        )
        dispatcher._check_policy(db, "c-near", at(0), RULES)
    with sessions() as db:
        tech = db.get(Technician, "c-near")
        assert tech is not None and not tech.paused


def test_who_is_not_asked_again() -> None:
    later = T0 + timedelta(minutes=30)
    answers = [
        ("ana", "declined", T0),  # a no to this job stays a no
        ("ben", "expired", T0),  # one lapse: forgiven on an escalated ticket, once old enough
        ("cem", "expired", T0),
        ("cem", "expired", T0 + timedelta(minutes=6)),  # two lapses: not asked again
        ("dan", "expired", later),  # a lapse too recent to ask again
    ]
    assert dispatcher.not_to_ask(answers, since=None) == {"ana", "ben", "cem", "dan"}
    assert dispatcher.not_to_ask(answers, since=T0 + timedelta(minutes=10)) == {"ana", "cem", "dan"}


def test_triage_serves_first_the_tickets_that_can_still_be_reached_in_time(sessions) -> None:
    located_shop(sessions, "pos-1", "pos-2", "pos-3")
    add_tech(sessions, "c-3km", 47.4049, 8.5403, skills=["printers", "pos"])  # ETA ~14.7 min
    old = ingest(sessions, press("pos-1", "receipt-printer", minutes=0)).ticket_id
    till = ingest(sessions, press("pos-2", "till", minutes=20)).ticket_id
    printer = ingest(sessions, press("pos-3", "receipt-printer", minutes=25)).ticket_id
    now = at(46)  # the first is due on site in 14 min: nobody gets there in time
    with sessions() as db:
        fifo = dispatcher.waiting_tickets(db_session=db, now=now)
        triaged = dispatcher.waiting_tickets(db_session=db, now=now, triage=True)
        due = {t.id: t.sla_arrive_by for t in db.scalars(select(Ticket))}
    assert fifo == [old, till, printer]
    assert due[till] < due[printer]  # the till's target is tighter (45 min): 19 min left
    assert triaged == [till, printer, old]  # reachable ones first, earliest due first


def test_triage_order() -> None:
    from cloud.dispatch.policy import Waiting, triage

    now = T0
    waiting = [
        Waiting(1, at(10), best_eta_min=20),  # too late even for the nearest
        Waiting(2, at(40), best_eta_min=20),
        Waiting(3, at(25), best_eta_min=20),  # 25 >= 2 + 20: still in time
        Waiting(4, at(30), best_eta_min=None),  # nobody could take it now
    ]
    assert triage(waiting, now) == [3, 2, 1, 4]


def test_a_technician_free_again_wakes_the_tickets_waiting_for_someone(sessions) -> None:
    located_shop(sessions, "pos-1", "pos-2")
    add_tech(sessions, "c-only", 47.3800, 8.5400)
    first = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
    second = ingest(sessions, press("pos-2", "receipt-printer")).ticket_id
    with transaction(sessions) as db:
        dispatcher.assign(
            db_session=db, ticket_id=first, technician_id="c-only", caller=OPERATOR,
            now=at(1), reason="",
        )  # fmt: skip
    start(sessions, second, 1)  # nobody free: escalated, to look again in a minute
    assert ticket_of(sessions, second).next_dispatch_at == at(1) + dispatcher.RECHECK_AFTER
    with transaction(sessions) as db:
        job = db.get(Ticket, first)
        for state in (TicketState.ON_SITE, TicketState.RESOLVED):
            dispatcher.progress(db_session=db, ticket=job, to=state, actor="c-only", now=at(1.2))
    assert ticket_of(sessions, second).next_dispatch_at == at(1.2)  # the next round offers it
    with sessions() as db:
        assert dispatcher.waiting_tickets(db_session=db, now=at(1.2)) == [second]


def test_a_retired_technician_gets_nothing_more_and_loses_what_they_had(desk) -> None:
    """c-near leaves the crowd while an offer waits for her answer and she is on her way to
    another job: the offer is withdrawn and the job goes back to dispatch (she is told of
    both), her login stops working, and the next round gives both tickets to others; she is
    never a candidate again, cannot be assigned, and keeps her history. Reinstated, her
    account may sign in again, but the old token stays revoked."""
    sessions, offered = desk
    start(sessions, offered, 0.2)
    [offer] = offers(sessions, offered)
    assert (offer.technician_id, offer.state) == ("c-near", "pending")
    located_shop(sessions, "pos-2", site="hb-2")
    held = ingest(sessions, press("pos-2", "receipt-printer")).ticket_id
    assert held is not None
    with transaction(sessions) as db:  # and an operator gives her another job
        dispatcher.assign(db_session=db, ticket_id=held, technician_id="c-near",
                          caller=OPERATOR, now=at(0.5), reason="")  # fmt: skip
        job = db.get(Ticket, held)
        assert job is not None
        dispatcher.progress(db_session=db, ticket=job, to=TicketState.EN_ROUTE,
                            actor="c-near", now=at(0.8))  # fmt: skip
        nina = accounts.create_user(
            db_session=db, username="nina", role=Role.TECHNICIAN, password="nina-pass-123",
            now=T0, technician_id="c-near",
        )  # fmt: skip
        token, _record = accounts.issue_token(db_session=db, user=nina, name="phone", now=T0)

    with transaction(sessions) as db:
        dispatcher.retire(db_session=db, technician_id="c-near", caller=OPERATOR,
                          reason="left the crowd", now=at(2), rules=RULES)  # fmt: skip
        assert accounts.authenticate(db_session=db, token=token, now=at(2)) is None
    [offer] = offers(sessions, offered)
    assert offer.state == "withdrawn" and "retired by olga: left the crowd" in offer.reason
    job = ticket_of(sessions, held)
    assert (job.state, job.technician_id) == ("dispatching", None)
    told = pushed_to(sessions, "c-near", "offer")[-1]
    assert (told["type"], told["offer_id"]) == ("offer_withdrawn", offer.id)
    called_off = pushed_to(sessions, "c-near", "job")[-1]
    assert (called_off["type"], called_off["ticket_id"]) == ("job_called_off", held)
    assert "left the crowd" in str(called_off["reason"])

    dispatcher.run_round(sessions=sessions, now=lambda: at(2.5), rules=RULES)
    for ticket_id in (offered, held):
        latest = offers(sessions, ticket_id)[-1]
        assert latest.state == "pending" and latest.technician_id != "c-near"
        assert "c-near" not in {c["technician_id"] for c in latest.candidates}
    with sessions() as db:
        board = dispatcher.board(db_session=db, now=at(3), rules=RULES)
        assert board.technicians["retired"] == 1
        jobs, _tickets = dispatcher.jobs_held(db_session=db, technician_id="c-near")
        assert [(j.ticket_id, j.ending) for j in jobs] == [(held, Ending.HANDED_ON)]
    with pytest.raises(Conflict, match="retired"), transaction(sessions) as db:
        dispatcher.assign(db_session=db, ticket_id=held, technician_id="c-near",
                          caller=OPERATOR, now=at(3), reason="")  # fmt: skip
    with pytest.raises(Conflict, match="reinstate them first"), transaction(sessions) as db:
        dispatcher.retire(db_session=db, technician_id="c-near", caller=OPERATOR,
                          reason="again", now=at(3), rules=RULES)  # fmt: skip

    with transaction(sessions) as db:
        dispatcher.reinstate(db_session=db, technician_id="c-near", caller=OPERATOR, now=at(4))
        assert accounts.authenticate(db_session=db, token=token, now=at(4)) is None
        back = accounts.login(db_session=db, username="nina", password="nina-pass-123",
                              address="", now=at(4))  # fmt: skip
        assert back.technician_id == "c-near"
    with sessions() as db:
        pool = dispatcher.candidates(db_session=db, now=at(4))
        trail = dispatcher.changes(db_session=db, technician_id="c-near", limit=10)
    assert "c-near" in {c.id for c in pool}
    assert [(c.kind, c.actor, c.reason, c.at) for c in trail] == [
        ("reinstated", "olga", "", at(4)),
        ("retired", "olga", "left the crowd", at(2)),
    ]
    with pytest.raises(Conflict, match="not retired"), transaction(sessions) as db:
        dispatcher.reinstate(db_session=db, technician_id="c-near", caller=OPERATOR, now=at(5))


def test_an_accept_racing_the_retirement_never_leaves_her_a_job(desk) -> None:
    """c-near taps accept as an operator retires her: whichever comes first, she ends up
    holding nothing and the ticket waits for someone else (her row is locked by both)."""
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    [offer] = offers(sessions, ticket_id)

    def accept() -> str:
        try:
            with transaction(sessions) as db:
                dispatcher.accept(db_session=db, offer_id=offer.id, caller=techie("c-near"),
                                  now=at(2), eta_min=None)  # fmt: skip
        except Conflict as exc:
            return str(exc)
        return "accepted"

    def retire() -> str:
        with transaction(sessions) as db:
            dispatcher.retire(db_session=db, technician_id="c-near", caller=OPERATOR,
                              reason="left", now=at(2), rules=RULES)  # fmt: skip
        return "retired"

    with ThreadPoolExecutor(2) as pool:
        outcomes = [pool.submit(accept), pool.submit(retire)]
        said = [o.result() for o in outcomes]
    assert said[1] == "retired"
    assert said[0] == "accepted" or "withdrawn" in said[0], said
    ticket = ticket_of(sessions, ticket_id)
    assert ticket.technician_id is None and ticket.state == "dispatching"
    with sessions() as db:
        assert dispatcher.active_jobs(db_session=db).get("c-near", 0) == 0


def test_two_offers_accepted_at_once_never_take_her_over_capacity(sessions) -> None:
    """Two offers wait for c-one (capacity 2 when they were made, 1 now): she accepts both at
    the same moment, from two devices; one job is hers, the other accept is refused."""
    located_shop(sessions, "pos-1", "pos-2")
    add_tech(sessions, "c-one", 47.3800, 8.5400, capacity=2)
    made = [ingest(sessions, press(d, "receipt-printer")).ticket_id for d in ("pos-1", "pos-2")]
    dispatcher.run_round(sessions=sessions, now=lambda: at(1), rules=RULES)
    pending = [offers(sessions, t)[0] for t in made if t is not None]
    assert [o.technician_id for o in pending] == ["c-one", "c-one"]
    add_tech(sessions, "c-one", 47.3800, 8.5400, capacity=1)

    def accept(offer_id: int) -> str:
        try:
            with transaction(sessions) as db:
                dispatcher.accept(db_session=db, offer_id=offer_id, caller=techie("c-one"),
                                  now=at(2), eta_min=None)  # fmt: skip
        except Conflict as exc:
            return str(exc)
        return "accepted"

    with ThreadPoolExecutor(2) as pool:
        said = list(pool.map(accept, [o.id for o in pending]))
    assert sorted(said)[0] == "accepted" and "at capacity" in sorted(said)[1], said
    with sessions() as db:
        assert dispatcher.active_jobs(db_session=db) == {"c-one": 1}


def test_a_declined_offer_frees_its_technician_for_the_tickets_waiting(sessions) -> None:
    """c-only considers an offer for the first ticket, so the second finds nobody and is to
    look again in a minute; she declines the first: the second is offered to her in the
    very next round, not a minute later."""
    located_shop(sessions, "pos-1", "pos-2")
    add_tech(sessions, "c-only", 47.3800, 8.5400)
    first = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
    second = ingest(sessions, press("pos-2", "receipt-printer")).ticket_id
    assert first is not None and second is not None
    start(sessions, first, 1)
    start(sessions, second, 1)
    assert ticket_of(sessions, second).next_dispatch_at == at(1) + dispatcher.RECHECK_AFTER
    [offer] = offers(sessions, first)
    with transaction(sessions) as db:
        dispatcher.decline(db_session=db, offer_id=offer.id, caller=techie("c-only"),
                           reason="not that one", now=at(1.2), rules=RULES)  # fmt: skip
    assert ticket_of(sessions, second).next_dispatch_at == at(1.2)
    dispatcher.run_round(sessions=sessions, now=lambda: at(1.25), rules=RULES)
    assert [o.technician_id for o in offers(sessions, second)] == ["c-only"]


def accept_first(sessions, ticket_id: int, minutes: float) -> str:
    """The ticket's first offer accepted; by whom."""
    offer = offers(sessions, ticket_id)[0]
    with transaction(sessions) as db:
        dispatcher.accept(
            db_session=db,
            offer_id=offer.id,
            caller=techie(offer.technician_id),
            now=at(minutes),
            eta_min=None,
        )
    return offer.technician_id


def move(sessions, ticket_id: int, to: TicketState, reason: str, minutes: float) -> None:
    """A state change by hand (as POST /api/tickets/{id}/transitions makes it)."""
    with transaction(sessions) as db:
        ticket = db.get(Ticket, ticket_id)
        assert ticket is not None
        dispatcher.tickets.transition(
            db_session=db, ticket=ticket, to=to, actor="olga", reason=reason, now=at(minutes)
        )


def round_at(sessions, minutes: float) -> int:
    return dispatcher.run_round(sessions=sessions, now=lambda: at(minutes), rules=RULES)


def test_a_cancel_at_the_device_withdraws_the_offer_and_tells_the_technician(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    [offer] = offers(sessions, ticket_id)
    ingest(sessions, press("pos-1", "receipt-printer", action="cancel", minutes=2))
    assert ticket_of(sessions, ticket_id).state == "cancelled"
    with transaction(sessions) as db, pytest.raises(Conflict, match="no job to take"):
        dispatcher.accept(
            db_session=db, offer_id=offer.id, caller=techie("c-near"), now=at(2.5), eta_min=None
        )

    assert round_at(sessions, 2.5) == 1
    [withdrawn] = offers(sessions, ticket_id)
    assert (withdrawn.state, withdrawn.reason) == ("withdrawn", "the ticket is cancelled now")
    [notice] = pushed_to(sessions, "c-near", "offer")[1:]  # after the offer itself
    assert notice == {
        "schema_version": 1,
        "type": "offer_withdrawn",
        "offer_id": offer.id,
        "ticket_id": ticket_id,
        "reason": "the ticket is cancelled now",
    }
    assert round_at(sessions, 3) == 0 and round_at(sessions, 10) == 0  # once; never a lapse
    assert len(pushed_to(sessions, "c-near", "offer")) == 2
    with sessions() as db:
        assert dispatcher.recent_outcomes(db_session=db, technician_id="c-near", rules=RULES) == []
        assert dispatcher.pending_per_technician(db_session=db) == {}  # free for the next one


def test_a_job_cancelled_at_the_device_is_called_off_for_its_technician(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    ingest(sessions, press("pos-1", "receipt-printer", action="cancel", minutes=3))

    assert round_at(sessions, 3.5) == 1
    [notice] = pushed_to(sessions, holder, "job")
    assert (notice["type"], notice["ticket_id"], notice["state"]) == (
        "job_called_off",
        ticket_id,
        "cancelled",
    )
    assert str(notice["reason"]).startswith("cancelled at the device")
    ticket = ticket_of(sessions, ticket_id)
    assert (ticket.state, ticket.technician_id) == ("cancelled", None)
    with sessions() as db:
        assert dispatcher.active_jobs(db_session=db) == {}
        jobs, _ = dispatcher.jobs_held(db_session=db, technician_id=holder)
    assert [(j.ticket_id, j.ending.value) for j in jobs] == [(ticket_id, "cancelled")]
    assert round_at(sessions, 4) == 0 and len(pushed_to(sessions, holder, "job")) == 1


def test_a_job_cancelled_while_every_dispatcher_was_down_for_hours_is_still_called_off(
    desk,
) -> None:
    """Every worker stops after minute 3 and is back at hour 5; the requester cancelled at
    minute 10. The first round back reads the changes since its sweep's mark, however old,
    and tells the technician, once."""
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    assert round_at(sessions, 3) == 0  # the last round before the outage
    ingest(sessions, press("pos-1", "receipt-printer", action="cancel", minutes=10))
    assert round_at(sessions, 5 * 60) == 1
    [notice] = pushed_to(sessions, holder, "job")
    assert (notice["ticket_id"], notice["state"]) == (ticket_id, "cancelled")
    assert ticket_of(sessions, ticket_id).technician_id is None  # free for the next job
    assert round_at(sessions, 5 * 60 + 1) == 0 and len(pushed_to(sessions, holder, "job")) == 1


def test_the_sweeps_mark_moves_every_few_minutes_and_never_back(sessions) -> None:
    every = dispatcher.SWEEP_MARK_EVERY.total_seconds() / 60

    def mark() -> object:
        with sessions() as db:
            found = db.get(SweepMark, dispatcher.LOOSE_ENDS)
            return found.at if found else None

    def sweep(minutes: float) -> bool:
        with transaction(sessions) as db:
            return dispatcher.mark_swept(db_session=db, now=at(minutes))

    assert mark() is None and sweep(0) and mark() == at(0)
    assert not sweep(every / 2) and mark() == at(0)  # not a write every round
    assert sweep(every) and mark() == at(every)
    assert not sweep(1) and mark() == at(every)  # a worker with a slow clock: kept


def test_a_first_sweep_does_not_dig_up_what_happened_before_notices_existed(desk) -> None:
    """With no mark yet (a deployment upgraded from before loose ends were told), the first
    sweep reads the last hour only: a job an operator resolved long before is left alone."""
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    move(sessions, ticket_id, TicketState.RESOLVED, "reset it remotely", 5)
    assert round_at(sessions, 3 * 60) == 0
    assert pushed_to(sessions, holder, "job") == []


def test_reassigning_or_unassigning_by_hand_tells_who_loses_the_job(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    with transaction(sessions) as db:
        dispatcher.assign(
            db_session=db,
            ticket_id=ticket_id,
            technician_id="c-far",
            caller=OPERATOR,
            now=at(4),
            reason="c-far is already next door",
        )
    [notice] = pushed_to(sessions, holder, "job")
    assert notice["state"] == "assigned"
    assert notice["reason"] == "reassigned to c-far by olga: c-far is already next door"
    [given] = pushed_to(sessions, "c-far", "job")  # the new holder is told the job is theirs
    assert (given["type"], given["ticket_id"]) == ("job_assigned", ticket_id)
    assert given["reason"] == "assigned by olga: c-far is already next door"
    arrive_by = datetime.fromisoformat(given["arrive_by"])
    assert arrive_by == ticket_of(sessions, ticket_id).sla_arrive_by

    # an operator sends it back to dispatch
    move(sessions, ticket_id, TicketState.DISPATCHING, "c-far's van broke down", 6)
    round_at(sessions, 6.5)
    notice = pushed_to(sessions, "c-far", "job")[-1]
    assert (notice["state"], notice["reason"]) == ("dispatching", "c-far's van broke down")
    assert offers(sessions, ticket_id)[-1].state == "pending"  # and it is offered again


def test_a_manual_assignment_withdraws_the_pending_offer_with_a_notice(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    with transaction(sessions) as db:
        dispatcher.assign(
            db_session=db,
            ticket_id=ticket_id,
            technician_id="s-1",
            caller=OPERATOR,
            now=at(2),
            reason="",
        )
    [offer] = offers(sessions, ticket_id)
    assert offer.state == "withdrawn"
    assert pushed_to(sessions, "c-near", "offer")[-1]["type"] == "offer_withdrawn"
    assert pushed_to(sessions, "c-near", "job") == []  # it was never theirs
    # The trail names who decided: the operator took the offer back and gave the job away.
    with sessions() as db:
        trail = [
            (e.kind, e.actor, e.assigned_to)
            for e in tickets_service.events(db_session=db, ticket_id=ticket_id)
            if e.kind == "offer_withdrawn" or e.to_state == "assigned"
        ]
    assert trail == [("offer_withdrawn", "olga", None), ("transition", "olga", "s-1")]


def test_a_resolved_job_reopened_is_not_called_off(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    with transaction(sessions) as db:
        job = dispatcher.own_ticket(db_session=db, ticket_id=ticket_id, caller=techie(holder))
        dispatcher.progress(
            db_session=db, ticket=job, to=TicketState.RESOLVED, actor=holder, now=at(30)
        )
    assert round_at(sessions, 31) == 0  # their own resolution is nothing to tell them
    move(sessions, ticket_id, TicketState.NEW, "the fault came back", 60)
    round_at(sessions, 61)
    assert pushed_to(sessions, holder, "job") == []


def test_a_job_resolved_by_an_operator_is_called_off_and_still_rated_as_theirs(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    move(sessions, ticket_id, TicketState.RESOLVED, "reset it remotely", 5)
    assert round_at(sessions, 5.5) == 1
    [notice] = pushed_to(sessions, holder, "job")
    assert (notice["state"], notice["reason"]) == ("resolved", "reset it remotely")
    assert round_at(sessions, 6) == 0 and len(pushed_to(sessions, holder, "job")) == 1
    assert ticket_of(sessions, ticket_id).technician_id == holder
    with transaction(sessions) as db:
        dispatcher.rate(
            db_session=db, ticket_id=ticket_id, stars=5, rated_by="olga", now=at(7), rules=RULES
        )


def test_each_withdrawal_and_call_off_happens_once_with_several_dispatchers(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    located_shop(sessions, "pos-2", site="hb-2")
    waiting = ingest(sessions, press("pos-2", "receipt-printer", minutes=3)).ticket_id
    assert waiting is not None
    start(sessions, waiting, 3)
    [pending] = offers(sessions, waiting)
    move(sessions, ticket_id, TicketState.CANCELLED, "the shop closed early", 4)
    move(sessions, waiting, TicketState.CANCELLED, "the shop closed early", 4)
    with sessions() as db:
        stale, dropped = dispatcher.loose_ends(db_session=db, now=at(5))
    assert (stale, dropped) == ([pending.id], [ticket_id])

    def tidy(n: int) -> bool:
        with transaction(sessions) as db:
            if n % 2:
                return dispatcher.tidy_offer(db_session=db, offer_id=pending.id, now=at(5))
            return dispatcher.tidy_ticket(db_session=db, ticket_id=ticket_id, now=at(5))

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(tidy, range(8)))
    assert done.count(True) == 2  # one withdrawal, one call-off
    assert len(pushed_to(sessions, holder, "job")) == 1
    told = pushed_to(sessions, pending.technician_id, "offer")
    assert [n["type"] for n in told].count("offer_withdrawn") == 1
    with sessions() as db:
        assert dispatcher.loose_ends(db_session=db, now=at(6)) == ([], [])


def test_a_lapse_in_a_round_counts_for_the_next_offer_of_that_round(desk) -> None:
    """The round reads everyone's answers once; a lapse it sees is added as it happens, so
    the ranking that follows in the same round knows it (as a fresh read would)."""
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    [offer] = offers(sessions, ticket_id)
    with sessions() as db:
        answers = dispatcher.outcomes(db_session=db, rules=RULES)
    with transaction(sessions) as db:
        assert dispatcher.expire(
            db_session=db,
            offer_id=offer.id,
            now=at(6),
            rules=RULES,
            reads=dispatcher.RoundReads(answers=answers),
        )
    with sessions() as db:
        fresh = dispatcher.outcomes(db_session=db, rules=RULES)
    assert answers == fresh == {offer.technician_id: [False]}


def test_a_technicians_record_can_be_bounded_to_a_recent_period(desk) -> None:
    sessions, ticket_id = desk
    start(sessions, ticket_id, 1)
    holder = accept_first(sessions, ticket_id, 2)
    with sessions() as db:
        whole, _ = dispatcher.jobs_held(db_session=db, technician_id=holder)
        lately, _ = dispatcher.jobs_held(db_session=db, technician_id=holder, since=at(1.5))
        later, _ = dispatcher.jobs_held(db_session=db, technician_id=holder, since=at(3))
        offered = dispatcher.offer_counts(db_session=db, technician_id=holder, since=at(0.5))
        none = dispatcher.offer_counts(db_session=db, technician_id=holder, since=at(3))
    assert [j.ticket_id for j in whole] == [j.ticket_id for j in lately] == [ticket_id]
    assert later == [] and offered == {"accepted": 1} and not none


def test_a_job_is_placed_at_its_device_else_its_site(sessions) -> None:
    """Where a job is, for the technician and for the ETA: a device with its own position is
    measured to (named by its site, with the site's address); one without is measured to its
    site; a device with neither site nor position is named by its id, with no point, and is
    not dispatched (nobody could be sent)."""
    from cloud.devices.models import Device

    located_shop(sessions, "pos-1", "pos-2")
    register(sessions, "loose-1")
    with transaction(sessions) as db:
        device = db.get(Device, "pos-1")
        assert device is not None
        device.latitude, device.longitude = 47.40, 8.50
    tickets = {d: ingest(sessions, press(d)).ticket_id for d in ("pos-1", "pos-2", "loose-1")}
    with sessions() as db:
        where = {
            d: dispatcher.place(db_session=db, ticket=db.get(Ticket, t))  # type: ignore[arg-type]
            for d, t in tickets.items()
        }
        loose = db.get(Ticket, tickets["loose-1"])
        assert loose is not None and dispatcher.job_for(db_session=db, ticket=loose) is None
    assert where["pos-1"] is not None and where["pos-2"] is not None and where["loose-1"]
    assert (where["pos-1"].name, where["pos-1"].lat, where["pos-1"].lon) == ("Site hb", 47.40, 8.50)
    assert (where["pos-2"].lat, where["pos-2"].lon) == (47.3779, 8.5403)  # the site's
    assert (where["loose-1"].name, where["loose-1"].lat) == ("loose-1", None)
    # With the deployment's map: a link to the spot, where there is one.
    with sessions() as db:
        linked = {
            d: dispatcher.place(
                db_session=db,
                ticket=db.get(Ticket, t),  # type: ignore[arg-type]
                map_url="https://maps.example/?q={lat},{lon}",
            )
            for d, t in tickets.items()
        }
    assert (
        linked["pos-1"] is not None
        and linked["pos-1"].map_url == "https://maps.example/?q=47.4,8.5"
    )
    assert linked["loose-1"] is not None and linked["loose-1"].map_url is None  # no point known
    assert where["pos-1"].map_url is None  # no map given: no link


def test_a_workers_book_of_answers_follows_every_change_and_rereads_only_those(
    desk, monkeypatch
) -> None:
    """A worker keeps the technicians' answers from round to round and re-reads only those
    whose offers changed: a decline, an accept, a lapse, and an accept given back (no longer
    counted), each as a fresh read of everyone would give them."""
    sessions, ticket_id = desk
    book = dispatcher.AnswerBook()
    reads: list[str | None] = []
    real = dispatcher.outcomes

    def counted(**kwargs):
        reads.append(kwargs.get("technician_id"))
        return real(**kwargs)

    monkeypatch.setattr(dispatcher, "outcomes", counted)

    def check(minutes: float) -> list[str | None]:
        reads.clear()
        with sessions() as db:
            kept = book.read(db_session=db, rules=RULES, now=at(minutes))
            fresh = real(db_session=db, rules=RULES)
        assert kept == fresh
        return sorted(reads, key=str)

    assert check(0) == [None]  # the first read is everyone's
    assert check(0.5) == []  # nothing changed
    start(sessions, ticket_id, 1)
    [first] = offers(sessions, ticket_id)
    with transaction(sessions) as db:
        dispatcher.decline(
            db_session=db, offer_id=first.id, caller=techie(first.technician_id),
            reason="too far", now=at(2), rules=RULES,
        )  # fmt: skip
    second = offers(sessions, ticket_id)[-1]
    assert check(3) == sorted({first.technician_id, second.technician_id})
    # Another worker's decline, dated before that read but committed after it: the next read
    # goes back far enough to find it.
    with transaction(sessions) as db:
        db.add(
            Offer(
                ticket_id=ticket_id, technician_id="c-nope", stage="crowd", state="declined",
                offered_at=at(2.8), deadline=at(7.8), answered_at=at(2.9), changed_at=at(2.9),
                reason="busy", eta_min=5, score=1, candidates=[],
            )
        )  # fmt: skip
    assert check(4) == sorted({first.technician_id, second.technician_id, "c-nope"})
    holder = second.technician_id
    with transaction(sessions) as db:
        dispatcher.accept(
            db_session=db, offer_id=second.id, caller=techie(holder), now=at(4.5), eta_min=None
        )
    assert check(5) and reads.count(holder) == 1
    with sessions() as db:
        assert real(db_session=db, rules=RULES)[holder] == [True]
    with transaction(sessions) as db:
        ticket = db.get(Ticket, ticket_id)
        dispatcher.give_back(
            db_session=db, ticket=ticket, actor=holder, now=at(6), reason="van broke down",
            extra_skills=[], rules=RULES,
        )  # fmt: skip
    assert holder in check(7)
    with sessions() as db:
        assert holder not in real(db_session=db, rules=RULES)  # the accept no longer counts
    third = offers(sessions, ticket_id)[-1]
    assert third.state == "pending"
    round_at(sessions, 30)  # its deadline passes: a lapse
    assert offers(sessions, ticket_id)[-2].state == "expired"
    assert third.technician_id in check(31)
    assert third.technician_id in check(36)  # changed within the margin before the last read
    assert check(42) == []  # not any more: nothing left to re-read
    # Another policy, or the clock gone back: everyone's again.
    with sessions() as db:
        book.read(db_session=db, rules=DispatchPolicy(acceptance_window=10), now=at(46))
    assert check(47) == [None]
    assert check(41) == [None]


def test_a_worker_keeps_the_profiles_and_reads_again_those_changed_and_the_standing(
    desk,
) -> None:
    """A worker's book of profiles is read whole once, then only for the technicians whose
    row changed (by the ORM, as the service writes: their revision moves on); who is
    available, paused or retired is read for each offer all the same, so someone paused
    between two offers is not asked, and a changed skill counts from the next offer."""
    sessions, ticket_id = desk
    book = dispatcher.ProfileBook()
    with sessions() as db:
        first = dispatcher.candidates(db_session=db, now=at(1), book=book)
    assert sorted(c.id for c in first) == ["c-far", "c-near", "c-nope", "s-1"]
    assert book.read == 4
    with sessions() as db:
        dispatcher.candidates(db_session=db, now=at(1), book=book)
    assert book.read == 4  # nothing changed: nothing read
    with transaction(sessions) as db:
        db.get(Technician, "c-near").paused = True
        db.get(Technician, "c-far").available = False
        db.get(Technician, "c-nope").skills = ["pos", "printers"]  # learnt printers
    with transaction(sessions) as db:
        ticket = db.get(Ticket, ticket_id)
        offer = dispatcher.offer_next(
            db_session=db, ticket=ticket, now=at(1), rules=RULES,
            reads=dispatcher.RoundReads(profiles=book),
        )  # fmt: skip
    assert offer is not None and offer.technician_id == "c-nope"  # the only crowd one left
    assert book.read == 7  # the three whose rows changed, not s-1
    verdicts = {c["technician_id"]: c["reasons"] for c in offer.candidates}
    assert verdicts["c-near"] == ["paused by policy until reviewed"]
    assert verdicts["c-far"] == ["not available"]
    with transaction(sessions) as db:  # retired: gone from the book at the next offer
        dispatcher.retire(
            db_session=db, technician_id="c-nope", caller=OPERATOR, now=at(2), reason="moved",
            rules=RULES,
        )  # fmt: skip
    with sessions() as db:
        left = dispatcher.candidates(db_session=db, now=at(2), book=book)
    assert sorted(c.id for c in left) == ["c-far", "c-near", "s-1"]
    assert book.read == 7


def test_two_changes_of_a_technician_at_once_both_reach_a_workers_profiles(
    postgres_url: str,
) -> None:
    """On PostgreSQL two transactions may change the same technician at once, the second
    having read the row before the first committed. Each moves the revision on in SQL, so
    a worker that read the first change still sees the second (one adding one to what it
    had read would leave the revision where the first put it, and the second unseen)."""
    engine = make_engine(postgres_url)
    migrate(engine)
    sessions = make_sessionmaker(engine)
    add_tech(sessions, "ana", 47.38, 8.54)
    book = dispatcher.ProfileBook()

    def seen() -> matching.Candidate:
        with sessions() as db:
            [ana] = dispatcher.candidates(db_session=db, now=at(1), book=book)
        return ana

    assert seen().capacity == 1
    with sessions() as first, sessions() as second:
        mine, theirs = first.get(Technician, "ana"), second.get(Technician, "ana")
        assert mine is not None and theirs is not None
        mine.capacity = 2
        first.commit()
        assert (seen().capacity, seen().skills) == (2, frozenset({"printers"}))
        theirs.skills = ["printers", "pos"]  # read before the first change was committed
        second.commit()
    assert (seen().capacity, seen().skills) == (2, frozenset({"printers", "pos"}))
    assert book.read == 3
    engine.dispose()


def test_in_a_storm_tickets_nobody_can_take_wait_without_reading_everyone_again(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two tickets wait and everyone is busy: the round reads the crowd once (its triage's
    view) and, since nobody in it could take any of them, makes no offer and reads nobody
    afresh for each; they wait for an operator and look again later, as before. When
    someone comes free, the next round reads afresh and offers."""
    located_shop(sessions, "pos-1", "pos-2")
    add_tech(sessions, "c-a", 47.3800, 8.5400, available=False)
    add_tech(sessions, "c-b", 47.3790, 8.5400, available=False)
    waiting = [ingest(sessions, press(d)).ticket_id for d in ("pos-1", "pos-2")]
    real = dispatcher.candidates
    reads: list[datetime] = []

    def counted(**kwargs: Any) -> list[matching.Candidate]:
        reads.append(kwargs["now"])
        return real(**kwargs)

    monkeypatch.setattr(dispatcher, "candidates", counted)
    assert dispatcher.run_round(sessions=sessions, now=lambda: at(1), rules=RULES) == 0
    assert len(reads) == 1  # the round's own view; none for each ticket
    for ticket_id in waiting:
        ticket = ticket_of(sessions, ticket_id)
        assert ticket.state == TicketState.ESCALATED
        assert ticket.next_dispatch_at == at(1) + dispatcher.RECHECK_AFTER
    with transaction(sessions) as db:
        db.get(Technician, "c-a").available = True  # type: ignore[union-attr]
        dispatcher.wake_waiting(db_session=db, now=at(1.5))
    reads.clear()
    assert dispatcher.run_round(sessions=sessions, now=lambda: at(2), rules=RULES) == 1
    assert len(reads) >= 2  # the round's view, then a fresh read for the offer
    [offer] = [o for t in waiting for o in offers(sessions, t) if o.state == "pending"]
    assert offer.technician_id == "c-a"
