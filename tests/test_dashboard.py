"""The operator's board in a real browser (Debian's Chromium driven by Playwright) against the
running cloud and a real Mosquitto: log in, see a device go offline and a button press become
a ticket without reloading, assign it. Screenshots land in results/dashboard/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from bench.faults import CutProxy
from cloud.alerts.models import RaisedAlert
from cloud.auth import service as auth
from cloud.auth.roles import Role
from cloud.db import transaction
from cloud.dispatch import csvimport
from cloud.dispatch.schemas import TechnicianIn
from contracts import ButtonEvent, Channel, Status, encode, uplink_topic
from crowdfix.brokers import free_port
from mqttlink import BrokerSettings, MqttLink
from tests.cloud.factories import T0, located_shop
from tests.conftest import ROOT, CloudStack
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one-at-a-time")]
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


# What a page shows when a script writes out a value that is not there.
STRAY = re.compile(r"\b(null|undefined|NaN)\b|\[object Object\]")


def shot(page, name: str) -> None:
    """Check the page shows no stray null, undefined, NaN or [object Object], then keep a
    screenshot of it in results/dashboard."""
    text = page.inner_text("body")
    assert not STRAY.search(text), f"{name}: {STRAY.search(text)!r} on the page:\n{text}"
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def shop_by_name(sessions) -> None:
    """The shop the devices are in (site hb), with its name and address."""
    from cloud.sites import service as sites
    from cloud.sites.schemas import SiteIn

    with transaction(sessions) as db:
        shop = SiteIn(id="hb", name="Shop Zurich HB", address="Bahnhofplatz 1, 8001 Zurich",
                      latitude=47.3779, longitude=8.5403)  # fmt: skip
        sites.upsert(db_session=db, site_in=shop, now=T0)


def add_operator(sessions) -> None:
    with transaction(sessions) as db:
        auth.create_user(
            db_session=db, username="olga", role=Role.OPERATOR, password=PASSWORD, now=T0
        )


def add_sam(
    sessions,
    kind: str,
    paused_because: str = "",
    webhook_url: str | None = None,
    shifts: tuple[str, ...] = (),
    certifications: dict[str, date] | None = None,
) -> None:
    """Sam: printers, 2 km around a point too far from the shop for the dispatcher."""
    from cloud.dispatch.models import Technician

    with transaction(sessions) as db:
        body = TechnicianIn(
            name="Sam Keller",
            kind=kind,
            skills=["printers"],
            home_lat=47.40,
            home_lon=8.60,
            radius_km=2,
            webhook_url=webhook_url,
            shifts=list(shifts),
            certifications=certifications or {},
        )  # type: ignore[arg-type]
        csvimport.upsert(db_session=db, technician_id="sam", body=body, now=T0)
        if paused_because:
            sam = db.get(Technician, "sam")
            sam.paused, sam.paused_reason = True, paused_because


def press_printer(
    device: MqttLink, seq: int = 1, action: str = "request", ago: timedelta = timedelta(0)
) -> None:
    """Someone at pos-1 presses the printer button (to ask for help, or to cancel), now or
    `ago` (the agent kept the press while it could not reach the broker)."""
    press = ButtonEvent(
        device_id="pos-1",
        timestamp=datetime.now(UTC) - ago,
        seq=seq,
        button="printer",
        category="receipt-printer",
        action=action,
    )
    publish(device, press, Channel.BUTTON)


def publish(link: MqttLink, message: ButtonEvent | Status, channel: Channel) -> None:
    topic = uplink_topic(message.device_id, channel)
    retain = channel is Channel.STATUS
    wait_for(lambda: link.publish(topic, encode(message), 1, retain).sent, 10, "publish")


@pytest.fixture
def network(cloud: CloudStack) -> Iterator[CutProxy]:
    """The desk's way to the API, through a proxy the test can cut."""
    proxy = CutProxy(int(urlsplit(cloud.api_url).port or 80))
    yield proxy
    proxy.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_operator_watches_and_assigns_live(
    cloud: CloudStack, mosquitto, browser, network: CutProxy
) -> None:
    located_shop(cloud.sessions, "pos-1")
    add_operator(cloud.sessions)
    add_sam(cloud.sessions, "staff")
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
        page.goto(f"{network.url}/ui/")
        page.wait_for_url("**/ui/login")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("tr[data-device='pos-1'] td.presence.online")
        page.wait_for_selector(".live.on")
        shot(page, "1-logged-in")

        # The device goes offline (its last will, as the broker would send it) while the
        # desk's connection is down: back, the desk draws what it missed, not 30 s later.
        network.drop()
        page.wait_for_selector(".live:not(.on)", timeout=15000)
        publish(
            device,
            Status(device_id="pos-1", timestamp=session_start, seq=0, state="offline"),
            Channel.STATUS,
        )
        wait_for(lambda: cloud.device("pos-1").presence == "offline", 15, "the last will")
        network.restore()
        page.wait_for_selector(".live.on", timeout=15000)
        page.wait_for_selector("tr[data-device='pos-1'] td.presence.offline", timeout=15000)

        # Someone pressed the printer button 25 minutes ago, while the shop was offline: a
        # ticket appears without a reload, its hour's on-site clock started at the press.
        press_printer(device, ago=timedelta(minutes=25))
        # New, or escalated already: the dispatcher finds nobody in range.
        card = page.wait_for_selector("[data-ticket]", timeout=15000)
        assert "Receipt printer" in card.inner_text()
        # 25 of its 60 minutes have gone: at risk by this deployment's 30%, with 35 left.
        clock = card.query_selector(".sla")
        assert "on site due in 3" in clock.inner_text()
        assert "warn" in (clock.get_attribute("class") or "")
        # Nobody can take it: escalated, the card says why (down to who holds the skill and
        # why they cannot), the tab's title counts it.
        why = page.wait_for_selector("[data-state=escalated] [data-why]", timeout=15000)
        assert why.inner_text() == (
            "no eligible technician accepted or is left "
            "(of the 1 holding printers: 1 beyond their service radius)"
        )
        assert page.title() == "(1) crowdfix · operator desk"
        shot(page, "2-ticket-live")

        # Sam is too far for the dispatcher (2 km radius): the operator assigns him by hand.
        page.select_option("[data-ticket] select", "sam")
        page.click("[data-ticket] button")
        assigned = page.wait_for_selector("[data-state=assigned] [data-ticket]", timeout=15000)
        assert "technician: sam" in assigned.inner_text()
        assert page.title() == "crowdfix · operator desk"
        shot(page, "3-assigned")
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
    # The deployment facts the desk pages read are staff-only too (not in the OpenAPI either).
    assert client.get("/api/dashboard/config").status_code == 401
    tech_config = client.get(
        "/api/dashboard/config", headers={"Authorization": f"Bearer {technician}"}
    )
    assert tech_config.status_code == 403


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_technician_accepts_on_their_page_and_the_board_follows(
    cloud: CloudStack, mosquitto, browser
) -> None:
    """Ana works her jobs on her phone: accepts (after opening and closing the decline
    choice), is on her way with an ETA, fixes it with notes, hands the customer a rating
    link; a job cancelled at the device leaves her list with why; one she cannot fix goes
    back needing a skill she lacks, with her reason; an offer she declines says why."""
    from tests.cloud.factories import ingest, press

    located_shop(cloud.sessions, "pos-1", "pos-2")
    shop_by_name(cloud.sessions)  # its address, for Ana to find it
    add_operator(cloud.sessions)
    with transaction(cloud.sessions) as db:
        lapsed = {"pos": T0.date()}  # a skill she no longer may work in (printers: no expiry)
        body = TechnicianIn(name="Ana Meier", skills=["printers", "pos"], home_lat=47.38,
                            home_lon=8.54, certifications=lapsed)  # fmt: skip
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
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        geolocation={"latitude": 47.3769, "longitude": 8.5417},  # Ana's phone, at Zurich HB
        permissions=["geolocation"],
    ).new_page()
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
        ana_goes_off_and_on_shares_where_she_is_and_sets_her_hours(cloud, phone)
        assert device.wait_connected(10)
        press_printer(device)
        desk.wait_for_selector("[data-state=dispatching] [data-ticket]", timeout=15000)
        offer = phone.wait_for_selector("[data-offer]", timeout=15000)
        assert "answer within" in offer.inner_text() and "Receipt printer" in offer.inner_text()
        title = phone.title()
        assert title.startswith("(1) offer · ") and title.endswith("left · crowdfix")
        where = offer.query_selector("[data-where]").inner_text()
        assert where.startswith("Shop Zurich HB, Bahnhofplatz 1, 8001 Zurich · map · on site by")
        shot(phone, "4-technician-offer")
        # The desk says who has the offer and for how long.
        offered = desk.wait_for_selector(
            "[data-state=dispatching] [data-offered=ana]", timeout=15000
        )
        assert "offered to ana (crowd) · answer due in" in offered.inner_text()
        phone.click("[data-offer] button:has-text('Decline')")  # she thinks again
        phone.wait_for_selector("[data-decline] button:has-text('Too far')")
        phone.click("[data-decline] button:has-text('Back')")
        phone.click("[data-offer] button:has-text('Accept')")
        phone.wait_for_selector("[data-job]", timeout=15000)
        assert phone.title() == "crowdfix · my jobs"
        card = desk.wait_for_selector("[data-state=assigned] [data-ticket]", timeout=15000)
        assert "technician: ana" in card.inner_text()  # the board followed, no reload
        shot(desk, "5-board-after-accept")
        first = int(phone.get_attribute("#jobs [data-job]", "data-job") or 0)
        # Her job says where (with a map of the spot) and, opened, what is wrong.
        osm = phone.get_attribute("#jobs [data-job] a[data-map]", "href") or ""
        assert (
            osm == "https://www.openstreetmap.org/?mlat=47.3779&mlon=8.5403#map=18/47.3779/8.5403"
        )
        phone.click("#jobs [data-job] details.what summary")
        phone.wait_for_timeout(3500)  # a refresh: what she opened stays open
        what = phone.inner_text("#jobs [data-job] .description")
        assert "Receipt printer problem at Shop Zurich HB" in what
        phone.fill("[data-job] input[name=eta]", "soon")
        phone.click("[data-job] button:has-text('On my way')")
        phone.wait_for_selector("text=Minutes away: a whole number, like 20.")
        box = phone.locator("#error").bounding_box()  # in sight, though the page runs on
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844
        phone.fill("[data-job] input[name=eta]", "20")
        phone.click("[data-job] button:has-text('On my way')")
        desk.wait_for_selector("[data-state=en_route] [data-ticket]", timeout=15000)
        eta = desk.wait_for_selector("[data-state=en_route] [data-eta]", timeout=15000)
        assert "about 20 min away (" in eta.inner_text()  # and how long ago she said so
        shot(phone, "6-technician-en-route")

        # On site, Ana hands the customer a rating link; they rate once she marked it fixed.
        phone.click('[data-job] button:has-text("I\'m on site")')
        phone.click("[data-job] button:has-text('Rating link for the customer')")
        link = phone.wait_for_selector("[data-job] .rating-link a", timeout=15000)
        assert phone.eval_on_selector("[data-job] img.qr", "img => img.naturalWidth") > 100
        url = link.get_attribute("href")
        shot(phone, "13-technician-rating-link")
        customer = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
        customer.goto(url)
        customer.wait_for_selector("#rating:not([hidden])")
        assert "Receipt printer" in customer.inner_text("#job")
        assert "with Ana" in customer.inner_text("#job")
        phone.fill("[data-job] input[name=notes]", "new paper roller")
        phone.click("[data-job] button:has-text('Fixed')")
        # Finished, the job stays on her page with the customer's link until it is rated.
        phone.wait_for_selector("#done [data-job] .rating-link a", timeout=15000)
        desk.wait_for_selector("[data-ticket]", state="detached", timeout=15000)  # off the board
        customer.click("label[title='4 stars']")
        shot(customer, "14-requester-rating")
        customer.click("button:has-text('Send rating')")
        customer.wait_for_selector("#thanks", timeout=15000)
        ticket = cloud.get("/api/tickets")["items"][0]
        assert (ticket["rating"], ticket["rated_by"]) == (4, "requester")
        trail = {e["to_state"]: e for e in cloud.get(f"/api/tickets/{first}")["events"]}
        assert trail["en_route"]["reason"] == "about 20 min away"  # as the device was told
        assert trail["en_route"]["data"]["eta_minutes"] == 20
        assert trail["resolved"]["reason"] == "new paper roller"

        # Another press; Ana takes it, and the person at the till cancels before she is there:
        # the job leaves her list and she sees why.
        press_printer(device, seq=2)
        phone.wait_for_selector("[data-offer]", timeout=15000)
        phone.click("[data-offer] button:has-text('Accept')")
        phone.wait_for_selector("#jobs [data-job]", timeout=15000)
        press_printer(device, seq=3, action="cancel")
        gone = phone.wait_for_selector("#called-off [data-called-off]", timeout=15000)
        assert "cancelled" in gone.inner_text() and "cancelled at the device" in gone.inner_text()
        phone.wait_for_selector("#jobs [data-job]", state="detached", timeout=15000)
        shot(phone, "15-technician-job-called-off")

        # On site at the next one, the power supply is dead: she cannot fix it. It goes back to
        # dispatch needing electrical (which she lacks), with her reason for the next one.
        press_printer(device, seq=4)
        phone.wait_for_selector("[data-offer]", timeout=15000)
        phone.click("[data-offer] button:has-text('Accept')")
        job = phone.wait_for_selector("#jobs [data-job]", timeout=15000)
        third = int(job.get_attribute("data-job") or 0)
        phone.click("[data-job] button:has-text('On my way')")  # no ETA given: none sent
        phone.click('[data-job] button:has-text("I\'m on site")')
        phone.click('[data-job] button:has-text("Can\'t fix it")')
        phone.check("[data-give-back] input[name=needs][value=electrical]")
        offered = phone.eval_on_selector_all(
            "[data-give-back] input[name=needs]", "l => l.map(i => i.value)"
        )
        assert "electrical" in offered and not {"printers", "pos"} & set(
            offered
        )  # hers, or its own
        phone.wait_for_timeout(3500)  # a redraw: what she ticked stays ticked
        phone.click("[data-give-back] button:has-text('Give the job back')")
        phone.wait_for_selector("text=Say why first: the next technician reads it.")
        assert phone.is_checked("[data-give-back] input[name=needs][value=electrical]")
        phone.fill("[data-give-back] input[name=giveback]", "the power supply is dead")
        shot(phone, "15b-technician-cannot-fix")
        phone.click("[data-give-back] button:has-text('Give the job back')")
        phone.wait_for_selector("#jobs [data-job]", state="detached", timeout=15000)
        handed = cloud.get(f"/api/tickets/{third}")
        assert "electrical" in handed["skills"] and handed["technician_id"] is None
        assert "given back: the power supply is dead" in [e["reason"] for e in handed["events"]]
        assert (
            "eta_minutes"
            not in next(e for e in handed["events"] if e["to_state"] == "en_route")["data"]
        )

        # An offer from the shop's other till: she says why not with a tap.
        ingest(cloud.sessions, press("pos-2", base=datetime.now(UTC)))
        phone.wait_for_selector("[data-offer]", timeout=15000)
        phone.click("[data-offer] button:has-text('Decline')")
        phone.click("[data-decline] button:has-text('Busy right now')")
        phone.wait_for_selector("[data-offer]", state="detached", timeout=15000)
        other = cloud.get("/api/tickets?device_id=pos-2")["items"][0]["id"]
        said = cloud.get(f"/api/tickets/{other}/offers")[0]
        assert (said["technician_id"], said["state"], said["reason"]) == (
            "ana",
            "declined",
            "Busy right now",
        )
        # Her record, for an operator reviewing her acceptance, says why she said no.
        desk.goto(f"{cloud.api_url}/ui/crowd?technician=ana")
        reasons = desk.wait_for_selector("#decline-reasons", timeout=15000).inner_text()
        assert reasons == "Why they said no: Busy right now \u00d71"  # times one
        # Eight counters in the header: each stays on one line ("2 on site in time" once took
        # four); those that do not fit go to the next line whole.
        # Measured in one go: the live page may draw the header anew between two calls.
        counters = desk.eval_on_selector_all(
            ".count",
            "els => els.map(e => [e.innerText, e.getBoundingClientRect().height,"
            " e.querySelector('b').getBoundingClientRect().height])",
        )
        assert len(counters) == 8
        for text, height, line in counters:  # a line of text, and the padding: not two lines
            assert height < 2 * line, text
        shot(desk, "10e-technician-record-declines")
    finally:
        device.stop()


def ana_goes_off_and_on_shares_where_she_is_and_sets_her_hours(cloud: CloudStack, phone) -> None:
    """On her phone: whether she gets offers and why not, and what she changes about it."""
    phone.wait_for_selector("#status [data-receiving=yes]")
    assert "Receiving offers" in phone.inner_text("#status")
    lapsed = phone.inner_text("#status [data-certification=pos].bad")
    assert "pos certification expired" in lapsed and "no pos jobs until renewed" in lapsed
    phone.click("#status button:has-text('Go offline')")
    phone.wait_for_selector("#status [data-receiving=no]:has-text('Offline')", timeout=15000)
    assert cloud.get("/api/technicians/ana")["available"] is False
    phone.click("#status button:has-text('Go online')")
    phone.wait_for_selector("#status [data-receiving=yes]", timeout=15000)

    phone.click("#status button:has-text('Share my location')")
    phone.wait_for_selector("#status [data-location=shared]", timeout=15000)
    ana = cloud.get("/api/technicians/ana")
    assert (ana["lat"], ana["lon"]) == (47.3769, 8.5417)

    hour = datetime.now(UTC).hour  # a shift that starts in two hours: off shift until then
    later = f"mon-sun {(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
    phone.fill("#status input[name=shifts]", "weekdays 9 to 5")
    phone.fill("#status input[name=timezone]", "UTC")
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector("#error:has-text(\"e.g. 'mon-fri 07:00-19:00'\")", timeout=15000)
    phone.fill("#status input[name=shifts]", later)
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector(
        "#status [data-receiving=no]:has-text('Off shift until')", timeout=15000
    )
    assert cloud.get("/api/technicians/ana")["shifts"] == [later]
    shot(phone, "3b-technician-off-shift")
    phone.fill("#status input[name=shifts]", "")  # back to: whenever she is online
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector("#status [data-receiving=yes]", timeout=15000)

    today = datetime.now(UTC).date()  # she takes today off (her time zone: UTC)
    phone.fill("#status input[name=time_off]", "today")
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector("#error:has-text(\"e.g. '2026-12-22..2027-01-05'\")", timeout=15000)
    phone.fill("#status input[name=time_off]", f"{today}; 2031-12-24..2031-12-26")
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector(f"#status [data-receiving=no]:has-text('On leave ({today}) until')",
                            timeout=15000)  # fmt: skip
    ana = cloud.get("/api/technicians/ana")
    assert (ana["on_leave"], ana["time_off"]) == (
        str(today),
        [str(today), "2031-12-24..2031-12-26"],
    )
    assert f"time off: {today}, 2031-12-24..2031-12-26" in phone.inner_text("#status summary")
    shot(phone, "3c-technician-on-leave")
    phone.fill("#status input[name=time_off]", "")
    phone.click("#status button:has-text('Save hours')")
    phone.wait_for_selector("#status [data-receiving=yes]", timeout=15000)


GRAFANA = "http://grafana.example:3000/d/crowdfix-fleet/fleet-telemetry"


@pytest.fixture
def cloud_overrides() -> dict[str, object]:
    # Tickets are flagged at risk once 30% of their time has gone (the default is 80%).
    return {"grafana_url": GRAFANA, "sla_warning_share": 0.3}


def login(page, base: str) -> None:
    page.goto(f"{base}/ui/login")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/")


def history_of_pos_1(sessions) -> None:
    """Telemetry of the last minutes, a fault raised and cleared, and a refused message."""
    from cloud.quarantine import service as quarantine
    from cloud.telemetry import service as telemetry
    from cloud.telemetry.service import Sample
    from contracts import Rejection
    from tests.cloud.factories import fault, ingest

    now = datetime.now(UTC)
    with transaction(sessions) as db:
        samples = [
            Sample("pos-1", "pi_cpu_c", 45 + (i % 5), "C", now - timedelta(seconds=10 * i))
            for i in range(60)
        ]
        telemetry.store(db_session=db, samples=samples)
        quarantine.add(
            db_session=db,
            topic="dt/crowdfix/v1/pos-1/button",
            payload=b'{"schema_version": 9}',
            reason=Rejection.UNSUPPORTED_SCHEMA,
            detail="schema_version 9 is not supported",
            now=now,
        )
    # A minute ago: ingest() dates its work a second after each event, so a fault dated
    # `now` would leave the auto-resolution in the trail seconds ahead of the real clock the
    # API's own changes (the operator's assignment) are dated by, and out of order with them.
    ago = now - timedelta(minutes=1)
    ingest(sessions, fault("pos-1", "paper-low", severity="warning", base=ago))
    ingest(sessions, fault("pos-1", "paper-low", raised=False, minutes=0.1, base=ago))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_operator_pages_device_ticket_crowd_kpis_quarantine(cloud: CloudStack, browser) -> None:
    from tests.cloud.factories import fault, ingest

    located_shop(cloud.sessions, "pos-1")
    shop_by_name(cloud.sessions)
    add_operator(cloud.sessions)
    dead = f"http://127.0.0.1:{free_port()}/hook"  # Sam's app is not listening
    hour = datetime.now(UTC).hour  # Sam's shift starts in two hours
    later = f"mon-sun {(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"
    soon = {"printers": datetime.now(UTC).date() + timedelta(days=10)}  # still his to do
    add_sam(cloud.sessions, "crowd", "acceptance 40% < 80% over the last 20 offers", dead,
            (later,), soon)  # fmt: skip
    history_of_pos_1(cloud.sessions)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        login(page, cloud.api_url)
        page.wait_for_selector("tr[data-device='pos-1'] svg.spark polyline")
        assert page.get_attribute("#grafana", "href") == GRAFANA
        assert "pi_cpu_c" in page.inner_text("tr[data-device='pos-1']")

        # A critical fault turns the device's health to fault, live, and opens a ticket.
        ingest(cloud.sessions, fault("pos-1", "printer-jam", base=datetime.now(UTC)))
        page.wait_for_selector("tr[data-device='pos-1'] td.health.fault", timeout=15000)
        page.wait_for_selector("[data-ticket]", timeout=15000)
        site = page.wait_for_selector("button.site[data-site=hb]")
        assert "1/1 online" in site.inner_text() and "1 fault" in site.inner_text()
        assert "Shop Zurich HB" in site.inner_text()  # the shop by name, as operators know it
        assert "Shop Zurich HB" in page.inner_text("tr[data-device='pos-1']")
        page.select_option("select[name=health]", "ok")
        page.wait_for_selector("text=No device matches the filters.")
        page.select_option("select[name=health]", "fault")
        page.wait_for_selector("tr[data-device='pos-1']")
        shot(page, "7-fleet-filtered")

        # The device page: heartbeat facts, a chart per signal, fault history, its tickets.
        page.click("tr[data-device='pos-1'] a")  # the live board may have drawn it anew
        page.wait_for_selector("[data-signal=pi_cpu_c] svg polyline")
        history = page.inner_text("#fault-history")
        assert "paper-low" in history and "cleared" in history and "raised" in history
        assert "printer-jam" in page.inner_text("#faults")
        grafana = page.get_attribute("a:has-text('history in Grafana')", "href")
        assert grafana == f"{GRAFANA}?var-device=pos-1"
        page.wait_for_selector("#tickets [data-ticket-row]")
        shot(page, "8-device")

        # The ticket page: the automatic description, the audit trail, the operator's actions.
        page.click("#tickets [data-ticket-row] a")
        page.wait_for_selector("#description")
        assert "pos-1" in page.inner_text("#description")
        assert "Shop Zurich HB, Bahnhofplatz 1, 8001 Zurich" in page.inner_text("[data-site=hb]")
        assert "new" in page.inner_text("#audit")
        # Nobody could take it: the operators' alert channel was told, and the page says so.
        page.wait_for_selector("h2 .pill.escalated", timeout=15000)
        cloud.worker.raise_alerts()  # the worker's sweep, now rather than within 10 s
        told = page.wait_for_selector("#alerts [data-alert=escalated][data-cleared=no]")
        assert "escalated" in told.inner_text() and "holds" in told.inner_text()
        page.select_option("#actions select[name=technician]", "sam")
        page.fill("#actions input[name=reason]", "Sam is next door")
        page.click("#actions button[data-action=assign]")
        page.wait_for_selector("h2 .pill.assigned", timeout=15000)
        given = page.inner_text("#audit tr:has([data-assigned-to=sam])").split("\t")
        # Nobody was in range: the ticket waited for an operator, who decided.
        assert given[1:] == [
            "olga", "escalated → assigned (to sam)", "assigned by olga: Sam is next door"
        ]  # fmt: skip
        cloud.worker.raise_alerts()  # and the channel told it is dealt with
        over = page.wait_for_selector("#alerts [data-alert=escalated][data-cleared=yes]")
        assert "over at" in over.inner_text()
        with cloud.sessions() as db:
            [(_, cleared)] = db.execute(select(RaisedAlert.kind, RaisedAlert.cleared_at)).all()
        assert cleared is not None
        page.click("#actions button[data-action=resolved]")
        page.wait_for_selector("h2 .pill.resolved", timeout=15000)
        page.select_option("#actions select[name=stars]", "4")
        page.click("#actions button[data-action=rate]")
        page.wait_for_selector("text=Rated ★★★★", timeout=15000)
        clocks = {r.split("\t")[0]: r for r in page.inner_text("#sla").splitlines() if "\t" in r}
        assert "to spare" in clocks["accept"] and "to spare" in clocks["resolve"]
        assert "not needed" in clocks["arrive"]  # resolved from the desk, nobody went
        shot(page, "9-ticket")

        # The crowd: Sam is paused by policy; the operator reviews him and he is back.
        page.click("nav a[data-nav=crowd]")
        paused = page.wait_for_selector("tr[data-technician=sam].paused")
        assert not page.query_selector("a[data-action=export]")  # the roster: for admins
        assert "acceptance 40%" in paused.inner_text()
        # His app's webhook is down: the notice told to him waits, and the operator sees it.
        page.wait_for_selector("tr[data-technician=sam] [data-webhook=failing]", timeout=15000)
        assert "Connection refused" in page.inner_text("tr[data-technician=sam]")
        assert "off shift until" in page.inner_text("tr[data-technician=sam]")
        assert f"{later} (UTC)" in page.inner_text("tr[data-technician=sam]")
        renew = page.inner_text("tr[data-technician=sam] [data-certification=printers].warn")
        assert "printers certification expires" in renew and "(11 days left): renew it" in renew
        shot(page, "10-crowd-paused")
        page.fill("tr[data-technician=sam] input[name=note]", "talked it through")
        page.click("tr[data-technician=sam] button[data-action=review]")
        page.wait_for_selector("tr[data-technician=sam]:not(.paused)", timeout=15000)
        # No longer paused, but his shift has not begun: the desk does not claim he gets offers.
        row = page.inner_text("tr[data-technician=sam]")
        assert "no offers now" in row and "paused" not in row and "receiving offers" not in row

        # Sam's record: the job assigned by hand, resolved and rated; no offer was made to him.
        page.click("a[data-history=sam]")
        job = page.wait_for_selector("#history-jobs tr[data-job]")
        assert "Sam is next door" in job.inner_text() and "★★★★" in job.inner_text()
        assert "resolved" in job.inner_text()
        assert "No offer yet." in page.inner_text("#history-offers")
        assert "Jobs (the latest 1 of 1)" in page.inner_text("main")
        shot(page, "10b-technician-record")

        # Sam leaves: retired from his record (with a reason, confirmed), listed apart, and
        # brought back from there.
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.click("button[data-action=retire]")  # no reason yet: refused, nothing asked
        page.wait_for_selector("text=Write why they leave first.")
        page.fill("input[aria-label='why they leave']", "moved to Geneva")
        page.click("button[data-action=retire]")
        page.wait_for_selector("h2 .pill:has-text('retired')", timeout=15000)
        assert asked and "Retire Sam Keller?" in asked[0]
        assert "olga: moved to Geneva" in page.inner_text("h2")
        assert not page.query_selector("button[data-action=retire]")
        retired = page.wait_for_selector("#history-changes tr[data-change=retired]")
        assert "olga" in retired.inner_text() and "moved to Geneva" in retired.inner_text()
        reviewed = page.inner_text("#history-changes tr[data-change=reviewed]")
        assert "talked it through" in reviewed  # his review, earlier on the crowd page
        shot(page, "10c-technician-retired")
        page.click("text=← the crowd")
        gone = page.wait_for_selector("#retired tr[data-technician=sam]")
        assert "olga: moved to Geneva" in gone.inner_text()
        assert not page.query_selector("#crowd tr[data-technician=sam]")
        shot(page, "10c-crowd-retired")
        page.click("#retired tr[data-technician=sam] button[data-action=reinstate]")
        page.wait_for_selector("#crowd tr[data-technician=sam]", timeout=15000)
        assert not page.query_selector("#retired")

        # KPIs: the period's times and tickets by category and site, as charts.
        page.click("nav a[data-nav=kpis]")
        page.wait_for_selector("#by-category svg rect")
        assert "· 1 ticket" in page.inner_text("#tta")  # assigned by hand: accepted then
        assert "hb" in page.inner_text("#by-site .legend")
        # SLA by site and category: the ticket was accepted (assigned) and resolved in time;
        # resolved from the desk, nobody was on site, so that target counts for nothing.
        cells = page.inner_text("#sla-by-site tr[data-row=hb]").split("\t")
        assert [c.strip() for c in cells] == ["hb", "1", "100 %", "\u2013", "100 %", "0"]
        assert page.query_selector("#sla-by-category tr[data-row]")
        shot(page, "11-kpis")

        # Quarantine: the refused message with its reason, filterable.
        page.click("nav a[data-nav=quarantine]")
        refused = page.wait_for_selector("[data-quarantined]")
        assert "unsupported" in refused.inner_text() and "schema_version" in refused.inner_text()
        page.fill("input[name=device_id]", "nobody")
        page.press("input[name=device_id]", "Enter")
        page.wait_for_selector("text=Nothing refused matches.")
        shot(page, "12-quarantine")
    finally:
        page.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_admin_downloads_the_roster_edits_it_and_imports_it_again(
    cloud: CloudStack, browser, tmp_path: Path
) -> None:
    """The crowd page's roster link downloads the CSV the import reads (the session cookie
    is the admin's login). Edited (Sam's radius, a new technician, a row with a typo) and
    chosen on the same page, the file is checked first: who is new, what changes for whom,
    the bad row with its line; nothing saved until Import, which the crowd then shows (the
    new technician's time off: on leave from today)."""
    add_sam(cloud.sessions, "crowd", shifts=("mon-fri 07:00-19:00",))
    with transaction(cloud.sessions) as db:
        auth.create_user(db_session=db, username="ada", role=Role.ADMIN, password=PASSWORD, now=T0)
    page = browser.new_page(accept_downloads=True)
    try:
        page.goto(f"{cloud.api_url}/ui/login")
        page.fill("input[name=username]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/")
        page.click("nav a[data-nav=crowd]")
        page.wait_for_selector("tr[data-technician=sam]")
        with page.expect_download() as download:
            page.click("a[data-action=export]")
        assert download.value.suggested_filename == "technicians.csv"
        lines = Path(download.value.path()).read_text().splitlines()
        assert lines[0].startswith("id,name,kind,skills,home_lat,home_lon,radius_km,capacity")
        assert lines[1].startswith("sam,Sam Keller,crowd,printers,") and "mon-fri" in lines[1]

        sam = lines[1].split(",")
        sam[6] = "9"  # radius_km
        today = datetime.now(UTC).date()
        away = f"{today}..{today + timedelta(days=10)}"  # Zoë is on leave from today
        edited = tmp_path / "roster.csv"  # saved by a spreadsheet: Windows-1252, not UTF-8
        edited.write_text(
            "\n".join(
                [lines[0], ",".join(sam), f"zoe,Zoë Frei,crowd,pos,47.37,8.53,8,1,,,{away},UTC",
                 "yan,Yan,crowd,pos,47.37,east,8,1,,,,UTC", ""]
            ),
            encoding="cp1252",
        )  # fmt: skip
        page.set_input_files("input[name=roster]", str(edited))
        checked = page.wait_for_selector("#import[data-state=checked]", timeout=15000)
        text = checked.inner_text()
        assert "roster.csv: 2 row(s) to import, 1 left out (below). Nothing is saved yet." in text
        assert "1 new: zoe" in text and "1 changed: sam (radius_km)" in text
        error = page.inner_text("#import-errors tbody tr")
        assert "4" in error and "yan" in error and "home_lon" in error
        assert not page.query_selector("tr[data-technician=zoe]")  # checked, not saved
        shot(page, "16-roster-checked")
        page.click("#import button[data-action=import]")
        page.wait_for_selector("#import[data-state=imported]", timeout=15000)
        zoe = page.wait_for_selector("tr[data-technician=zoe]", timeout=15000)
        assert "Zoë Frei" in zoe.inner_text()
        assert "on leave until" in zoe.inner_text()
        assert f"time off: {away}" in zoe.inner_text()
        assert "9 km" in page.inner_text("tr[data-technician=sam]")
        shot(page, "17-roster-imported")
        page.click("#import button[data-action=close-import]")
        page.wait_for_selector("#import", state="detached", timeout=15000)
    finally:
        page.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_crowd_page_finds_technicians_by_name_skill_kind_and_standing(
    cloud: CloudStack, browser
) -> None:
    """Sam (crowd, printers, paused), Ben (staff, network) and Bea (crowd, network, on leave
    today): the filters narrow the list and stay in the address; a live change while a name
    is being typed leaves the cursor and the text where they were."""
    add_operator(cloud.sessions)
    add_sam(cloud.sessions, "crowd", "acceptance 40% < 80% over the last 20 offers")
    roster = (
        "id,name,kind,skills,home_lat,home_lon,radius_km,capacity,time_off\n"
        "ben,Ben Frei,staff,network,47.38,8.54,20,2,2031-12-24\n"
        f"bea,Bea Roth,crowd,network,47.37,8.53,10,1,{datetime.now(UTC).date()}\n"
    )
    with transaction(cloud.sessions) as db:
        assert not csvimport.import_csv(db_session=db, text=roster, now=T0).errors
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        login(page, cloud.api_url)
        page.goto(f"{cloud.api_url}/ui/crowd")
        page.wait_for_selector("tr[data-technician=bea]")

        def listed() -> list[str]:
            rows = page.query_selector_all("#crowd tr[data-technician]")
            return sorted(r.get_attribute("data-technician") or "" for r in rows)

        assert listed() == ["bea", "ben", "sam"]
        page.select_option("#crowd-filters select[name=skill]", "network")
        assert listed() == ["bea", "ben"] and "Showing 2 of 3." in page.inner_text("main")
        page.select_option("#crowd-filters select[name=kind]", "crowd")
        assert listed() == ["bea"]
        page.select_option("#crowd-filters select[name=kind]", "")
        page.select_option("#crowd-filters select[name=skill]", "")
        page.select_option("#crowd-filters select[name=standing]", "paused")
        assert listed() == ["sam"]
        page.select_option("#crowd-filters select[name=standing]", "on-leave")
        assert listed() == ["bea"]  # not Ben: his time off is years away
        page.select_option("#crowd-filters select[name=standing]", "")

        search = page.locator("#crowd-filters input[name=q]")
        search.click()
        search.press_sequentially("be")
        page.wait_for_function(
            "document.querySelectorAll('#crowd tr[data-technician]').length === 2"
        )
        assert listed() == ["bea", "ben"]
        # Ben goes offline meanwhile: the page redraws live, the search keeps its cursor.
        with transaction(cloud.sessions) as db:
            from cloud.dispatch.models import Technician

            ben = db.get(Technician, "ben")
            assert ben is not None
            ben.available = False
        page.wait_for_selector(
            "tr[data-technician=ben] .pill:has-text('not available')", timeout=15000
        )
        assert page.evaluate("document.activeElement.name") == "q"
        search.press_sequentially("n")
        assert listed() == ["ben"]
        assert "q=ben" in page.url
        shot(page, "10d-crowd-filtered")
        page.reload()
        page.wait_for_selector("tr[data-technician=ben]")
        assert listed() == ["ben"] and search.input_value() == "ben"
    finally:
        page.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_offer_in_a_big_crowd_lists_the_best_and_counts_the_rest(
    cloud: CloudStack, browser
) -> None:
    """33 technicians could fix the shop's printer and 5 electricians could not: the ticket
    page lists the thirty best, the offered one first, and counts the other eight by why."""
    from tests.cloud.factories import ingest, press

    located_shop(cloud.sessions, "pos-1")
    shop_by_name(cloud.sessions)
    add_operator(cloud.sessions)
    rows = [
        f"p{n:02d},P {n},crowd,printers,{47.3779 + n * 0.001:.4f},8.5403,10,1" for n in range(33)
    ]
    rows += [f"e{n},E {n},crowd,electrical,47.3779,8.5403,10,1" for n in range(5)]
    roster = "id,name,kind,skills,home_lat,home_lon,radius_km,capacity\n" + "\n".join(rows)
    with transaction(cloud.sessions) as db:
        assert not csvimport.import_csv(db_session=db, text=roster, now=T0).errors
    ticket_id = ingest(cloud.sessions, press("pos-1", base=datetime.now(UTC))).ticket_id
    offered = wait_for(lambda: cloud.get(f"/api/tickets/{ticket_id}/offers"), timeout=15)
    assert offered[0]["left_out"] == {"eligible but scored lower": 3, "lack the skills": 5}
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        login(page, cloud.api_url)
        page.goto(f"{cloud.api_url}/ui/ticket?id={ticket_id}")
        note = page.wait_for_selector("[data-offer-row] [data-left-out]", timeout=15000)
        assert note.inner_text() == (
            "Not listed: 8 more technicians (3 eligible but scored lower, 5 lack the skills)."
        )
        listed = page.query_selector_all("[data-offer-row] table.candidates tbody tr")
        assert len(listed) == 30
        assert listed[0].inner_text().startswith("p00 ← offered")
        # Assigning by hand: those ranked for the ticket first, in that order, then the rest.
        groups = page.eval_on_selector_all(
            "#actions select[name=technician] optgroup",
            "gs => gs.map(g => [g.label, [...g.children].map(o => o.textContent)])",
        )
        assert [label.split(" of ")[0] for label, _ in groups] == [
            "As ranked for the offer",
            "Everyone else",
        ]
        assert groups[0][1][:2] == ["P 0 (crowd) · ETA 5 min", "P 1 (crowd) · ETA 5 min"]
        assert len(groups[0][1]) == 30 and all(o.startswith("P ") for o in groups[0][1])
        assert [o.split(" (")[0] for o in groups[1][1]] == [
            "E 0",
            "E 1",
            "E 2",
            "E 3",
            "E 4",
            "P 30",
            "P 31",
            "P 32",
        ]  # by name
        shot(page, "5b-ticket-big-crowd")
        # Searching the list: every word typed begins a word of a name, an id or a skill;
        # nobody matching, nobody chosen.
        page.fill("#actions input[name=find]", "elec 4")
        shown = page.eval_on_selector_all(
            "#actions select[name=technician] option:not([hidden])", "os => os.map(o => o.value)"
        )
        assert shown == ["e4"] and page.input_value("#actions select[name=technician]") == "e4"
        assert page.inner_text("#assign-found") == "1 of 38 match"
        assert page.eval_on_selector_all(
            "#actions select[name=technician] optgroup", "gs => gs.map(g => g.hidden)"
        ) == [True, False]  # the ranked ones are all printer technicians
        page.fill("#actions input[name=find]", "nobody-by-this-name")
        assert page.inner_text("#assign-found") == "nobody matches"
        page.click("#actions button[data-action=assign]")
        page.wait_for_selector("text=nobody matches the search: clear it", timeout=5000)
        assert cloud.get(f"/api/tickets/{ticket_id}")["technician_id"] is None
        page.fill("#actions input[name=find]", "3 print")  # P 3, P 30, P 31, P 32; not P 13
        shown = page.eval_on_selector_all(
            "#actions select[name=technician] option:not([hidden])", "os => os.map(o => o.value)"
        )
        assert shown == ["p03", "p30", "p31", "p32"]  # P 3 as ranked, then the rest by name
        page.select_option("#actions select[name=technician]", "p31")
        page.click("#actions button[data-action=assign]")
        given = page.wait_for_selector("#audit tr:has([data-assigned-to=p31])", timeout=15000)
        assert given.inner_text().split("\t")[1] == "olga"
        withdrawn = page.inner_text("#audit tr:has-text('offer_withdrawn')").split("\t")
        assert withdrawn[1:] == ["olga", "offer_withdrawn", "assigned by olga"]  # p00's offer
        assert cloud.get(f"/api/tickets/{ticket_id}")["technician_id"] == "p31"
        shot(page, "5c-ticket-big-crowd-searched")
    finally:
        page.close()


def test_every_page_and_asset_is_served_by_the_app_itself(sessions) -> None:
    """No CDN: each script and stylesheet a page loads is one of the app's own files, and no
    file of the dashboard names an address outside the app."""
    import re

    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.dashboard.api import ASSETS, STATIC
    from cloud.main import create_app

    client = TestClient(create_app(CloudSettings(), sessions))
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s\"'`]*", text)
        assert not [u for u in external if "w3.org/2000/svg" not in u], (path.name, external)
    for page in (
        "/ui/",
        "/ui/device",
        "/ui/ticket",
        "/ui/crowd",
        "/ui/kpis",
        "/ui/quarantine",
        "/ui/login",
        "/ui/tech",
    ):
        html = client.get(page)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        for ref in re.findall(r'(?:src|href)="([^"#]+)"', html.text):
            if ref.startswith("/ui/") and ref.rsplit("/", 1)[1] in ASSETS:
                assert client.get(ref).status_code == 200, ref
            else:
                assert ref.startswith("/ui/"), f"{page} loads {ref}"
