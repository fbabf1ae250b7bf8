"""A technician's own audit trail: paused by policy, reviewed, retired, reinstated.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "technician_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("technician_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_technician_events_technician_id", "technician_events", ["technician_id"])


def downgrade() -> None:
    op.drop_table("technician_events")
