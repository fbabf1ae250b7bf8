"""Every table of the cloud, imported in one place for Alembic and create_all."""

from cloud.devices.models import Device
from cloud.ingest.models import IngestedMessage
from cloud.tickets.models import Ticket

__all__ = ["Device", "IngestedMessage", "Ticket"]
