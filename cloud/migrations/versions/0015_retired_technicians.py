"""Retired technicians: no more offers, their accounts closed, their history kept.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.add_column(sa.Column("retired_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("retired_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.drop_column("retired_reason")
        table.drop_column("retired_at")
