"""Device shapes served by the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class DeviceOut(BaseModel):
    """A device as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    profile: str | None
    presence: str
    agent_version: str | None
    registered_at: datetime
    last_seen_at: datetime | None
