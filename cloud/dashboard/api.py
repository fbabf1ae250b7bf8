"""Dashboard routes: the pages (static files, no CDN) and the live change stream."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.models import RaisedAlert
from cloud.config import CloudSettings
from cloud.deps import StaffDep
from cloud.devices.models import Device, DeviceFault
from cloud.dispatch.models import Offer, Technician, TechnicianEvent
from cloud.quarantine.models import QuarantinedMessage
from cloud.tickets.models import Ticket

STATIC = Path(__file__).with_name("static")
# The operator's pages share one shell (header, navigation, live indicator) and differ by script.
DESK_PAGES = {
    "": "app.js",
    "device": "device.js",
    "ticket": "ticket.js",
    "crowd": "crowd.js",
    "kpis": "kpis.js",
    "quarantine": "quarantine.js",
}
PAGES = {"login": "login.html", "tech": "tech.html", "rate": "rate.html"}
ASSETS = {
    **{script: "text/javascript" for script in DESK_PAGES.values()},
    "common.js": "text/javascript",
    "charts.js": "text/javascript",
    "tech.js": "text/javascript",
    "rate.js": "text/javascript",
    "style.css": "text/css",
}
STREAM_EVERY_S = 1.0
KEEPALIVE_S = 15.0
router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    """The dashboard lives under /ui/."""
    return RedirectResponse("/ui/")


@functools.cache
def _shell() -> str:
    return (STATIC / "desk.html").read_text(encoding="utf-8")


def _desk(script: str) -> HTMLResponse:
    return HTMLResponse(_shell().replace("{{script}}", script))


@router.get("/ui/")
def board() -> HTMLResponse:
    """The operator's desk: tickets and fleet."""
    return _desk(DESK_PAGES[""])


@router.get("/ui/{page}")
def page(page: str) -> Response:
    """A page or one of its assets (each served by the app itself, no CDN)."""
    if page in ASSETS:
        return FileResponse(STATIC / page, media_type=ASSETS[page])
    name = page.removesuffix(".html")
    if name in PAGES:
        return FileResponse(STATIC / PAGES[name], media_type="text/html")
    return _desk(DESK_PAGES.get(name, DESK_PAGES[""]))


@router.get("/api/dashboard/config")
def config(request: Request, _staff: StaffDep) -> dict[str, str | float | None]:
    """What the pages need to know of the deployment: the Grafana link (when configured), and
    the share of an SLA target's time after which a ticket is flagged as at risk."""
    settings: CloudSettings = request.app.state.settings
    return {"grafana_url": settings.grafana_url, "sla_warning_share": settings.sla_warning_share}


def fingerprint(sessions: sessionmaker[Session]) -> dict[str, str]:
    """What changes when a ticket, an offer, a device's presence, a technician's standing
    (toggle, position, pause, retirement, a new one), the quarantine or the operators' alerts
    change."""
    with sessions() as db:
        tickets = db.execute(select(func.count(), func.max(Ticket.updated_at))).one()
        offers = db.execute(select(func.count(), func.max(Offer.answered_at))).one()
        devices = db.execute(
            select(func.count(), func.max(Device.presence_since), func.max(Device.status_at))
        ).one()
        faults = db.execute(
            select(func.max(DeviceFault.raised_at), func.max(DeviceFault.cleared_at))
        ).one()
        refused = db.execute(select(func.max(QuarantinedMessage.id))).one()
        crowd = db.execute(
            select(
                func.count(),
                func.sum(case((Technician.available.is_(True), 1), else_=0)),
                func.max(Technician.position_at),
                func.max(Technician.created_at),
            )
        ).one()
        standing = db.execute(select(func.max(TechnicianEvent.id))).one()
        alerted = db.execute(select(func.max(RaisedAlert.id), func.max(RaisedAlert.cleared_at)))
    return {
        "quarantine": str(tuple(refused)),
        "tickets": str(tuple(tickets)),
        "offers": str(tuple(offers)),
        "devices": str((*devices, *faults)),
        "technicians": str((*crowd, *standing)),
        "alerts": str(tuple(alerted.one())),
    }


@router.get("/api/stream")
async def stream(request: Request, _staff: StaffDep) -> StreamingResponse:
    """Server-sent events: `change` (with what changed) whenever tickets, offers, device
    presence or technicians' standing change; a comment every 15 s keeps proxies from
    closing the stream."""
    sessions: sessionmaker[Session] = request.app.state.sessions

    async def events() -> AsyncIterator[str]:
        last = await asyncio.to_thread(fingerprint, sessions)
        yield "retry: 2000\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            await asyncio.sleep(STREAM_EVERY_S)
            now = await asyncio.to_thread(fingerprint, sessions)
            changed = [k for k in now if now[k] != last[k]]
            if changed:
                last, quiet = now, 0.0
                yield f"event: change\ndata: {json.dumps(changed)}\n\n"
            else:
                quiet += STREAM_EVERY_S
                if quiet >= KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
