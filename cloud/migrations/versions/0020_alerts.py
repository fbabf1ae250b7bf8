"""Operator alerts: each raised once per ticket, kind and episode, and cleared once.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("cleared_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("ticket_id", "kind", "episode", name="uq_alerts_once"),
    )
    op.create_index("ix_alerts_at", "alerts", ["at"])
    op.create_index("ix_alerts_cleared_at", "alerts", ["cleared_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_cleared_at", "alerts")
    op.drop_index("ix_alerts_at", "alerts")
    op.drop_table("alerts")
