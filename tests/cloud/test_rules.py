"""The ticket rules, pure: priority, dedup, cancel, flapping, auto-resolve, site grouping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cloud.devices.presence import Presence, newer_status, offline_ticket_due, presence
from cloud.tickets import rules
from cloud.tickets.lifecycle import OPEN, TRANSITIONS, TicketState, can_transition
from cloud.tickets.taxonomy import AutoResolve, Flapping, Priority, SiteGrouping, load_taxonomy
from contracts import Action, Severity

TAX = load_taxonomy()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Monday 11:00 in Zurich
S = TicketState


def ticket(**kw) -> rules.TicketView:
    base = {"id": 7, "state": S.NEW, "priority": Priority.NORMAL}
    return rules.TicketView(**{**base, **kw})


# -- priority -----------------------------------------------------------------------------


def test_priority_combines_category_severity_urgency_site_and_hours() -> None:
    printer = TAX.category("receipt-printer")
    assert rules.priority(printer)[0] == Priority.NORMAL
    assert rules.priority(printer, urgent=True)[0] == Priority.HIGH
    assert rules.priority(printer, severity=Severity.CRITICAL)[0] == Priority.CRITICAL
    assert rules.priority(printer, site_criticality=Priority.HIGH)[0] == Priority.HIGH
    assert rules.priority(printer, business_hours=False)[0] == Priority.LOW
    fridge = TAX.category("refrigeration")  # after_hours: keep
    assert rules.priority(fridge, business_hours=False)[0] == Priority.HIGH
    level, why = rules.priority(printer, urgent=True, site_criticality=Priority.LOW)
    assert level == Priority.NORMAL and any("urgent" in w for w in why)


def test_business_hours_follow_the_site_time_zone() -> None:
    hours = TAX.business_hours  # Mon-Sat 08:00-19:00 Europe/Zurich
    assert rules.in_business_hours(NOW, hours)
    assert not rules.in_business_hours(NOW.replace(hour=20), hours)  # 21:00 in Zurich
    assert not rules.in_business_hours(NOW + timedelta(days=6), hours)  # Sunday
    assert not rules.in_business_hours(NOW, hours, "America/New_York")  # 05:00 there


@given(
    st.sampled_from(list(TAX.categories)),
    st.sampled_from([None, *Severity]),
    st.booleans(),
    st.sampled_from([None, *Priority]),
    st.booleans(),
)
def test_priority_is_always_in_range_and_urgent_is_at_least_high(name, sev, urgent, crit, hours):
    level, reasons = rules.priority(
        TAX.category(name), severity=sev, urgent=urgent, site_criticality=crit, business_hours=hours
    )
    assert Priority.LOW <= level <= Priority.CRITICAL and reasons
    if urgent and crit in (None, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL):
        assert level >= Priority.HIGH


# -- buttons ------------------------------------------------------------------------------


def test_a_request_opens_and_a_repeat_joins_raising_priority() -> None:
    assert isinstance(
        rules.decide_button(Action.REQUEST, None, wanted=Priority.NORMAL, reasons=("r",)),
        rules.Open,
    )
    joined = rules.decide_button(Action.URGENT, ticket(), wanted=Priority.HIGH, reasons=())
    assert joined == rules.Join(7, Priority.HIGH)
    assert rules.decide_button(
        Action.REQUEST, ticket(priority=Priority.HIGH), wanted=Priority.NORMAL, reasons=()
    ) == rules.Join(7, None)


def test_cancel_cancels_only_what_the_requester_may_cancel() -> None:
    assert rules.decide_button(
        Action.CANCEL, ticket(), wanted=Priority.NORMAL, reasons=()
    ) == rules.Cancel(7)
    assert isinstance(
        rules.decide_button(Action.CANCEL, None, wanted=Priority.NORMAL, reasons=()), rules.Ignore
    )
    on_site = rules.decide_button(
        Action.CANCEL, ticket(state=S.ON_SITE), wanted=Priority.NORMAL, reasons=()
    )
    assert isinstance(on_site, rules.Note) and "on site" in on_site.text
    faulty = rules.decide_button(
        Action.CANCEL, ticket(active_faults=frozenset({"x"})), wanted=Priority.NORMAL, reasons=()
    )
    assert isinstance(faulty, rules.Note) and "faults" in faulty.text
    late = rules.decide_button(
        Action.REQUEST, None, wanted=Priority.NORMAL, reasons=(), cancelled_later=True
    )
    assert isinstance(late, rules.Ignore)


# -- faults -------------------------------------------------------------------------------

FLAP = Flapping(raises=3, window_min=30)


def raised(open_ticket=None, last=None, times=()) -> rules.Decision:
    return rules.decide_fault_raised(
        open_ticket,
        last,
        now=NOW,
        raise_times=list(times),
        flapping_policy=FLAP,
        wanted=Priority.HIGH,
        reasons=("r",),
    )


def test_a_raise_opens_joins_or_reopens_a_ticket_it_just_resolved() -> None:
    assert isinstance(raised(), rules.Open)
    assert raised(ticket()) == rules.Join(7, Priority.HIGH, False)
    auto = ticket(state=S.RESOLVED, resolution="auto", resolved_at=NOW - timedelta(minutes=5))
    assert raised(last=auto) == rules.Reopen(7, Priority.HIGH, False)
    old = ticket(state=S.RESOLVED, resolution="auto", resolved_at=NOW - timedelta(hours=2))
    assert isinstance(raised(last=old), rules.Open)
    by_hand = ticket(state=S.RESOLVED, resolution="technician", resolved_at=NOW)
    assert isinstance(raised(last=by_hand), rules.Open)


def test_flapping_is_three_raises_within_the_window() -> None:
    recent = [NOW - timedelta(minutes=m) for m in (25, 12, 0)]
    assert rules.is_flapping(recent, NOW, FLAP)
    assert not rules.is_flapping(recent[1:], NOW, FLAP)
    assert not rules.is_flapping([NOW - timedelta(minutes=40), *recent[1:]], NOW, FLAP)
    assert raised(ticket(), times=recent) == rules.Join(7, Priority.HIGH, True)


def test_a_clear_resolves_only_when_nobody_is_needed() -> None:
    base = ticket(active_faults=frozenset({"hot"}))
    policy = AutoResolve.WHEN_UNDISPATCHED
    assert rules.decide_fault_cleared("hot", base, policy) == rules.FaultCleared(
        7, True, "hot cleared before anyone was needed."
    )
    for variant, words in [
        (ticket(active_faults=frozenset({"hot", "door"})), "other faults"),
        (ticket(active_faults=frozenset({"hot"}), requested=True), "a person asked"),
        (ticket(active_faults=frozenset({"hot"}), flapping=True), "flapping"),
        (ticket(active_faults=frozenset({"hot"}), dispatched=True), "after dispatch"),
    ]:
        decision = rules.decide_fault_cleared("hot", variant, policy)
        assert isinstance(decision, rules.FaultCleared) and not decision.resolve, words
        assert words in decision.note
    assert rules.decide_fault_cleared(
        "hot", ticket(active_faults=frozenset({"hot"}), dispatched=True), AutoResolve.ALWAYS
    ).resolve
    assert not rules.decide_fault_cleared("hot", base, AutoResolve.NEVER).resolve
    assert isinstance(rules.decide_fault_cleared("hot", None, policy), rules.Ignore)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10)), max_size=40))
def test_raise_and_clear_never_leave_two_open_tickets(steps) -> None:
    """A tiny simulation of one device and code: at most one open ticket, ever."""
    open_ticket: rules.TicketView | None = None
    last: rules.TicketView | None = None
    now, raises, next_id, active = NOW, [], 1, False
    for is_raise, gap in steps:
        now += timedelta(minutes=gap)
        if is_raise == active:
            continue  # the agent raises once and clears once
        active = is_raise
        if is_raise:
            raises.append(now)
            d = rules.decide_fault_raised(
                open_ticket,
                last,
                now=now,
                raise_times=raises,
                flapping_policy=FLAP,
                wanted=Priority.HIGH,
                reasons=(),
            )
            if isinstance(d, rules.Open):
                assert open_ticket is None
                open_ticket = rules.TicketView(
                    next_id,
                    S.NEW,
                    Priority.HIGH,
                    active_faults=frozenset({"f"}),
                    flapping=d.flapping,
                )
                next_id += 1
            elif isinstance(d, rules.Reopen):
                assert open_ticket is None and last is not None and d.ticket_id == last.id
                open_ticket = rules.TicketView(
                    last.id,
                    S.NEW,
                    Priority.HIGH,
                    active_faults=frozenset({"f"}),
                    flapping=d.flapping,
                )
            else:
                assert isinstance(d, rules.Join) and open_ticket is not None
        else:
            d = rules.decide_fault_cleared("f", open_ticket, AutoResolve.WHEN_UNDISPATCHED)
            if isinstance(d, rules.FaultCleared) and d.resolve:
                assert open_ticket is not None
                last = rules.TicketView(
                    open_ticket.id, S.RESOLVED, Priority.HIGH, resolved_at=now, resolution="auto"
                )
                open_ticket = None
            elif open_ticket is not None:
                open_ticket = rules.TicketView(
                    open_ticket.id, S.NEW, Priority.HIGH, flapping=open_ticket.flapping
                )


# -- site grouping ------------------------------------------------------------------------


def candidate(tid: int, device: str, minutes_ago: float, parent=None) -> rules.SiteCandidate:
    return rules.SiteCandidate(tid, device, NOW - timedelta(minutes=minutes_ago), parent)


def test_three_devices_of_a_site_at_once_make_one_site_ticket() -> None:
    policy = SiteGrouping(devices=3, window_min=10)
    two = [candidate(1, "a", 5), candidate(2, "b", 1)]
    assert rules.decide_site_grouping(two, None, now=NOW, policy=policy) is None
    three = [*two, candidate(3, "c", 0)]
    assert rules.decide_site_grouping(three, None, now=NOW, policy=policy) == rules.SiteDecision(
        None, (1, 2, 3)
    )
    spread = [candidate(1, "a", 30), candidate(2, "b", 20), candidate(3, "c", 0)]
    assert rules.decide_site_grouping(spread, None, now=NOW, policy=policy) is None
    late = [candidate(1, "a", 5, parent=9), candidate(4, "d", 0)]
    assert rules.decide_site_grouping(late, 9, now=NOW, policy=policy) == rules.SiteDecision(
        9, (4,)
    )


# -- lifecycle and presence -----------------------------------------------------------------


def test_the_state_machine_ends_in_closed_or_cancelled() -> None:
    assert can_transition(S.NEW, S.ASSIGNED) and not can_transition(S.NEW, S.ON_SITE)
    assert not TRANSITIONS[S.CLOSED] and not TRANSITIONS[S.CANCELLED]
    assert can_transition(S.RESOLVED, S.NEW)  # reopen
    assert all(can_transition(s, S.CANCELLED) for s in OPEN)


def test_presence_from_silence_and_the_last_will() -> None:
    policy = TAX.presence
    seen = NOW - timedelta(seconds=100)
    kw = {"status": "online", "heartbeat_s": 60, "policy": policy}
    assert presence(NOW, last_seen=seen, **kw) is Presence.ONLINE
    assert presence(NOW + timedelta(seconds=100), last_seen=seen, **kw) is Presence.STALE
    assert presence(NOW + timedelta(seconds=300), last_seen=seen, **kw) is Presence.OFFLINE
    assert presence(NOW, last_seen=seen, **{**kw, "status": "offline"}) is Presence.OFFLINE
    assert presence(NOW, last_seen=None, **kw) is Presence.UNKNOWN
    assert not offline_ticket_due(NOW + timedelta(minutes=4), NOW, policy)
    assert offline_ticket_due(NOW + timedelta(minutes=5), NOW, policy)


def test_status_messages_are_ordered_by_session() -> None:
    session1, session2 = NOW, NOW + timedelta(minutes=10)
    assert newer_status(None, None, "online", session1)
    assert newer_status("online", session1, "offline", session1)  # its own will
    assert not newer_status("offline", session1, "online", session1)  # a late birth: no
    assert newer_status("offline", session1, "online", session2)  # a new session
    assert not newer_status("online", session2, "offline", session1)  # an old will, late
