"""Technicians: a revision that moves on with every change of the row, so a dispatcher keeps
their profiles from round to round and reads again only those that changed.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.drop_column("revision")
