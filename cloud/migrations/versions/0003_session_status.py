"""Presence from session-stamped status messages: the newest status and its session start
replace the bare "said offline at".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("status", sa.String(16)))
        batch.add_column(sa.Column("status_at", UTCDateTime()))
    op.execute(
        "UPDATE devices SET status = 'offline', status_at = said_offline_at "
        "WHERE said_offline_at IS NOT NULL AND (last_seen_at IS NULL "
        "OR said_offline_at >= last_seen_at)"
    )
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("said_offline_at")


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("said_offline_at", UTCDateTime()))
    op.execute("UPDATE devices SET said_offline_at = status_at WHERE status = 'offline'")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("status_at")
        batch.drop_column("status")
