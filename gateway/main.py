"""The gateway: FastAPI app factory and the ``ctriage api`` command."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import click
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import health
from gateway.audit.views import router as audit_router
from gateway.auth.dependencies import KeyVerifier
from gateway.auth.keys import VerifiedKeyCache
from gateway.auth.service import ensure_bootstrap_admin_key
from gateway.auth.views import router as keys_router
from gateway.exports.views import router as exports_router
from gateway.inference.views import router as inference_router
from gateway.openapi import build_openapi
from gateway.patients.views import router as patients_router
from gateway.pacs import router as pacs_router
from gateway.problems import install_problem_handlers
from gateway.results.views import router as results_router
from gateway.scans.report_cache import ReportCache
from gateway.scans.views import router as scans_router
from shared.config import Settings, get_settings
from shared.db.session import session_factory
from shared.queue.app import configure as configure_queue
from shared.storage.base import ObjectStore

logger = logging.getLogger("gateway")
access_logger = logging.getLogger("gateway.access")

DESCRIPTION = """Chest CT triage: upload a CT series, analyze it, poll its report.

Every endpoint but `/healthz` and `/readyz` needs an API key, sent as `Authorization: Bearer <key>`.
Roles are cumulative: **ingest** (upload, analyze, predict) < **clinician** (read patients, scans and
reports; annotate scans) < **operator** (manage patients, delete scans, run status) < **admin** (keys,
audit). Errors are RFC 7807 `application/problem+json` with a stable `type` and, where it applies, a
stable `reason` code (e.g. the DICOM loader's `not_ct`).
"""

TAGS = [
    {"name": "patients", "description": "Patient records."},
    {"name": "scans", "description": "Uploaded CT series, their analysis and reports."},
    {"name": "inference", "description": "One-shot analysis of a study without a patient record."},
    {"name": "exports", "description": "Results (SEG, SR, key images) sent back to PACS: state, last error, re-send."},
    {"name": "keys", "description": "API keys (admin)."},
    {"name": "audit", "description": "Audit trail of writes (admin)."},
    {"name": "health", "description": "Liveness and readiness (no auth)."},
]


def make_store(settings: Settings) -> ObjectStore:
    """The object store these settings name."""
    from shared.storage.factory import store_from_settings

    return store_from_settings(settings)


class AccessLog:
    """Pure-ASGI access log: method, path, status, milliseconds; never query strings (they may carry UIDs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, (time.perf_counter() - started) * 1000
                )


def create_app(settings: Settings | None = None, *, store: ObjectStore | None = None) -> FastAPI:
    """The gateway app for ``settings`` (default: the environment's); ``store`` overrides the configured one."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with app.state.session_factory() as session:
            generated = ensure_bootstrap_admin_key(session=session, settings=settings)
        if generated:
            # Printed once, on stdout only (not the log): the key is a secret.
            click.echo(f"ctriage: generated admin API key (shown once, store it now): {generated}")
        yield

    app = FastAPI(
        title="ctriage gateway",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory(settings.resolved_database_url)
    app.state.store = store or make_store(settings)
    app.state.key_cache = VerifiedKeyCache()
    app.state.key_verifier = KeyVerifier(cache=app.state.key_cache, session_factory=app.state.session_factory)
    app.state.report_cache = ReportCache(ttl=settings.report_cache_seconds)
    configure_queue(settings)  # the broker these settings name, for enqueueing and /readyz
    install_problem_handlers(app)
    for router in (patients_router, scans_router, inference_router, keys_router, audit_router, health.router, pacs_router, results_router, exports_router):
        app.include_router(router)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(AccessLog)
    return app


@click.command("api")
@click.option("--host", default=None, help="Bind address (default CTRIAGE_API_HOST).")
@click.option("--port", type=int, default=None, help="Port (default CTRIAGE_API_PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="uvicorn worker processes.")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Upgrade the database schema first.")
def api_command(host: str | None, port: int | None, workers: int, migrate: bool) -> None:
    """Serve the REST API with uvicorn."""
    import uvicorn

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if migrate:
        from shared.db.migrate import upgrade_database

        upgrade_database(settings.resolved_database_url)
    # Before the workers fork, so a generated admin key is made (and printed) once, not per worker.
    with session_factory(settings.resolved_database_url)() as session:
        generated = ensure_bootstrap_admin_key(session=session, settings=settings)
    if generated:
        click.echo(f"ctriage: generated admin API key (shown once, store it now): {generated}")
    uvicorn.run(
        "gateway.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        access_log=False,  # gateway.access logs requests without query strings
        log_level=settings.log_level.lower(),
    )
