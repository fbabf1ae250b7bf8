"""Technician history: find the changes that assigned tickets to a technician by index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_events_state_actor", "ticket_events", ["to_state", "actor"])


def downgrade() -> None:
    op.drop_index("ix_ticket_events_state_actor", table_name="ticket_events")
