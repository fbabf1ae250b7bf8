"""Offers reach the technician the moment they are made: on their MQTT topic and as a POST to
their webhook, through the running worker (dispatcher and relay) and a real Mosquitto."""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from cloud.db import transaction
from cloud.dispatch import csvimport
from cloud.dispatch import service as dispatcher
from cloud.dispatch.schemas import TechnicianIn
from cloud.outbound.signing import SIGNATURE_HEADER, verify
from mqttlink import BrokerSettings, Inbound, MqttLink
from tests.cloud.factories import T0, ingest, located_shop, press
from tests.conftest import CloudStack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def webhook() -> tuple[str, queue.Queue[tuple[bytes, str]]]:
    """A receiver: each POST's body and signature header."""
    received: queue.Queue[tuple[bytes, str]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((body, self.headers.get(SIGNATURE_HEADER, "")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/offers", received
    server.shutdown()


def test_an_offer_is_pushed_on_mqtt_and_to_the_webhook(
    cloud: CloudStack, mosquitto, webhook
) -> None:
    url, posted = webhook
    sessions = cloud.sessions
    located_shop(sessions, "pos-1")
    with transaction(sessions) as db:
        body = TechnicianIn(
            name="Ana", skills=["printers"], home_lat=47.38, home_lon=8.54, webhook_url=url
        )  # type: ignore[arg-type]
        csvimport.upsert(db_session=db, technician_id="ana", body=body, now=T0)
        # What ana's app is given to check that offers come from crowdfix.
        secret = dispatcher.rotate_webhook_secret(db_session=db, technician_id="ana")
    pushed: queue.Queue[Inbound] = queue.Queue()
    app = MqttLink(BrokerSettings.from_url(mosquitto.url), "ana-phone", on_message=pushed.put)
    app.subscribe("tech/crowdfix/v1/ana/offer")
    app.start()
    try:
        assert app.wait_subscribed(10)
        ticket_id = ingest(sessions, press("pos-1", "receipt-printer")).ticket_id
        on_mqtt = json.loads(pushed.get(timeout=15).payload)
        body, signature = posted.get(timeout=15)
        assert on_mqtt == json.loads(body)
        assert verify(secret, body, signature, now=int(time.time()))  # signed by crowdfix
        assert not verify("whsec_someone-else", body, signature, now=int(time.time()))
        assert not verify(secret, body + b" ", signature, now=int(time.time()))
        assert (on_mqtt["type"], on_mqtt["ticket_id"], on_mqtt["category"]) == (
            "offer",
            ticket_id,
            "receipt-printer",
        )
        offers = wait_for(lambda: cloud.get(f"/api/tickets/{ticket_id}/offers"), 5, "the offer")
        assert offers[0]["id"] == on_mqtt["offer_id"] and offers[0]["technician_id"] == "ana"
    finally:
        app.stop()
