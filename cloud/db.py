"""SQL storage: engine, sessions, UTC timestamps, migrations (SQLite default, PostgreSQL by URL)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from cloud.errors import ConfigError

_LOGGER = logging.getLogger(__name__)
_MIGRATION_LOCK_ID = 0x63726F77  # "crow": one migrator at a time on PostgreSQL

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- writing many rows past the ORM (the ingest's hot path) ---------------------------------


_ZERO = timedelta(0)


@functools.lru_cache(maxsize=8192)
def sqlite_time(at: datetime) -> str:
    """The form UTCDateTime stores on SQLite (naive UTC, microseconds). Cached: the readings
    of one message share a time, and a batch's buckets a handful of them."""
    if at.tzinfo is not None and at.utcoffset() == _ZERO:
        return at.isoformat(" ", "microseconds")[:26]  # already UTC: drop the "+00:00"
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def db_time(dialect: str) -> Callable[[datetime], datetime | str]:
    """How a timestamp goes to the driver for this dialect, skipping SQLAlchemy's processing."""
    return sqlite_time if dialect == "sqlite" else _same


def _same(at: datetime) -> datetime:
    return at


def write_rows(
    connection: Connection, *, sqlite: str, postgresql: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Many rows at once, values already in their stored form (db_time). PostgreSQL gets one
    statement taking each column as an array (`postgresql`, a %s per column): an executemany
    would be a statement per row on the server. SQLite, in-process, gets the driver's
    executemany of `sqlite` (a ? per value, ?N to use a column twice). Callers pass rows in
    key order, so concurrent batches lock shared rows in the same order."""
    if connection.dialect.name == "postgresql":
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        connection.exec_driver_sql(postgresql, columns)
    else:
        connection.exec_driver_sql(sqlite, list(rows))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL; SQLite files get WAL, a busy timeout and their folder created."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError as exc:
        raise ConfigError(f"CROWDFIX_DATABASE_URL {url!r} is not a database URL: {exc}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # pysqlite opens a transaction only before the first write, so reads ran outside it
        # and a read-modify-write could lose an update. The driver is put in autocommit and
        # the transaction begins at the first statement (IMMEDIATE for writers: see below).
        engine = create_engine(parsed, connect_args={"timeout": 30, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_sessionmaker(engine: Engine, *, writer: bool = False) -> sessionmaker[Session]:
    """Session factory; objects stay readable after commit. A writer's SQLite transactions
    take the write lock when they begin (BEGIN IMMEDIATE), so what they read cannot change
    under them before they write."""
    if writer and engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    return sessionmaker(engine, expire_on_commit=False)


def writer_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """A writer's session factory over the same engine."""
    bind = sessions.kw["bind"]
    engine = bind.engine if hasattr(bind, "engine") else bind
    return make_sessionmaker(engine, writer=True)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error. It is for changing things:
    on SQLite it takes the write lock when it begins, so a read-then-write inside it cannot
    fail half way because another writer committed in between."""
    with factory() as session, session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (Alembic); safe to call from several processes."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "cloud:migrations")
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    _LOGGER.info("database schema is up to date (%s)", engine.url.render_as_string())
