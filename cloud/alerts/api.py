"""Alert routes: the latest alerts, and a test POST to the alert webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from cloud.alerts import service
from cloud.alerts.rules import AlertChannel
from cloud.alerts.schemas import AlertsView
from cloud.clock import utc_now
from cloud.deps import AdminDep, SessionDep, StaffDep, WriterSessionDep
from cloud.dispatch.schemas import WebhookHealthOut
from cloud.errors import Conflict

router = APIRouter(prefix="/api/alerts", tags=["alerts"])


def _channel(request: Request) -> AlertChannel:
    channel: AlertChannel = request.app.state.alert_channel  # built once, with the app
    return channel


@router.get("", response_model=AlertsView)
def list_alerts(
    request: Request,
    _caller: StaffDep,
    db_session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ticket_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> AlertsView:
    """The latest alerts, newest first (of one ticket, if given), and how POSTs to the alert
    webhook are going."""
    channel = _channel(request)
    rows = service.latest(db_session=db_session, limit=limit, ticket_id=ticket_id)
    health = service.webhook_health(db_session=db_session, channel=channel)
    return AlertsView(
        alerts=[service.view(row, channel) for row in rows],
        webhook_to=channel.webhook_to(),
        webhook=WebhookHealthOut.model_validate(health) if health else None,
        kinds=sorted(kind.value for kind in channel.kinds),
    )


@router.post("/test", status_code=202)
def test_alert(request: Request, caller: AdminDep, db_session: WriterSessionDep) -> dict[str, str]:
    """Send a test alert to the alert webhook (as the workers send alerts: queued, signed,
    retried), to check it reaches the channel; GET /api/alerts shows how it went."""
    sent = service.send_test(
        db_session=db_session, channel=_channel(request), now=utc_now(), by=caller.username
    )
    if not sent:
        raise Conflict(
            "no alert webhook is set: set CROWDFIX_ALERT_WEBHOOK_URL for the API and the workers"
        )
    db_session.commit()
    return {"status": "queued"}
