"""The cloud's clock, read at the edges and passed into the rules."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)
