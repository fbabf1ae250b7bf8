"""The cloud API, built in one place: settings → database → routers → error handler."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud import __version__
from cloud.alerts.api import router as alerts_router
from cloud.auth.api import router as auth_router
from cloud.clock import utc_now
from cloud.config import CloudSettings
from cloud.dashboard.api import router as dashboard_router
from cloud.db import make_engine, make_sessionmaker, migrate, writer_sessions
from cloud.devices.api import fleet_router
from cloud.devices.api import router as devices_router
from cloud.dispatch.api import router as dispatch_router
from cloud.dispatch.service import Board, board
from cloud.errors import (
    CloudError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from cloud.metrics import metrics
from cloud.outbound import service as outbound
from cloud.quarantine.api import router as quarantine_router
from cloud.sites.api import router as sites_router
from cloud.tickets.api import router as tickets_router

_LOGGER = logging.getLogger(__name__)
_STATUS = {
    NotFound: 404,
    Conflict: 409,
    Invalid: 422,
    Unauthorized: 401,
    Forbidden: 403,
    TooManyAttempts: 429,
}


def show(situation: Board, backlog: dict[str, int]) -> None:
    """Put the dispatch board and the outbox's backlog into the gauges."""
    figures = metrics()
    for lane, count in backlog.items():
        figures.outbox.labels(lane).set(count)
    for state, count in situation.waiting.items():
        figures.waiting.labels(state).set(count)
    figures.pending_offers.set(situation.pending_offers)
    figures.past_target.set(situation.past_target)
    figures.at_risk.set(situation.at_risk)
    for state, count in situation.technicians.items():
        figures.technicians.labels(state).set(count)
    for state, count in situation.certifications.items():
        figures.certifications.labels(state).set(count)


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
    app.state.writer_sessions = writer_sessions(sessions)
    app.state.settings = settings
    app.state.rules = settings.dispatch_policy()
    app.state.alert_channel = settings.alert_channel()
    app.state.taxonomy = settings.taxonomy()
    routers = (auth_router, tickets_router, dispatch_router, devices_router, sites_router)
    for router in (*routers, fleet_router, quarantine_router, alerts_router, dashboard_router):
        app.include_router(router)
    metrics()  # registered, so /metrics lists every series from the start

    @app.exception_handler(CloudError)
    def _domain_error(_request: Request, exc: CloudError) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        headers = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after_s)
        return JSONResponse(status_code=status, content={"detail": str(exc)}, headers=headers)

    @app.get("/api/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/ready", tags=["health"], responses={503: {"description": "not ready"}})
    def ready() -> JSONResponse:
        """Readiness: the database answers (load balancers send traffic only then)."""
        try:
            with sessions() as db_session:
                db_session.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            return JSONResponse(
                status_code=503,
                content={"status": "unavailable", "detail": str(exc.__cause__ or exc)},
            )
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus metrics of this process, and the dispatch board from the database."""
        try:
            with sessions() as db:
                situation = board(db_session=db, now=utc_now(), rules=app.state.rules)
                backlog = outbound.backlog(db_session=db)
        except SQLAlchemyError as exc:  # the process's own figures still go out
            _LOGGER.warning("dispatch figures unavailable for /metrics: %s", exc)
        else:
            show(situation, backlog)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
