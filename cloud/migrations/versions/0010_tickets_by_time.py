"""Tickets by time: the dispatcher reads the week's latest tickets every round.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tickets_opened_at", "tickets", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_opened_at", table_name="tickets")
