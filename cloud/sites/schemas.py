"""Site shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SiteId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Criticality = Literal["low", "normal", "high", "critical"]


class SiteIn(BaseModel):
    """A site to create or replace."""

    model_config = ConfigDict(extra="forbid")

    id: SiteId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(max_length=300)] = ""
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    criticality: Criticality = "normal"


class SiteOut(SiteIn):
    """A site as stored."""

    model_config = ConfigDict(from_attributes=True)

    created_at: datetime
