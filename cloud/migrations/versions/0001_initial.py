"""Devices, tickets and the idempotency record of ingested messages.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("profile", sa.String(64)),
        sa.Column("presence", sa.String(16), nullable=False),
        sa.Column("agent_version", sa.String(32)),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime()),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("source_message_id", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_tickets_device_id", "tickets", ["device_id"])
    op.create_index("ix_tickets_state", "tickets", ["state"])
    op.create_table(
        "ingested_messages",
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("ticket_id", sa.Integer),
    )
    op.create_index("ix_ingested_messages_device_id", "ingested_messages", ["device_id"])


def downgrade() -> None:
    op.drop_table("ingested_messages")
    op.drop_table("tickets")
    op.drop_table("devices")
