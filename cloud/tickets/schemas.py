"""Ticket shapes served by the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TicketOut(BaseModel):
    """A ticket as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    category: str
    priority: str
    state: str
    source: str
    title: str
    description: str
    opened_at: datetime
    created_at: datetime
    updated_at: datetime
