"""Pure presence: online, stale or offline from the status messages and the heartbeats; and
when an offline device deserves a ticket.

Status messages (the retained birth and the last will) carry the time their MQTT session
began, so the will of a session and its birth have the same timestamp and a newer session's
birth is later than any older will, whatever order they arrive in. An offline status is final
until a newer session says it is online: messages of the dead session that arrive late do not
bring the device back.
"""

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


def newer_status(
    current: str | None, current_at: datetime | None, state: str, at: datetime
) -> bool:
    """True when a status message (state, session start) replaces the current one; for the same
    session, offline wins (its will comes after its birth)."""
    if current_at is None or at > current_at:
        return True
    return at == current_at and state == "offline" and current != "offline"


def presence(
    now: datetime,
    *,
    last_seen: datetime | None,
    status: str | None,
    heartbeat_s: float | None,
    policy: PresencePolicy,
) -> Presence:
    """The device's presence now."""
    if status == "offline":
        return Presence.OFFLINE
    if last_seen is None:
        return Presence.UNKNOWN
    interval = heartbeat_s or policy.default_heartbeat_s
    silent = (now - last_seen).total_seconds()
    if silent > policy.offline_after_heartbeats * interval:
        return Presence.OFFLINE
    if silent > policy.stale_after_heartbeats * interval:
        return Presence.STALE
    return Presence.ONLINE


def offline_ticket_due(now: datetime, since: datetime | None, policy: PresencePolicy) -> bool:
    """True once a device has been offline for longer than the grace period."""
    return since is not None and now - since >= timedelta(minutes=policy.offline_grace_min)
