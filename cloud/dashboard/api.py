"""Dashboard routes: the pages (static files, no CDN) and the live change stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.deps import StaffDep
from cloud.devices.models import Device
from cloud.dispatch.models import Offer
from cloud.tickets.models import Ticket

STATIC = Path(__file__).with_name("static")
PAGES = {"": "board.html", "login": "login.html", "tech": "tech.html"}
ASSETS = {
    "common.js": "text/javascript",
    "app.js": "text/javascript",
    "tech.js": "text/javascript",
    "style.css": "text/css",
}
STREAM_EVERY_S = 1.0
KEEPALIVE_S = 15.0
router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    """The dashboard lives under /ui/."""
    return RedirectResponse("/ui/")


@router.get("/ui/")
def board() -> FileResponse:
    """The operator's board."""
    return FileResponse(STATIC / "board.html", media_type="text/html")


@router.get("/ui/{page}")
def page(page: str) -> FileResponse:
    """A page or one of its assets (each served by the app itself)."""
    if page in ASSETS:
        return FileResponse(STATIC / page, media_type=ASSETS[page])
    name = PAGES.get(page.removesuffix(".html"), "board.html")
    return FileResponse(STATIC / name, media_type="text/html")


def fingerprint(sessions: sessionmaker[Session]) -> dict[str, str]:
    """What changes when a ticket, an offer or a device's presence changes."""
    with sessions() as db:
        tickets = db.execute(select(func.count(), func.max(Ticket.updated_at))).one()
        offers = db.execute(select(func.count(), func.max(Offer.answered_at))).one()
        devices = db.execute(
            select(func.count(), func.max(Device.presence_since), func.max(Device.status_at))
        ).one()
    return {
        "tickets": str(tuple(tickets)),
        "offers": str(tuple(offers)),
        "devices": str(tuple(devices)),
    }


@router.get("/api/stream")
async def stream(request: Request, _staff: StaffDep) -> StreamingResponse:
    """Server-sent events: `change` (with what changed) whenever tickets, offers or device
    presence change; a comment every 15 s keeps proxies from closing the stream."""
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
