"""The demo's technicians: a small crowd around the demo sites and a simulated app for each,
which accepts offers after a short while and works the job through, step by step, with the
real dispatch service, so the device's LEDs show every step."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth.roles import Principal, Role
from cloud.clock import utc_now
from cloud.db import transaction
from cloud.dispatch import csvimport
from cloud.dispatch import service as dispatcher
from cloud.dispatch.models import Offer
from cloud.dispatch.policy import DispatchPolicy
from cloud.dispatch.schemas import TechnicianIn
from cloud.errors import CloudError
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket

_LOGGER = logging.getLogger(__name__)
POLL_S = 1.0
SKILLS = ["pos", "printers", "network", "refrigeration", "electrical"]
# (id, name, kind, skills, latitude, longitude)
CREW = [
    ("mia", "Mia Frei", "crowd", ["pos", "printers", "network"], 47.3760, 8.5380),
    ("luca", "Luca Rossi", "crowd", ["refrigeration", "electrical"], 47.4050, 8.5500),
    ("noah", "Noah Graf", "crowd", ["printers", "network"], 47.3900, 8.5150),
    ("lea", "Lea Weber", "staff", SKILLS, 47.3700, 8.5300),
]
# Seconds from one step of a demo job to the next: answer, set off, arrive, fix.
STEPS = (
    (4.0, None),
    (3.0, TicketState.EN_ROUTE),
    (12.0, TicketState.ON_SITE),
    (20.0, TicketState.RESOLVED),
)


def register_crew(sessions: sessionmaker[Session], now: datetime) -> None:
    """The demo's technicians, idempotently."""
    with transaction(sessions) as db:
        for tech_id, name, kind, skills, lat, lon in CREW:
            body = TechnicianIn(
                name=name,
                kind=kind,
                skills=skills,
                home_lat=lat,
                home_lon=lon,
                radius_km=20,
            )
            csvimport.upsert(db_session=db, technician_id=tech_id, body=body, now=now)


@dataclass
class _Job:
    ticket_id: int
    technician_id: str
    step: int
    due: float


class CrewApp:
    """Every demo technician's phone: offers are accepted (now and then declined) and the job
    is worked through on a timer. Runs in a thread of its own until stop()."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        seed: int | None = None,
        rules: DispatchPolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._rules = rules or DispatchPolicy()
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._jobs: list[_Job] = []
        self._answered: set[int] = set()
        self._clock = 0.0
        self._thread = threading.Thread(target=self._run, name="crew", daemon=True)

    def start(self) -> None:
        """Begin answering offers."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and join."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._clock += POLL_S
            self._answer_offers()
            self._advance_jobs()

    def _answer_offers(self) -> None:
        with self._sessions() as db:
            offers = db.scalars(select(Offer).where(Offer.state == "pending")).all()
        for offer in offers:
            if offer.id in self._answered:
                continue
            self._answered.add(offer.id)
            self._jobs.append(
                _Job(offer.ticket_id, offer.technician_id, -offer.id, self._clock + STEPS[0][0])
            )

    def _advance_jobs(self) -> None:
        for job in [j for j in self._jobs if j.due <= self._clock]:
            caller = Principal(0, job.technician_id, Role.TECHNICIAN, job.technician_id)
            try:
                with transaction(self._sessions) as db:
                    if job.step < 0:  # an offer to answer
                        job.step = 1 if self._answer(db, -job.step, caller) else len(STEPS)
                    else:
                        self._step(db, job, caller)
                        job.step += 1
            except CloudError as exc:  # the job moved under us (it lapsed, an operator acted)
                _LOGGER.info("demo crew: %s", exc)
                job.step = len(STEPS)
            if job.step >= len(STEPS):
                self._jobs.remove(job)
            else:
                job.due = self._clock + STEPS[job.step][0]

    def _answer(self, db: Session, offer_id: int, caller: Principal) -> bool:
        """Accept (True) or, now and then, decline."""
        if self._rng.random() < 0.2:
            _LOGGER.info("demo crew: %s declines offer %d", caller.technician_id, offer_id)
            dispatcher.decline(
                db_session=db,
                offer_id=offer_id,
                caller=caller,
                reason="on another job",
                now=utc_now(),
                rules=self._rules,
            )
            return False
        _LOGGER.info("demo crew: %s accepts offer %d", caller.technician_id, offer_id)
        dispatcher.accept(
            db_session=db, offer_id=offer_id, caller=caller, now=utc_now(), eta_min=None
        )
        return True

    def _step(self, db: Session, job: _Job, caller: Principal) -> None:
        ticket = db.get(Ticket, job.ticket_id)
        if ticket is None or ticket.technician_id != job.technician_id:
            job.step = len(STEPS)
            return
        to = STEPS[job.step][1]
        assert to is not None
        _LOGGER.info("demo crew: %s → %s on ticket %d", job.technician_id, to.value, job.ticket_id)
        eta = max(1, round(sum(s for s, _ in STEPS[job.step + 1 : 3]) / 60))
        dispatcher.progress(
            db_session=db,
            ticket=ticket,
            to=to,
            actor=job.technician_id,
            now=utc_now(),
            eta_min=eta if to is TicketState.EN_ROUTE else None,
        )
