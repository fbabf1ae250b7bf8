"""Every table of the cloud, imported in one place for Alembic and create_all."""

from cloud.alerts.models import RaisedAlert
from cloud.auth.models import ApiToken, FailedLogin, User
from cloud.devices.models import Device, DeviceFault, FaultTransition
from cloud.dispatch.models import Offer, RatingLink, Technician
from cloud.ingest.models import IngestedMessage
from cloud.outbound.models import OutboundMessage
from cloud.quarantine.models import QuarantinedMessage
from cloud.sites.models import Site
from cloud.telemetry.models import LatestReading, RecentReading
from cloud.tickets.models import Ticket, TicketEvent

__all__ = [
    "ApiToken",
    "Device",
    "DeviceFault",
    "FailedLogin",
    "FaultTransition",
    "IngestedMessage",
    "LatestReading",
    "Offer",
    "OutboundMessage",
    "QuarantinedMessage",
    "RaisedAlert",
    "RatingLink",
    "RecentReading",
    "Site",
    "Technician",
    "Ticket",
    "TicketEvent",
    "User",
]
