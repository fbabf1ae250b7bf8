"""Quarantine shapes of the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, field_serializer


class QuarantinedOut(BaseModel):
    """A refused message; the payload is shown as text (undecodable bytes escaped)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes
    size: int

    @field_serializer("payload")
    def _text(self, payload: bytes) -> str:
        return payload.decode("utf-8", errors="backslashreplace")
