"""Offers: when each last changed (so a dispatcher re-reads only the technicians whose
answers changed), and the candidates an explanation leaves out, counted by why.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offers") as table:
        table.add_column(sa.Column("changed_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("left_out", sa.JSON(), nullable=False, server_default="{}"))
    op.execute("UPDATE offers SET changed_at = COALESCE(answered_at, offered_at)")
    op.create_index("ix_offers_changed_at", "offers", ["changed_at"])


def downgrade() -> None:
    op.drop_index("ix_offers_changed_at", "offers")
    with op.batch_alter_table("offers") as table:
        table.drop_column("left_out")
        table.drop_column("changed_at")
