"""Webhook secrets: every POST to a technician's webhook is signed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("technicians", sa.Column("webhook_secret", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("technicians", "webhook_secret")
