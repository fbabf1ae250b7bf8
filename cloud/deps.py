"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_db(request: Request) -> Iterator[Session]:
    """A session per request from the app's session factory."""
    with request.app.state.sessions() as session:
        yield session


def get_writer_db(request: Request) -> Iterator[Session]:
    """A session for a request that changes things (on SQLite it takes the write lock at
    once, so what it reads cannot change before it writes)."""
    with request.app.state.writer_sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
WriterSessionDep = Annotated[Session, Depends(get_writer_db)]
