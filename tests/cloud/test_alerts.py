"""Operator alerts: an escalation and an on-site clock running out are told once each, on a
real database, and reach a real webhook signed; the rules alone under random sweeps."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cloud.alerts import rules
from cloud.alerts import service as alerts
from cloud.alerts.models import RaisedAlert
from cloud.alerts.rules import AlertChannel, AlertKind, Watched
from cloud.db import transaction
from cloud.dispatch import service as dispatcher
from cloud.dispatch.policy import DispatchPolicy
from cloud.outbound import delivery
from cloud.outbound.models import OutboundMessage
from cloud.outbound.signing import SIGNATURE_HEADER, verify
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.tickets import service as tickets
from cloud.tickets.lifecycle import TicketState
from cloud.tickets.models import Ticket
from tests.cloud.factories import T0, at, client, ingest, press, register, token_for
from tests.helpers import WebhookReceiver, wait_for

RULES = DispatchPolicy()
HOOK = "https://chat.example/hooks/T000/B000/secret-part"
CHANNEL = AlertChannel(url=HOOK, public_url="https://desk.example")

# -- the rules alone ------------------------------------------------------------------------


def watched(state: str = "dispatching", held_by: str | None = None, **values: object) -> Watched:
    """A printer ticket opened at T0, due on site at 11:00 (60 minutes)."""
    fields: dict[str, object] = {
        "ticket_id": 7, "title": "Receipt printer at Shop HB (pos-1)",
        "category": "receipt-printer", "site_id": "hb", "state": state, "opened_at": T0,
        "arrive_by": at(60), "technician_id": held_by,
    } | values  # fmt: skip
    return Watched(**fields)  # type: ignore[arg-type]


def kinds_at(ticket: Watched, minutes: float, sent=frozenset()) -> list[str]:
    return [a.kind.value for a in rules.due([ticket], now=at(minutes), rules=RULES, sent=sent)]


def test_the_on_site_clock_warns_at_80_percent_and_breaches_at_the_target() -> None:
    ticket = watched()
    assert kinds_at(ticket, 47) == []
    assert kinds_at(ticket, 48) == ["onsite_warning"]  # 80% of 60 minutes
    assert kinds_at(ticket, 60) == ["onsite_warning"]  # due at 11:00: not late yet
    assert kinds_at(ticket, 60.1) == ["onsite_breached"]  # first seen late: no warning then
    [warning] = rules.due([ticket], now=at(50), rules=RULES)
    assert warning.summary == (
        "#7 Receipt printer at Shop HB (pos-1): nobody on site yet, 10 min left to the "
        "target (11:00 UTC); nobody holds it."
    )
    zurich = ZoneInfo("Europe/Zurich")  # where the operators are: CET in November
    [local] = rules.due([ticket], now=at(50), rules=RULES, tz=zurich)
    assert "(12:00 CET)" in local.summary
    [late] = rules.due([watched("en_route", "ana")], now=at(135), rules=RULES)
    assert late.summary == (
        "#7 Receipt printer at Shop HB (pos-1): nobody on site, 1 h 15 min past the "
        "target (11:00 UTC); ana holds it (en route)."
    )


def test_an_escalation_is_told_with_its_reason_once_per_escalation() -> None:
    ticket = watched("escalated", escalation=(31, "no technician could take it"))
    [alert] = rules.due([ticket], now=at(2), rules=RULES)
    assert (alert.kind, alert.episode) == (AlertKind.ESCALATED, 31)
    assert alert.summary.endswith("is escalated: no technician could take it. Assign someone.")
    assert rules.due([ticket], now=at(2), rules=RULES, sent={alert.key}) == []
    again = watched("escalated", escalation=(45, "nobody free"))  # escalated a second time
    assert [a.episode for a in rules.due([again], now=at(3), rules=RULES, sent={alert.key})] == [45]
    both = rules.due([ticket], now=at(50), rules=RULES, kinds=frozenset({AlertKind.ESCALATED}))
    assert [a.kind for a in both] == [AlertKind.ESCALATED]  # the clock's kinds not asked for


def test_the_most_urgent_come_first() -> None:
    """Escalations, then breaches, then warnings; each kind by on-site target."""
    tickets = [
        watched(ticket_id=1),  # warns (due 11:00)
        watched(ticket_id=2, arrive_by=at(30)),  # breached (due 10:30)
        watched(ticket_id=3, arrive_by=at(45)),  # breached (due 10:45)
        watched(ticket_id=4, arrive_by=at(56)),  # warns (due 10:56)
        watched("escalated", ticket_id=5, arrive_by=at(90), escalation=(8, "")),
    ]
    order = [(a.ticket_id, a.kind.value) for a in rules.due(tickets, now=at(50), rules=RULES)]
    assert order == [
        (5, "escalated"), (2, "onsite_breached"), (3, "onsite_breached"),
        (4, "onsite_warning"), (1, "onsite_warning"),
    ]  # fmt: skip


def test_a_chat_message_lists_ten_alerts_with_links_and_counts_the_rest() -> None:
    raised = rules.due([watched(ticket_id=n) for n in range(1, 13)], now=at(50), rules=RULES)
    text = rules.headline(raised, CHANNEL.ticket_url())
    lines = text.splitlines()
    assert lines[0] == "crowdfix: 12 ticket alerts"
    assert lines[1].startswith("• #1 Receipt printer") and lines[1].endswith(
        " https://desk.example/ui/ticket?id=1"
    )
    assert len(lines) == 1 + rules.LISTED + 1
    assert lines[-1] == "…and 2 more: see the operator desk."
    assert "https://" not in rules.headline(raised[:1], None)  # no address known: no link
    done = [rules.Cleared(9, 4, AlertKind.ESCALATED, "#4 …: back in dispatch."),
            rules.Cleared(10, 5, AlertKind.ONSITE_WARNING, None)]  # fmt: skip
    assert rules.headline(raised[:1], None, done).splitlines()[0::2] == [
        "crowdfix: 1 ticket alert, 1 cleared", "✓ #4 …: back in dispatch."
    ]  # fmt: skip
    assert rules.headline([], None, done).splitlines() == [
        "crowdfix: 1 ticket alert cleared", "✓ #4 …: back in dispatch."
    ]  # fmt: skip
    assert CHANNEL.webhook_to() == "https://chat.example/…"  # its secret path not shown


def standing(kind: AlertKind, state: str, **values: object) -> rules.Standing:
    """An alert raised about ticket 7 (due on site at 11:00), and where the ticket is now."""
    fields: dict[str, object] = {
        "alert_id": 3, "kind": kind, "episode": 0, "ticket_id": 7,
        "title": "Receipt printer at Shop HB (pos-1)", "state": state, "arrive_by": at(60),
        "on_site_at": None, "technician_id": None,
    } | values  # fmt: skip
    return rules.Standing(**fields)  # type: ignore[arg-type]


def said_when_cleared(alert: rules.Standing, minutes: float = 70) -> str | bool | None:
    """What clearing it says (None: cleared silently; False: it still holds)."""
    done = rules.cleared([alert], now=at(minutes))
    return done[0].summary if done else False


def test_an_alert_is_cleared_with_where_the_ticket_stands_or_silently_when_replaced() -> None:
    name = "#7 Receipt printer at Shop HB (pos-1)"
    up = AlertKind.ESCALATED
    assert said_when_cleared(standing(up, "escalated", episode=31, escalation=31)) is False
    assert said_when_cleared(standing(up, "assigned", technician_id="ana", episode=31)) == (
        f"{name}: no longer escalated; ana holds it (assigned)."
    )
    assert said_when_cleared(standing(up, "dispatching")) == (
        f"{name}: no longer escalated; back in dispatch."
    )
    # Escalated again: the new escalation's alert says so.
    assert said_when_cleared(standing(up, "escalated", episode=31, escalation=45)) is None
    warned = AlertKind.ONSITE_WARNING
    assert said_when_cleared(standing(warned, "en_route", technician_id="ana"), 55) is False
    assert said_when_cleared(standing(warned, "en_route", technician_id="ana"), 61) is None
    arrived = {"on_site_at": at(58), "technician_id": "ana"}
    assert said_when_cleared(standing(warned, "on_site", **arrived)) == (
        f"{name}: ana is on site, in time."
    )
    late = AlertKind.ONSITE_BREACHED
    assert said_when_cleared(standing(late, "assigned", technician_id="ana")) is False
    assert said_when_cleared(standing(late, "on_site", on_site_at=at(72), technician_id="ana")) == (
        f"{name}: ana is on site, 12 min after the target."
    )
    assert said_when_cleared(standing(late, "cancelled")) == f"{name}: cancelled."
    assert said_when_cleared(standing(late, "on_site")) == f"{name}: someone is on site."
    assert said_when_cleared(standing(up, "escalated", escalation=0, parent_id=9)) == (
        f"{name}: now part of site ticket #9."
    )
    assert said_when_cleared(standing(late, "resolved", on_site_at=at(72))) == f"{name}: resolved."


@settings(max_examples=200, deadline=None)
@given(
    sweeps=st.lists(st.floats(min_value=0, max_value=150), min_size=1, max_size=25),
    target=st.sampled_from([30, 60, 240]),
)
def test_each_clock_alert_is_raised_once_when_a_sweep_sees_it_due(sweeps, target) -> None:
    """Sweeps at random moments, each remembering what was raised before: the warning is
    raised once if some sweep falls in [80% of the target, the target] before any sweep
    after it, the breach once if some sweep falls after the target, and nothing twice."""
    ticket = watched(arrive_by=at(target))
    sent: set[tuple[int, str, int]] = set()
    raised: list[str] = []
    for minutes in sorted(sweeps):
        for alert in rules.due([ticket], now=at(minutes), rules=RULES, sent=sent):
            sent.add(alert.key)
            raised.append(alert.kind.value)
    ordered = sorted(sweeps)
    first_late = next((m for m in ordered if m > target), None)
    in_window = [m for m in ordered if 0.8 * target <= m <= target]
    expected = (["onsite_warning"] if in_window else []) + (
        ["onsite_breached"] if first_late is not None else []
    )
    assert raised == expected


# -- on a real database ---------------------------------------------------------------------


def escalated_ticket(sessions, n: int = 0) -> int:
    """A printer ticket at a shop no technician can reach (the n-th such shop): the
    dispatcher escalates it."""
    device, site = f"pos-far-{n}", f"far-{n}"
    register(sessions, device, site=site)
    with transaction(sessions) as db:
        far = SiteIn(id=site, name="Far", latitude=46.0, longitude=7.0 + n / 100)
        sites.upsert(db_session=db, site_in=far, now=T0)
    ticket_id = ingest(sessions, press(device, "receipt-printer")).ticket_id
    assert ticket_id is not None
    with transaction(sessions) as db:
        dispatcher.start(db_session=db, ticket_id=ticket_id, now=at(1), rules=RULES)
        assert db.get(Ticket, ticket_id).state == TicketState.ESCALATED  # type: ignore[union-attr]
    return ticket_id


def sweep(sessions, minutes: float, channel: AlertChannel = CHANNEL) -> list[tuple[str, int]]:
    with transaction(sessions) as db:
        swept = alerts.sweep(db_session=db, now=at(minutes), rules_=RULES, channel=channel)
        return [(row.kind, row.ticket_id) for row in swept.raised]


def posted(sessions, url: str = HOOK) -> list[dict]:
    with sessions() as db:
        rows = db.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.topic == f"webhook:@alerts:{url}")
            .order_by(OutboundMessage.id)
        ).all()
    return [json.loads(row.payload) for row in rows]


def test_an_escalated_ticket_is_told_once_then_its_clock_warns_and_breaches(sessions) -> None:
    ticket_id = escalated_ticket(sessions)
    assert sweep(sessions, 1) == [("escalated", ticket_id)]
    assert sweep(sessions, 2) == []  # told already
    assert sweep(sessions, 49) == [("onsite_warning", ticket_id)]
    assert sweep(sessions, 50) == []
    assert sweep(sessions, 61) == [("onsite_breached", ticket_id)]
    assert sweep(sessions, 90) == []
    notices = posted(sessions)
    assert [n["alerts"][0]["kind"] for n in notices] == [
        "escalated", "onsite_warning", "onsite_breached"
    ]  # fmt: skip
    first = notices[0]
    assert first["type"] == "alerts" and first["text"].startswith("crowdfix: 1 ticket alert\n")
    assert first["alerts"][0]["url"] == f"https://desk.example/ui/ticket?id={ticket_id}"
    assert "Assign someone." in first["alerts"][0]["summary"]
    with sessions() as db:
        expires = db.scalars(select(OutboundMessage.expires_at)).first()
    assert expires == at(1) + alerts.WORTH_SENDING  # an hour late is history


def test_an_escalation_an_operator_deals_with_is_cleared_in_the_next_message(sessions) -> None:
    ticket_id = escalated_ticket(sessions)
    assert sweep(sessions, 1) == [("escalated", ticket_id)]
    register(sessions, "pos-8", site="near")
    other = ingest(sessions, press("pos-8", "till")).ticket_id
    with transaction(sessions) as db:  # olga assigns it by hand to sam
        ticket = db.get(Ticket, ticket_id)
        tickets.transition(
            db_session=db, ticket=ticket, to=TicketState.ASSIGNED, actor="olga",
            reason="sam goes", now=at(3), assigned_to="sam",
        )  # fmt: skip
        ticket.technician_id = "sam"
    assert sweep(sessions, 37) == [("onsite_warning", other)]  # the till's clock, and ...
    [_, notice] = posted(sessions)
    assert [c["kind"] for c in notice["cleared"]] == ["escalated"]  # ... the escalation over
    assert notice["cleared"][0]["summary"].endswith("no longer escalated; sam holds it (assigned).")
    assert notice["text"].startswith("crowdfix: 1 ticket alert, 1 cleared\n")
    assert "\n✓ #" in notice["text"]
    with sessions() as db:
        row = db.scalars(select(RaisedAlert).where(RaisedAlert.kind == "escalated")).one()
    assert row.cleared_at == at(37)
    assert sweep(sessions, 38) == [] and len(posted(sessions)) == 2  # nothing more to say


def test_escalated_again_is_told_again(sessions) -> None:
    ticket_id = escalated_ticket(sessions)
    assert sweep(sessions, 1) == [("escalated", ticket_id)]
    with transaction(sessions) as db:  # an operator sends it back into dispatch
        ticket = db.get(Ticket, ticket_id)
        tickets.transition(
            db_session=db, ticket=ticket, to=TicketState.DISPATCHING, actor="olga",
            reason="try again", now=at(5),
        )  # fmt: skip
    assert sweep(sessions, 6) == []
    with transaction(sessions) as db:  # and nobody can take it, again
        dispatcher.start(db_session=db, ticket_id=ticket_id, now=at(7), rules=RULES)
    assert sweep(sessions, 8) == [("escalated", ticket_id)]
    with sessions() as db:
        episodes = db.scalars(select(RaisedAlert.episode).order_by(RaisedAlert.id)).all()
    assert len(set(episodes)) == 2


def test_a_ticket_reached_in_time_raises_nothing_and_no_webhook_means_listed_only(
    sessions,
) -> None:
    ticket_id = escalated_ticket(sessions)
    listed_only = AlertChannel(kinds=frozenset({AlertKind.ONSITE_WARNING}))
    assert sweep(sessions, 1, listed_only) == []  # escalation not asked for
    with transaction(sessions) as db:  # somebody got there (how is not the point here)
        ticket = db.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.on_site_at, ticket.state = at(30), TicketState.ON_SITE
    assert sweep(sessions, 50, listed_only) == []
    register(sessions, "pos-8", site="near")
    second = ingest(sessions, press("pos-8", "till")).ticket_id
    assert sweep(sessions, 35, listed_only) == []  # a till's target is 45 minutes
    assert sweep(sessions, 37, listed_only) == [("onsite_warning", second)]  # 80% from 36
    assert posted(sessions) == []  # no webhook: raised and listed, sent nowhere


def test_the_chat_format_posts_the_text_alone(sessions) -> None:
    escalated_ticket(sessions)
    chat = AlertChannel(url=HOOK, format="chat")
    sweep(sessions, 1, chat)
    [body] = posted(sessions)
    assert list(body) == ["text"] and "is escalated" in body["text"]


def test_two_workers_sweeping_at_once_raise_each_alert_once(sessions) -> None:
    """Several workers sweep the same tickets: on PostgreSQL one sweeps at a time (the others
    skip their turn), on SQLite writes are serial; either way each alert exists once."""
    for n in range(6):
        escalated_ticket(sessions, n)

    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: len(sweep(sessions, 61)), range(8)))
    with sessions() as db:
        keys = db.execute(select(RaisedAlert.ticket_id, RaisedAlert.kind)).all()
    assert len(keys) == len(set(keys)) == 12  # 6 escalated + 6 breached, once each
    assert sum(counts) == 12
    assert sum(len(n["alerts"]) for n in posted(sessions)) == 12  # and POSTed once


# -- the worker and the API -----------------------------------------------------------------


def test_a_worker_raises_and_posts_them_signed_to_a_real_webhook(
    sessions, worker_for, monkeypatch
) -> None:
    ticket_id = escalated_ticket(sessions)  # opened days ago: escalated and long late now
    secret = "alert-secret-of-the-test"
    with WebhookReceiver("/hooks/crowdfix") as hook:
        worker = worker_for(
            sessions, alert_webhook_url=hook.url, alert_webhook_secret=secret,
            public_url="https://desk.example",
        )  # fmt: skip
        assert worker.raise_alerts() == 2
        writes = []
        real = alerts.sweep
        monkeypatch.setattr(alerts, "sweep", lambda **kw: writes.append(1) or real(**kw))
        assert worker.raise_alerts() == 0
        assert writes == []  # nothing due: a look, no write transaction (no lock held)
        assert worker.relay_webhooks() == 1
        [post] = hook.taken
    body = json.loads(post.body)
    assert [a["kind"] for a in body["alerts"]] == ["escalated", "onsite_breached"]
    assert body["text"].startswith("crowdfix: 2 ticket alerts")
    assert f"https://desk.example/ui/ticket?id={ticket_id}" in body["text"]
    assert verify(secret, post.body, post.headers[SIGNATURE_HEADER], now=int(time.time()))


def test_an_alert_webhook_that_was_down_gets_each_alert_once_when_back(
    sessions, worker_for, monkeypatch
) -> None:
    """The chat is down: the alerts wait in the outbox (no second copy raised meanwhile),
    the operators can see why, and when it is back each POST arrives once."""
    monkeypatch.setattr(delivery, "RETRY_FIRST", timedelta(seconds=0.2))
    monkeypatch.setattr(delivery, "RETRY_MAX", timedelta(seconds=0.4))
    escalated_ticket(sessions)
    with WebhookReceiver() as hook:
        hook.down = True
        worker = worker_for(sessions, alert_webhook_url=hook.url)
        assert worker.raise_alerts() == 2
        assert worker.relay_webhooks() == 0 and hook.refused == 1
        assert worker.raise_alerts() == 0  # told already, delivered or not
        with sessions() as db:
            health = alerts.webhook_health(db_session=db, channel=worker._alert_channel)
        assert health is not None
        assert (health.waiting, health.last_error) == (1, "HTTP 503")
        hook.down = False
        wait_for(lambda: worker.relay_webhooks() == 1, 10, "the alerts delivered")
        assert worker.relay_webhooks() == 0
        [post] = hook.taken
    assert [a["kind"] for a in json.loads(post.body)["alerts"]] == ["escalated", "onsite_breached"]


def test_operators_list_alerts_and_an_admin_sends_a_test_one(sessions) -> None:
    ticket_id = escalated_ticket(sessions)
    sweep(sessions, 1)
    operator = client(sessions, "operator")
    view = operator.get("/api/alerts").json()
    assert [(a["kind"], a["ticket_id"]) for a in view["alerts"]] == [("escalated", ticket_id)]
    assert view["webhook_to"] is None and view["webhook"] is None  # none set in this app
    assert view["kinds"] == ["escalated", "onsite_breached", "onsite_warning"]
    assert operator.get("/api/alerts", params={"ticket_id": ticket_id + 1}).json()["alerts"] == []
    technician = {"Authorization": f"Bearer {token_for(sessions, 'technician', technician_id='x')}"}
    assert operator.get("/api/alerts", headers=technician).status_code == 403
    assert operator.post("/api/alerts/test").status_code == 403  # admins set integrations up
    refused = client(sessions, "admin").post("/api/alerts/test")
    assert refused.status_code == 409 and "CROWDFIX_ALERT_WEBHOOK_URL" in refused.json()["detail"]


def test_an_admin_test_alert_is_queued_for_the_webhook(sessions) -> None:
    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.main import create_app

    app = create_app(CloudSettings(alert_webhook_url=HOOK, alert_webhook_format="chat"), sessions)
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {token_for(sessions, 'admin', 'ada')}"
    assert api.post("/api/alerts/test").status_code == 202
    [body] = posted(sessions)
    assert body == {
        "text": "crowdfix: a test alert, sent by ada. crowdfix's alerts reach this channel."
    }
    view = api.get("/api/alerts").json()
    assert view["webhook_to"] == "https://chat.example/…"
    assert view["webhook"]["waiting"] == 1


def test_unknown_alert_kinds_are_refused_with_the_known_ones() -> None:
    from pydantic import ValidationError

    from cloud.config import CloudSettings

    with pytest.raises(ValidationError, match="no alert kind late; the kinds are escalated"):
        CloudSettings(alerts="escalated,late")
    assert CloudSettings(alerts="").alert_kinds() == frozenset()
    assert CloudSettings(alerts=" escalated ").alert_kinds() == {AlertKind.ESCALATED}
    with pytest.raises(ValidationError, match="CROWDFIX_ALERT_TIMEZONE: 'Zurich' is not a time"):
        CloudSettings(alert_timezone="Zurich")
    assert CloudSettings(alert_timezone="Europe/Zurich").alert_channel().timezone == (
        "Europe/Zurich"
    )
