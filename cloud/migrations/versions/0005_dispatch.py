"""Dispatch: technicians, offers with deadlines and their explanation, ticket assignment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "technicians",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("certifications", sa.JSON, nullable=False),
        sa.Column("home_lat", sa.Float, nullable=False),
        sa.Column("home_lon", sa.Float, nullable=False),
        sa.Column("radius_km", sa.Float, nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
        sa.Column("position_at", UTCDateTime()),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("rating_sum", sa.Float, nullable=False),
        sa.Column("rating_count", sa.Integer, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("paused_reason", sa.Text, nullable=False),
        sa.Column("webhook_url", sa.String(500)),
        sa.Column("last_job_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "offers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("technician_id", sa.String(64), sa.ForeignKey("technicians.id"), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("offered_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("eta_min", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
    )
    op.create_index("ix_offers_ticket_id", "offers", ["ticket_id"])
    op.create_index("ix_offers_pending_deadline", "offers", ["state", "deadline"])
    op.create_index("ix_offers_technician", "offers", ["technician_id", "offered_at"])
    op.create_index(
        "uq_offers_pending_ticket",
        "offers",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("technician_id", sa.String(64)))
        batch.add_column(sa.Column("dispatch_started_at", UTCDateTime()))
        batch.add_column(sa.Column("next_dispatch_at", UTCDateTime()))
        batch.add_column(sa.Column("on_site_at", UTCDateTime()))
        batch.add_column(sa.Column("rating", sa.Integer))
        batch.add_column(sa.Column("rated_by", sa.String(80)))
    op.create_index("ix_tickets_technician_id", "tickets", ["technician_id"])


def downgrade() -> None:
    op.drop_index("ix_tickets_technician_id", "tickets")
    with op.batch_alter_table("tickets") as batch:
        for column in ("rated_by", "rating", "on_site_at", "next_dispatch_at"):
            batch.drop_column(column)
        for column in ("dispatch_started_at", "technician_id"):
            batch.drop_column(column)
    op.drop_table("offers")
    op.drop_table("technicians")
