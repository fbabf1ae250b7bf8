"""Frozen message types on the wire; every message carries the same envelope."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.topics import DEVICE_ID_PATTERN

SCHEMA_VERSION = 1

DeviceId = Annotated[str, Field(pattern=DEVICE_ID_PATTERN, max_length=64)]
MessageId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Seq = Annotated[int, Field(ge=0, lt=2**63)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
ShortText = Annotated[str, Field(max_length=500)]


def new_message_id() -> str:
    """A fresh idempotency key (32 hex characters)."""
    return uuid.uuid4().hex


class Gesture(StrEnum):
    """How a button was pressed."""

    SINGLE = "single"
    DOUBLE = "double"
    LONG = "long"


class Action(StrEnum):
    """What the person at the device asks for."""

    REQUEST = "request"
    CANCEL = "cancel"
    URGENT = "urgent"


class FaultState(StrEnum):
    """A fault is raised once and cleared once."""

    RAISED = "raised"
    CLEARED = "cleared"


class Severity(StrEnum):
    """How bad a fault is, as the device profile says."""

    INFO = "info"
    WARNING = "warning"
    MAJOR = "major"
    CRITICAL = "critical"


class FeedbackState(StrEnum):
    """What the person at the device is shown (LED/buzzer pattern)."""

    RECEIVED = "received"
    TECHNICIAN_ASSIGNED = "technician_assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    ERROR = "error"


class _Message(BaseModel):
    # Built on first use: each side only ever builds the messages it handles.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    schema_version: Literal[1] = 1
    message_id: MessageId = Field(default_factory=new_message_id)
    device_id: DeviceId
    timestamp: AwareDatetime


class _Uplink(_Message):
    seq: Seq


class ButtonEvent(_Uplink):
    """A help button was pressed: which button, its problem category, the gesture and its action."""

    type: Literal["button"] = "button"
    button: Slug
    category: Slug
    gesture: Gesture = Gesture.SINGLE
    action: Action = Action.REQUEST


class FaultEvent(_Uplink):
    """A device fault was raised or cleared, with the readings that decided it."""

    type: Literal["fault"] = "fault"
    code: Slug
    state: FaultState
    severity: Severity = Severity.WARNING
    summary: ShortText = ""
    readings: dict[Slug, FiniteFloat] = Field(default_factory=dict, max_length=32)


class Reading(BaseModel):
    """One sampled value of one named signal."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Slug
    value: FiniteFloat
    unit: Annotated[str, Field(max_length=16)] = ""
    timestamp: AwareDatetime


class Telemetry(_Uplink):
    """A batch of readings."""

    type: Literal["telemetry"] = "telemetry"
    readings: list[Reading] = Field(min_length=1, max_length=500)


class Status(_Uplink):
    """Birth (online, retained) and last will (offline, retained)."""

    type: Literal["status"] = "status"
    state: Literal["online", "offline"]
    agent_version: Annotated[str, Field(max_length=32)] = ""
    profile: Slug | None = None


class Heartbeat(_Uplink):
    """Periodic proof of life with the agent's own health."""

    type: Literal["heartbeat"] = "heartbeat"
    agent_version: Annotated[str, Field(max_length=32)]
    profile: Slug
    config_hash: Annotated[str, Field(max_length=64)] = ""
    interval_s: Annotated[float, Field(gt=0, le=86_400)] | None = None  # the next one is due
    uptime_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    backlog: Annotated[int, Field(ge=0)] = 0
    oldest_pending_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    telemetry_dropped: Annotated[int, Field(ge=0)] = 0


class Receipt(_Message):
    """The cloud has stored these messages; the agent may forget them."""

    type: Literal["receipt"] = "receipt"
    message_ids: list[MessageId] = Field(min_length=1, max_length=100)
    ticket_id: int | None = None


class Feedback(_Message):
    """A ticket changed state in a way the person at the device should see."""

    type: Literal["feedback"] = "feedback"
    state: FeedbackState
    ticket_id: int | None = None
    eta_minutes: Annotated[int, Field(ge=0, le=24 * 60)] | None = None
    note: ShortText = ""


UplinkMessage = Annotated[
    ButtonEvent | FaultEvent | Telemetry | Status | Heartbeat, Field(discriminator="type")
]
DownlinkMessage = Annotated[Receipt | Feedback, Field(discriminator="type")]
