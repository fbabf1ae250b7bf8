"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(db_session: Session, table: Table) -> Any:
    """The dialect's INSERT that knows ON CONFLICT."""
    dialect = db_session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def upsert_newer(
    db_session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    newer: str,
) -> None:
    """Insert rows, or update existing ones when the row's `newer` column is later."""
    if not rows:
        return
    stmt = insert_for(db_session, table)
    updates = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_=updates, where=table.c[newer] < stmt.excluded[newer]
    )
    db_session.execute(stmt, list(rows))


def insert_ignore(
    db_session: Session, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows; rows whose key exists already are left as they are."""
    if rows:
        stmt = insert_for(db_session, table).on_conflict_do_nothing(index_elements=list(keys))
        db_session.execute(stmt, list(rows))
