"""The cloud API, built in one place: settings → database → routers → error handler."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from cloud import __version__
from cloud.config import CloudSettings
from cloud.db import make_engine, make_sessionmaker, migrate
from cloud.devices.api import router as devices_router
from cloud.errors import CloudError, Conflict, NotFound
from cloud.tickets.api import router as tickets_router

_STATUS = {NotFound: 404, Conflict: 409}


def create_app(settings: CloudSettings, sessions: sessionmaker[Session] | None = None) -> FastAPI:
    """The FastAPI app; migrates the database when it builds its own session factory."""
    if sessions is None:
        engine = make_engine(settings.database_url)
        migrate(engine)
        sessions = make_sessionmaker(engine)
    app = FastAPI(
        title="crowdfix",
        version=__version__,
        description="Help buttons and device faults become dispatched service tickets.",
    )
    app.state.sessions = sessions
    app.state.settings = settings
    app.include_router(tickets_router)
    app.include_router(devices_router)

    @app.exception_handler(CloudError)
    def _domain_error(_request: Request, exc: CloudError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.get("/api/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness and database reachability."""
        with sessions() as db_session:
            db_session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    return app
