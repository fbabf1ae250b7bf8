"""Time off: whole days a technician does not work, whatever their shifts say.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.add_column(sa.Column("time_off", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.drop_column("time_off")
