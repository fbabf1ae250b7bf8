"""A technician's history, pure: the jobs they held, read from tickets' state changes."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from cloud.dispatch.history import Change, Ending, HeldJob, in_time, jobs_held, totals
from cloud.tickets.lifecycle import TicketState as S
from tests.cloud.factories import at


def change(
    ticket: int, minute: float, to: S, actor: str = "op", reason: str = "", to_whom: str = ""
) -> Change:
    """One change; an assignment goes to `to_whom`, else to its actor (an accepted offer)."""
    assigned_to = (to_whom or actor) if to is S.ASSIGNED else None
    return Change(ticket, at(minute), actor, to, reason, assigned_to)


def test_a_job_runs_from_assignment_to_what_ended_it() -> None:
    changes = [
        change(1, 0, S.DISPATCHING, "dispatcher"),
        change(1, 2, S.ASSIGNED, "ana", "accepted offer 1"),
        change(1, 5, S.EN_ROUTE, "olga"),  # whoever records a step, it is her job
        change(1, 20, S.ON_SITE, "ana"),
        change(1, 40, S.RESOLVED, "ana", "new roll"),
        change(1, 300, S.NEW, "ingest", "the fault came back"),  # reopened: her job had ended
    ]
    assert jobs_held("ana", changes) == [
        HeldJob(
            1, at(2), "accepted offer 1", at(5), at(20), at(40), Ending.RESOLVED, "new roll", "ana"
        )
    ]
    assert jobs_held("ben", changes) == []
    assert jobs_held("olga", changes) == []  # she only recorded a step of ana's job


def test_given_back_reassigned_and_cancelled_jobs_stay_in_the_history() -> None:
    changes = [
        change(1, 0, S.ASSIGNED, "ana", "accepted offer 1"),
        change(1, 10, S.ON_SITE, "ana"),
        change(1, 30, S.DISPATCHING, "ana", "given back: needs network"),
        change(1, 31, S.ASSIGNED, "ben", "accepted offer 2"),
        change(1, 50, S.RESOLVED, "ben"),
        change(2, 0, S.ASSIGNED, "op", "assigned by op: closest", to_whom="ana"),
        change(2, 5, S.DISPATCHING, "op", "reassigned: she is ill"),
        change(2, 6, S.ASSIGNED, "op", "assigned by op: better now", to_whom="ana"),
        change(3, 60, S.ASSIGNED, "ana", "accepted offer 3"),
        change(3, 70, S.CANCELLED, "op", "the shop closed"),
        change(4, 80, S.ASSIGNED, "ana", "accepted offer 4"),
    ]
    ana = jobs_held("ana", changes)
    assert [(j.ticket_id, j.ending, j.end_reason, j.ended_by) for j in ana] == [
        (1, Ending.HANDED_ON, "given back: needs network", "ana"),
        (2, Ending.HANDED_ON, "reassigned: she is ill", "op"),
        (2, Ending.OPEN, "", ""),
        (3, Ending.CANCELLED, "the shop closed", "op"),
        (4, Ending.OPEN, "", ""),
    ]
    assert ana[0].on_site_at == at(10) and ana[1].on_site_at is None
    ben = jobs_held("ben", changes)
    assert [(j.ticket_id, j.assigned_at, j.on_site_at, j.ending) for j in ben] == [
        (1, at(31), None, Ending.RESOLVED)  # ana's arrival was hers, not his
    ]
    due = {1: at(60), 2: at(60), 3: at(120), 4: at(140)}
    counted = totals(ana, due)
    assert (counted.held, counted.open, counted.handed_on, counted.cancelled) == (5, 2, 2, 1)
    assert (counted.on_site_in_time, counted.on_site_late) == (1, 0)
    assert in_time(ana[0], at(5)) is False and in_time(ana[1], at(60)) is None
    assert jobs_held("op", changes) == []  # the operator assigned, and held nothing


STATES = st.sampled_from([S.DISPATCHING, S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.RESOLVED, S.NEW])


@given(
    st.lists(
        st.tuples(
            st.integers(1, 3),
            st.integers(0, 500),
            STATES,
            st.sampled_from(["ana", "ben", "op"]),
            st.sampled_from(["", "ana", "ben"]),  # "": an accepted offer, else assigned by hand
        ),
        max_size=40,
    )
)
def test_every_assignment_is_one_job_and_jobs_of_a_ticket_never_overlap(raw) -> None:
    changes = [change(t, m, to, actor, to_whom=whom) for t, m, to, actor, whom in raw]
    for who in ("ana", "ben"):
        jobs = jobs_held(who, changes)
        mine = [c for c in changes if c.to_state is S.ASSIGNED and c.assigned_to == who]
        assert len(jobs) == len(mine)
        for ticket in (1, 2, 3):
            spells = [j for j in jobs if j.ticket_id == ticket]
            for before, after in itertools.pairwise(spells):
                assert before.ended_at is not None and before.ended_at <= after.assigned_at
        assert all(j.ended_at is None or j.assigned_at <= j.ended_at for j in jobs)
        assert all((j.ended_at is None) == (j.ending is Ending.OPEN) for j in jobs)
