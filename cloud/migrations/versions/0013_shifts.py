"""Shifts: a technician's weekly working hours in their time zone.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.add_column(sa.Column("shifts", sa.JSON(), nullable=False, server_default="[]"))
        table.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.drop_column("timezone")
        table.drop_column("shifts")
