"""Offers reach the technician the moment they are made: on their MQTT topic and as a POST to
their webhook, through the running worker (dispatcher and relay) and a real Mosquitto."""

from __future__ import annotations

import contextlib
import json
import queue
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from cloud.auth.roles import Principal, Role
from cloud.clock import utc_now
from cloud.db import transaction
from cloud.dispatch import csvimport
from cloud.dispatch import service as dispatcher
from cloud.dispatch.models import Technician
from cloud.dispatch.schemas import OfferNotice, TechnicianIn
from cloud.outbound import delivery
from cloud.outbound import service as outbound
from cloud.outbound.signing import SIGNATURE_HEADER, verify
from cloud.worker import DELIVERY_HEADER
from mqttlink import BrokerSettings, Inbound, MqttLink
from tests.cloud.factories import T0, ingest, located_shop, press
from tests.conftest import CloudStack
from tests.helpers import WebhookReceiver, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A technician's webhook, taking every POST."""
    with WebhookReceiver() as receiver:
        yield receiver


def test_an_offer_is_pushed_on_mqtt_and_to_the_webhook(
    cloud: CloudStack, mosquitto, webhook
) -> None:
    sessions = cloud.sessions
    ana_with_webhook(sessions, webhook.url)
    # What ana's app is given to check that offers come from crowdfix; the database keeps
    # only its version (the secret is derived from the deployment's key).
    made = httpx.post(
        f"{cloud.api_url}/api/technicians/ana/webhook-secret",
        headers={"Authorization": f"Bearer {cloud.token}"},
    )
    secret = made.json()["secret"]
    with sessions() as db:
        ana = db.get(Technician, "ana")
        assert ana is not None and ana.webhook_secret is None and ana.webhook_secret_version == 1
    with listening(mosquitto, "ana-phone", "tech/crowdfix/v1/ana/offer") as pushed:
        ticket_id = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
        on_mqtt = json.loads(pushed.get(timeout=15).payload)
        post = wait_for(lambda: webhook.taken, 15, "the offer POSTed to the webhook")[0]
        body, signature = post.body, post.headers[SIGNATURE_HEADER]
        assert on_mqtt == json.loads(body)
        assert verify(secret, body, signature, now=int(time.time()))  # signed by crowdfix
        assert not verify("whsec_someone-else", body, signature, now=int(time.time()))
        assert not verify(secret, body + b" ", signature, now=int(time.time()))
        assert (on_mqtt["type"], on_mqtt["ticket_id"], on_mqtt["category"]) == (
            "offer",
            ticket_id,
            "receipt-printer",
        )
        # Where to go and by when, for the app to show before they answer; a tap on the place
        # opens the deployment's map (CROWDFIX_MAP_URL, OpenStreetMap by default).
        osm = "https://www.openstreetmap.org/?mlat=47.3779&mlon=8.5403#map=18/47.3779/8.5403"
        assert on_mqtt["where"] == {
            "name": "Site hb", "address": "", "lat": 47.3779, "lon": 8.5403, "map_url": osm
        }  # fmt: skip
        assert on_mqtt["arrive_by"] is not None
        offers = wait_for(lambda: cloud.get(f"/api/tickets/{ticket_id}/offers"), 5, "the offer")
        assert offers[0]["id"] == on_mqtt["offer_id"] and offers[0]["technician_id"] == "ana"


def ana_with_webhook(sessions, url: str) -> None:
    """A shop with a printer, and Ana, who fixes printers nearby and has a webhook."""
    located_shop(sessions, "pos-1")
    with transaction(sessions) as db:
        body = TechnicianIn(
            name="Ana", skills=["printers"], home_lat=47.38, home_lon=8.54, webhook_url=url
        )  # type: ignore[arg-type]
        csvimport.upsert(db_session=db, technician_id="ana", body=body, now=T0)


@contextlib.contextmanager
def listening(mosquitto, client_id: str, topic: str) -> Iterator[queue.Queue[Inbound]]:
    """What arrives on a topic of the test's broker, for as long as the block runs."""
    received: queue.Queue[Inbound] = queue.Queue()
    link = MqttLink(BrokerSettings.from_url(mosquitto.url), client_id, on_message=received.put)
    link.subscribe(topic)
    link.start()
    try:
        assert link.wait_subscribed(10)
        yield received
    finally:
        link.stop()


@pytest.fixture
def flaky() -> Iterator[WebhookReceiver]:
    """A technician's webhook that is down until the test brings it back."""
    with WebhookReceiver() as receiver:
        receiver.down = True
        yield receiver


def test_a_dead_webhook_holds_up_nothing_and_gets_every_notice_once_in_order_when_back(
    cloud: CloudStack, mosquitto, monkeypatch, flaky: WebhookReceiver
) -> None:
    """A technician's webhook is down with a long backlog (more than a relay's batch): a
    device still gets its feedback on MQTT at once, the dead URL is not hammered, and when it
    is back it gets every notice still worth having, once each, in the order they were made;
    an offer whose deadline passed meanwhile is given up, not delivered late."""
    monkeypatch.setattr(delivery, "RETRY_FIRST", timedelta(seconds=0.2))
    monkeypatch.setattr(delivery, "RETRY_MAX", timedelta(seconds=1))
    receiver = flaky
    sessions = cloud.sessions
    ana_with_webhook(sessions, receiver.url)
    hook = outbound.webhook_topic("ana", receiver.url)
    now = utc_now()
    with transaction(sessions) as db:  # an out-of-date offer, then a day's worth of backlog
        stale = OfferNotice(
            offer_id=0, ticket_id=0, title="gone", category="till", priority="normal",
            deadline=now, eta_min=5,
        )  # fmt: skip
        outbound.enqueue(db_session=db, topic=hook, message=stale, now=now, expires_at=now)
        for n in range(150):
            backlog = OfferNotice(
                offer_id=1000 + n, ticket_id=0, title=f"old {n}", category="till",
                priority="normal", deadline=now, eta_min=5,
            )  # fmt: skip
            outbound.enqueue(
                db_session=db, topic=hook, message=backlog, now=now,
                expires_at=now + timedelta(hours=1),
            )  # fmt: skip
    with listening(mosquitto, "pos-1-listener", "cmd/crowdfix/v1/pos-1/feedback") as device:
        ticket_id = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
        offer = wait_for(lambda: cloud.get(f"/api/tickets/{ticket_id}/offers"), 10, "an offer")[0]
        with transaction(sessions) as db:
            dispatcher.accept(
                db_session=db, offer_id=offer["id"], now=utc_now(), eta_min=12,
                caller=Principal(2, "ana", Role.TECHNICIAN, "ana"),
            )  # fmt: skip
        feedback = wait_for(lambda: _accepted(device), 10, "the device told help is coming")
        assert feedback["eta_minutes"] == 12
        time.sleep(1.5)  # a few backoffs of the dead URL
        assert 1 <= receiver.refused < 30  # one try per backoff, not one per notice
        down = cloud.get("/api/technicians/ana")["webhook"]  # what an operator sees
        assert down["waiting"] >= 150 and down["given_up"] == 1
        assert down["last_error"] == "HTTP 503" and down["failing_since"] is not None
        receiver.down = False
        wait_for(lambda: len(receiver.taken) >= 151, 30, "the backlog and the offer delivered")
        time.sleep(0.5)  # nothing more (no second copy) arrives
    deliveries = [post.headers[DELIVERY_HEADER] for post in receiver.taken]
    offers = [json.loads(post.body)["offer_id"] for post in receiver.taken]
    assert len(deliveries) == len(set(deliveries)) == 151  # each once
    assert offers == [1000 + n for n in range(150)] + [offer["id"]]  # in order, stale one gone
    with sessions() as db:
        assert outbound.backlog(db_session=db)["given_up"] == 1
    back = cloud.get("/api/technicians/ana")["webhook"]
    assert (back["waiting"], back["given_up"], back["failing_since"]) == (0, 1, None)


def _accepted(device: queue.Queue[Inbound]) -> dict | None:
    while not device.empty():
        command = json.loads(device.get().payload)
        if command.get("eta_minutes") is not None:
            return command
    return None
