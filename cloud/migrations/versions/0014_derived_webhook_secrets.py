"""Derived webhook secrets: the database keeps a version, the secret is derived from the key.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.add_column(
            sa.Column("webhook_secret_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("technicians") as table:
        table.drop_column("webhook_secret_version")
