"""Pure presence: online, stale or offline from the last will, the last message and the
heartbeat interval; and when an offline device deserves a ticket."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from cloud.tickets.taxonomy import PresencePolicy


class Presence(StrEnum):
    """How a device is doing, as far as the cloud can tell."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


def presence(
    now: datetime,
    *,
    last_seen: datetime | None,
    said_offline_at: datetime | None,
    heartbeat_s: float | None,
    policy: PresencePolicy,
) -> Presence:
    """The device's presence now. A last will (or goodbye) after the last message is final."""
    if last_seen is None:
        return Presence.OFFLINE if said_offline_at else Presence.UNKNOWN
    if said_offline_at is not None and said_offline_at >= last_seen:
        return Presence.OFFLINE
    interval = heartbeat_s or policy.default_heartbeat_s
    silent = (now - last_seen).total_seconds()
    if silent > policy.offline_after_heartbeats * interval:
        return Presence.OFFLINE
    if silent > policy.stale_after_heartbeats * interval:
        return Presence.STALE
    return Presence.ONLINE


def offline_since(
    *,
    last_seen: datetime | None,
    said_offline_at: datetime | None,
    heartbeat_s: float | None,
    policy: PresencePolicy,
) -> datetime | None:
    """When an offline device went offline (its will, or the end of the heartbeat allowance)."""
    if said_offline_at is not None and (last_seen is None or said_offline_at >= last_seen):
        return said_offline_at
    if last_seen is None:
        return None
    interval = heartbeat_s or policy.default_heartbeat_s
    return last_seen + timedelta(seconds=policy.offline_after_heartbeats * interval)


def offline_ticket_due(now: datetime, since: datetime | None, policy: PresencePolicy) -> bool:
    """True once a device has been offline for longer than the grace period."""
    return since is not None and now - since >= timedelta(minutes=policy.offline_grace_min)
