"""What the alert webhook is POSTed and what the API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from cloud.dispatch.schemas import WebhookHealthOut


class AlertOut(BaseModel):
    """One alert: which ticket, why, when, in words (and a link to the ticket's page)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    ticket_id: int
    kind: str
    at: datetime
    summary: str
    url: str | None = None
    cleared_at: datetime | None = None  # what it said stopped holding


class ClearedOut(BaseModel):
    """An alert that no longer holds, and where its ticket stands now."""

    id: int  # the alert's
    ticket_id: int
    kind: str
    summary: str
    url: str | None = None


class AlertsNotice(BaseModel):
    """POSTed to CROWDFIX_ALERT_WEBHOOK_URL: a sweep's new alerts, and those cleared. `text`
    is what a chat's incoming webhook shows; the lists are for a program."""

    schema_version: Literal[1] = 1
    type: Literal["alerts"] = "alerts"
    text: str
    alerts: list[AlertOut]
    cleared: list[ClearedOut] = []


class ChatNotice(BaseModel):
    """POSTed instead with CROWDFIX_ALERT_WEBHOOK_FORMAT=chat: the text alone."""

    text: str


class PostableAlert(BaseModel):
    """One alert as Alertmanager's API takes it (POST /api/v2/alerts): firing until endsAt,
    which crowdfix moves on each minute while it holds, and sets to now when it is over."""

    model_config = ConfigDict(serialize_by_alias=True)

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL")


class AlertmanagerNotice(RootModel[list[PostableAlert]]):
    """POSTed with CROWDFIX_ALERT_WEBHOOK_FORMAT=alertmanager: the alerts raised, cleared or
    still holding (Alertmanager groups, routes and silences them)."""


class AlertsView(BaseModel):
    """The latest alerts, and how POSTs to the alert webhook are going."""

    alerts: list[AlertOut]
    # Where they are POSTed, its address cut to scheme and host (the whole URL is a secret
    # for many chat tools); None: alerts are raised and listed here, but sent nowhere.
    webhook_to: str | None
    webhook: WebhookHealthOut | None = None
    kinds: list[str]  # the kinds raised (CROWDFIX_ALERTS)
