"""Building blocks for cloud tests: registry entries and device messages."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import transaction
from cloud.devices import service as devices
from cloud.devices.schemas import DeviceIn
from cloud.ingest.service import IngestContext, IngestResult, ingest_event
from cloud.outbound.models import OutboundMessage
from cloud.sites import service as sites
from cloud.sites.schemas import SiteIn
from cloud.tickets.taxonomy import load_taxonomy
from contracts import ButtonEvent, FaultEvent, Status

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Zurich: business hours
TAXONOMY = load_taxonomy()
CTX = IngestContext(TAXONOMY)
_seq = itertools.count(1)


def at(minutes: float, base: datetime = T0) -> datetime:
    """A moment some minutes after base (T0 unless said)."""
    return base + timedelta(minutes=minutes)


def register(
    sessions: sessionmaker[Session],
    *device_ids: str,
    site: str | None = None,
    criticality: str = "normal",
) -> None:
    """Register devices (and their site)."""
    with transaction(sessions) as db:
        if site:
            sites.upsert(
                db_session=db,
                site_in=SiteIn(id=site, name=f"Site {site}", criticality=criticality),
                now=T0,
            )
        for device_id in device_ids:
            devices.register(
                db_session=db,
                device_in=DeviceIn(id=device_id, site_id=site, profile="pos-terminal"),
                now=T0,
            )


ZURICH_HB = (47.3779, 8.5403)


def located_shop(sessions: sessionmaker[Session], *device_ids: str, site: str = "hb") -> None:
    """Devices at a shop with a location (what dispatch goes by): Zurich main station."""
    register(sessions, *device_ids, site=site)
    with transaction(sessions) as db:
        located = SiteIn(
            id=site, name=f"Site {site}", latitude=ZURICH_HB[0], longitude=ZURICH_HB[1]
        )
        sites.upsert(db_session=db, site_in=located, now=T0)


def press(
    device: str,
    category: str = "receipt-printer",
    action: str = "request",
    minutes: float = 0,
    seq: int | None = None,
    base: datetime = T0,
) -> ButtonEvent:
    """A button event."""
    return ButtonEvent(
        device_id=device,
        timestamp=at(minutes, base),
        seq=seq or next(_seq),
        button="b",
        category=category,
        action=action,
    )


def fault(
    device: str,
    code: str,
    raised: bool = True,
    minutes: float = 0,
    severity: str = "major",
    seq: int | None = None,
    base: datetime = T0,
) -> FaultEvent:
    """A fault raise or clear."""
    return FaultEvent(
        device_id=device,
        timestamp=at(minutes, base),
        seq=seq or next(_seq),
        code=code,
        state="raised" if raised else "cleared",
        severity=severity,
        summary=f"{code} summary",
        readings={"level": 1.0},
    )


def status(device: str, state: str, minutes: float = 0) -> Status:
    """A birth or last-will message."""
    return Status(device_id=device, timestamp=at(minutes), seq=next(_seq), state=state)


def ingest(
    sessions: sessionmaker[Session],
    message: ButtonEvent | FaultEvent | Status,
    now: datetime | None = None,
    ctx: IngestContext = CTX,
) -> IngestResult:
    """Apply one event in its own transaction."""
    with transaction(sessions) as db:
        return ingest_event(
            db_session=db,
            message=message,
            ctx=ctx,
            now=now or message.timestamp + timedelta(seconds=1),
        )


def token_for(
    sessions: sessionmaker[Session],
    role: str,
    username: str | None = None,
    technician_id: str | None = None,
) -> str:
    """A user of that role and a bearer token for it."""
    from cloud.auth import service as auth
    from cloud.auth.roles import Role

    with transaction(sessions) as db:
        user = auth.create_user(
            db_session=db,
            username=username or f"{role}-{next(_seq)}",
            role=Role(role),
            password="correct horse battery staple",
            technician_id=technician_id,
            now=datetime.now(T0.tzinfo),
        )
        token, _ = auth.issue_token(
            db_session=db, user=user, name="test", now=datetime.now(T0.tzinfo)
        )
    return token


def client(sessions: sessionmaker[Session], role: str | None = "operator") -> object:
    """A TestClient on the API, logged in with that role (None: anonymous)."""
    from fastapi.testclient import TestClient

    from cloud.config import CloudSettings
    from cloud.main import create_app

    api = TestClient(create_app(CloudSettings(), sessions))
    if role:
        api.headers["Authorization"] = f"Bearer {token_for(sessions, role)}"
    return api


def pushed_to(sessions, technician_id: str, about: str) -> list[dict[str, object]]:
    """What was queued for the technician's topic (offer or job), oldest first."""
    with sessions() as db:
        payloads = db.scalars(
            select(OutboundMessage.payload)
            .where(OutboundMessage.topic == f"tech/crowdfix/v1/{technician_id}/{about}")
            .order_by(OutboundMessage.id)
        ).all()
    return [json.loads(p) for p in payloads]
