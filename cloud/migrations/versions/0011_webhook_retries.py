"""Webhook retries: each POST is tried again with a backoff and given up once out of date.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as table:
        table.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("failed_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("last_error", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages") as table:
        for column in ("last_error", "failed_at", "next_attempt_at", "attempts", "expires_at"):
            table.drop_column(column)
