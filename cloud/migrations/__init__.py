"""Alembic migrations of the cloud's SQL schema."""
