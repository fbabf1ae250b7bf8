"""Ticket engine: sites, device registry and presence, faults, taxonomy-driven tickets with
an audit trail, telemetry tables, quarantine and the outbound relay.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from cloud.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = "state NOT IN ('resolved', 'closed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("timezone", sa.String(64)),
        sa.Column("criticality", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    _devices()
    _tickets()
    with op.batch_alter_table("ingested_messages") as batch:
        batch.add_column(sa.Column("action", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("problem_key", sa.String(80), nullable=False, server_default=""))
        batch.create_index(
            "ix_ingested_messages_device_problem", ["device_id", "problem_key", "seq"]
        )
    _new_tables()


def _devices() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("site_id", sa.String(64)))
        batch.add_column(sa.Column("name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("latitude", sa.Float))
        batch.add_column(sa.Column("longitude", sa.Float))
        batch.add_column(sa.Column("criticality", sa.String(16)))
        batch.add_column(
            sa.Column("maintenance", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("presence_since", UTCDateTime()))
        batch.add_column(sa.Column("said_offline_at", UTCDateTime()))
        batch.add_column(sa.Column("heartbeat_interval_s", sa.Float))
        batch.add_column(sa.Column("config_hash", sa.String(64)))
        batch.add_column(sa.Column("backlog", sa.Integer))
        batch.add_column(sa.Column("oldest_pending_s", sa.Float))
        batch.add_column(sa.Column("telemetry_dropped", sa.Integer))
        batch.create_foreign_key("fk_devices_site_id_sites", "sites", ["site_id"], ["id"])
        batch.create_index("ix_devices_site_id", ["site_id"])


def _tickets() -> None:
    epoch = sa.text("'1970-01-01 00:00:00'")
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("device_id", existing_type=sa.String(64), nullable=True)
        batch.alter_column("source_message_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("site_id", sa.String(64)))
        batch.add_column(
            sa.Column("is_site", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("parent_id", sa.Integer))
        batch.add_column(sa.Column("problem_key", sa.String(80), nullable=False, server_default=""))
        batch.add_column(sa.Column("snapshot", sa.JSON, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("skills", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("requested", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("active_faults", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("flapping", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("last_occurrence_at", UTCDateTime(), nullable=False, server_default=epoch)
        )
        batch.add_column(sa.Column("resolution", sa.String(32), nullable=False, server_default=""))
        for column in ("sla_accept_by", "sla_arrive_by", "sla_resolve_by"):
            batch.add_column(sa.Column(column, UTCDateTime(), nullable=False, server_default=epoch))
        for column in ("dispatched_at", "resolved_at", "closed_at"):
            batch.add_column(sa.Column(column, UTCDateTime()))
        batch.create_foreign_key("fk_tickets_site_id_sites", "sites", ["site_id"], ["id"])
        batch.create_foreign_key("fk_tickets_parent_id_tickets", "tickets", ["parent_id"], ["id"])
        batch.create_index("ix_tickets_parent_id", ["parent_id"])
        batch.create_index(
            "ix_tickets_site_problem_opened", ["site_id", "problem_key", "opened_at"]
        )
    op.execute("UPDATE tickets SET problem_key = category, last_occurrence_at = opened_at")
    _open_indexes()


def _open_indexes() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    site_true, site_false = ("is_site = 1", "is_site = 0") if sqlite else ("is_site", "NOT is_site")
    op.create_index(
        "uq_tickets_open_device_problem",
        "tickets",
        ["device_id", "problem_key"],
        unique=True,
        sqlite_where=sa.text(f"{OPEN} AND {site_false}"),
        postgresql_where=sa.text(f"{OPEN} AND {site_false}"),
    )
    op.create_index(
        "uq_tickets_open_site_problem",
        "tickets",
        ["site_id", "problem_key"],
        unique=True,
        sqlite_where=sa.text(f"{OPEN} AND {site_true}"),
        postgresql_where=sa.text(f"{OPEN} AND {site_true}"),
    )


def _new_tables() -> None:
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(24)),
        sa.Column("to_state", sa.String(24)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])
    op.create_table(
        "device_faults",
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("readings", sa.JSON, nullable=False),
        sa.Column("raised_at", UTCDateTime()),
        sa.Column("cleared_at", UTCDateTime()),
        sa.Column("raises", sa.Integer, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fault_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_fault_transitions_device_code_at", "fault_transitions", ["device_id", "code", "at"]
    )
    op.create_table(
        "telemetry_latest",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "telemetry_recent",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("bucket", UTCDateTime(), primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("device_id", sa.String(64)),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_quarantine_received_at", "quarantine", ["received_at"])
    op.create_index("ix_quarantine_device_id", "quarantine", ["device_id"])
    op.create_index("ix_quarantine_reason", "quarantine", ["reason"])
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(300), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("retain", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
    )
    op.create_index("ix_outbound_messages_unsent", "outbound_messages", ["sent_at", "id"])


def downgrade() -> None:
    for table in (
        "outbound_messages",
        "quarantine",
        "telemetry_recent",
        "telemetry_latest",
        "fault_transitions",
        "device_faults",
        "ticket_events",
    ):
        op.drop_table(table)
    op.drop_index("uq_tickets_open_site_problem", "tickets")
    op.drop_index("uq_tickets_open_device_problem", "tickets")
    raise NotImplementedError("downgrade below 0002 is not supported: restore a backup")
