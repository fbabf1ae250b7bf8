"""Ticket events: whom an assignment gave the ticket to, apart from who made it (an operator
assigning by hand is the actor; the technician is the assignee). A technician's history is
read by the assignee, no longer by the actor.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_events") as table:
        table.add_column(sa.Column("assigned_to", sa.String(64), nullable=True))
    # Until now the dispatcher's assignments (an operator's by hand too) named the technician
    # as their actor, and a technician's history was read by that. Others name no one: a
    # site's device tickets following their site ticket, or a bare transition by an operator.
    op.execute(
        "UPDATE ticket_events SET assigned_to = actor"
        " WHERE kind = 'transition' AND to_state = 'assigned'"
        " AND actor IN (SELECT id FROM technicians)"
    )
    op.drop_index("ix_ticket_events_state_actor", "ticket_events")
    op.create_index(
        "ix_ticket_events_state_assigned_to", "ticket_events", ["to_state", "assigned_to"]
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_events_state_assigned_to", "ticket_events")
    op.create_index("ix_ticket_events_state_actor", "ticket_events", ["to_state", "actor"])
    with op.batch_alter_table("ticket_events") as table:
        table.drop_column("assigned_to")
