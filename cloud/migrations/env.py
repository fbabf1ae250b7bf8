"""Alembic environment: runs on the connection cloud.db.migrate() hands in."""

from alembic import context

import cloud.models  # noqa: F401  (registers every table on the metadata)
from cloud.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `crowdfix cloud migrate` (cloud.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
