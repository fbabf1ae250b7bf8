"""Ticket events by time: the dispatcher reads the last hour's changes every round.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_events_at", "ticket_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_events_at", table_name="ticket_events")
