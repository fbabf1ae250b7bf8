"""The operator's board in a real browser (Debian's Chromium driven by Playwright) against the
running cloud and a real Mosquitto: log in, see a device go offline and a button press become
a ticket without reloading, assign it. Screenshots land in results/dashboard/."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.auth import service as auth
from cloud.auth.roles import Role
from cloud.db import transaction
from cloud.dispatch import csvimport
from cloud.dispatch.schemas import TechnicianIn
from contracts import ButtonEvent, Channel, Status, encode, uplink_topic
from mqttlink import BrokerSettings, MqttLink
from tests.cloud.factories import T0, located_shop
from tests.conftest import ROOT, CloudStack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "results" / "dashboard"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


PASSWORD = "a long demo password"


def add_operator(sessions) -> None:
    with transaction(sessions) as db:
        auth.create_user(
            db_session=db, username="olga", role=Role.OPERATOR, password=PASSWORD, now=T0
        )


def press_printer(device: MqttLink) -> None:
    """Someone at pos-1 presses the printer button."""
    press = ButtonEvent(
        device_id="pos-1",
        timestamp=datetime.now(UTC),
        seq=1,
        button="printer",
        category="receipt-printer",
    )
    publish(device, press, Channel.BUTTON)


def publish(link: MqttLink, message: ButtonEvent | Status, channel: Channel) -> None:
    topic = uplink_topic(message.device_id, channel)
    retain = channel is Channel.STATUS
    wait_for(lambda: link.publish(topic, encode(message), 1, retain).sent, 10, "publish")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_operator_watches_and_assigns_live(cloud: CloudStack, mosquitto, browser) -> None:
    located_shop(cloud.sessions, "pos-1")
    add_operator(cloud.sessions)
    with transaction(cloud.sessions) as db:
        body = TechnicianIn(
            name="Sam Keller",
            kind="staff",
            skills=["printers"],
            home_lat=47.40,
            home_lon=8.60,
            radius_km=2,
        )
        csvimport.upsert(db_session=db, technician_id="sam", body=body, now=T0)
    device = MqttLink(BrokerSettings.from_url(mosquitto.url), "pos-1")
    device.start()
    assert device.wait_connected(10)
    session_start = datetime.now(UTC) - timedelta(seconds=5)
    publish(
        device,
        Status(device_id="pos-1", timestamp=session_start, seq=0, state="online"),
        Channel.STATUS,
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{cloud.api_url}/ui/")
        page.wait_for_url("**/ui/login")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("tr[data-device='pos-1'] td.presence.online")
        page.wait_for_selector(".live.on")
        page.screenshot(path=str(SHOTS / "1-logged-in.png"), full_page=True)

        # The device goes offline: its last will, as the broker would send it.
        publish(
            device,
            Status(device_id="pos-1", timestamp=session_start, seq=0, state="offline"),
            Channel.STATUS,
        )
        page.wait_for_selector("tr[data-device='pos-1'] td.presence.offline", timeout=15000)

        # Someone presses the printer button: a ticket appears without a reload.
        press_printer(device)
        # New, or escalated already: the dispatcher finds nobody in range.
        card = page.wait_for_selector("[data-ticket]", timeout=15000)
        assert "Receipt printer" in card.inner_text()
        page.screenshot(path=str(SHOTS / "2-ticket-live.png"), full_page=True)

        # Sam is too far for the dispatcher (2 km radius): the operator assigns him by hand.
        page.select_option("[data-ticket] select", "sam")
        page.click("[data-ticket] button")
        assigned = page.wait_for_selector("[data-state=assigned] [data-ticket]", timeout=15000)
        assert "technician: sam" in assigned.inner_text()
        page.screenshot(path=str(SHOTS / "3-assigned.png"), full_page=True)
        ticket = cloud.get("/api/tickets")["items"][0]
        assert (ticket["state"], ticket["technician_id"]) == ("assigned", "sam")
    finally:
        page.close()
        device.stop()


def test_a_cookie_session_needs_the_csrf_header_to_change_anything(sessions) -> None:
    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.main import create_app

    add_operator(sessions)
    client = TestClient(create_app(CloudSettings(), sessions))
    login = client.post("/api/auth/login", json={"username": "olga", "password": PASSWORD})
    assert login.status_code == 200 and client.cookies.get("crowdfix_csrf")
    assert client.get("/api/tickets").status_code == 200  # reading needs no header
    forged = client.post("/api/tickets/1/assign", json={"technician_id": "sam"})
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["detail"]
    headers = {"X-CSRF-Token": client.cookies["crowdfix_csrf"]}
    allowed = client.post("/api/tickets/1/assign", json={"technician_id": "sam"}, headers=headers)
    assert allowed.status_code == 404  # past the guard: there is no ticket 1


def test_the_live_stream_is_for_staff_only(sessions) -> None:
    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.main import create_app
    from tests.cloud.factories import token_for

    client = TestClient(create_app(CloudSettings(), sessions))
    assert client.get("/api/stream").status_code == 401
    technician = token_for(sessions, "technician", technician_id="ana")
    denied = client.get("/api/stream", headers={"Authorization": f"Bearer {technician}"})
    assert denied.status_code == 403


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_technician_accepts_on_their_page_and_the_board_follows(
    cloud: CloudStack, mosquitto, browser
) -> None:
    located_shop(cloud.sessions, "pos-1")
    add_operator(cloud.sessions)
    with transaction(cloud.sessions) as db:
        body = TechnicianIn(name="Ana Meier", skills=["printers"], home_lat=47.38, home_lon=8.54)
        csvimport.upsert(db_session=db, technician_id="ana", body=body, now=T0)
        auth.create_user(
            db_session=db,
            username="ana",
            role=Role.TECHNICIAN,
            password=PASSWORD,
            now=T0,
            technician_id="ana",
        )
    desk = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    device = MqttLink(BrokerSettings.from_url(mosquitto.url), "pos-1")
    device.start()
    try:
        for page, user, landing in ((desk, "olga", "**/ui/"), (phone, "ana", "**/ui/tech")):
            page.goto(f"{cloud.api_url}/ui/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(landing)
        desk.wait_for_selector(".live.on")
        assert device.wait_connected(10)
        press_printer(device)
        desk.wait_for_selector("[data-state=dispatching] [data-ticket]", timeout=15000)
        offer = phone.wait_for_selector("[data-offer]", timeout=15000)
        assert "answer within" in offer.inner_text() and "Receipt printer" in offer.inner_text()
        phone.screenshot(path=str(SHOTS / "4-technician-offer.png"), full_page=True)
        phone.click("[data-offer] button:has-text('Accept')")
        phone.wait_for_selector("[data-job]", timeout=15000)
        card = desk.wait_for_selector("[data-state=assigned] [data-ticket]", timeout=15000)
        assert "technician: ana" in card.inner_text()  # the board followed, no reload
        desk.screenshot(path=str(SHOTS / "5-board-after-accept.png"), full_page=True)
        phone.click("[data-job] button:has-text('On my way')")
        desk.wait_for_selector("[data-state=en_route] [data-ticket]", timeout=15000)
        phone.screenshot(path=str(SHOTS / "6-technician-en-route.png"), full_page=True)
    finally:
        device.stop()
