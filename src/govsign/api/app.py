"""The FastAPI application: ``create_app(settings)``; the lifespan opens and closes the services."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from govsign import __version__
from govsign.api.background import maintenance_jobs, run_jobs
from govsign.api.hsm_watch import run_hsm_watch
from govsign.api.middleware import configure_json_logging, install_middleware
from govsign.api.openapi_extras import install_openapi_extras
from govsign.api.problems import install_problem_handlers
from govsign.api.protocols import ProtocolFastPath
from govsign.api.routes import (
    agencies,
    approvals,
    audit,
    cas,
    certificates,
    credentials,
    crls,
    csc,
    health,
    pki,
    public,
    signatures,
    verifications,
)
from govsign.config import Settings, load_settings
from govsign.services.bootstrap import Services
from govsign.services.metrics import process_stopped

log = logging.getLogger(__name__)

#: How long shutdown waits for a background job's run to finish.
JOBS_STOP_SECONDS = 30.0

log = logging.getLogger(__name__)


def reconcile_at_start(services: Services, settings: Settings) -> None:
    """Destroy the HSM keys that issuances interrupted by a crash left (``govsign hsm reconcile``);
    a failure is logged and never stops the service."""
    try:
        services.hsm.reconcile(grace=dt.timedelta(seconds=settings.pending_key_grace_seconds), only_pending=True)
    except Exception:
        log.exception("could not reconcile the HSM keys at start-up")


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await asyncio.to_thread(Services.open, settings)
        try:
            await asyncio.to_thread(services.server_key)  # a bad GOVSIGN_API_SECRET_KEY_FILE stops start-up
            await asyncio.to_thread(services.build_document_services)  # the API serves them: build them now
            await asyncio.to_thread(reconcile_at_start, services, settings)
        except BaseException:
            await asyncio.to_thread(services.close)
            raise
        app.state.services = services
        stop_jobs = asyncio.Event()
        jobs = (
            asyncio.create_task(run_jobs(maintenance_jobs(services), services.leases, stop_jobs))
            if settings.background_tasks
            else None
        )
        # one HSM watch per process (each has its own session), never under the deployment's
        # lease: stopped, not cancelled, so its tick ends before the services close
        watch_stop = asyncio.Event()
        watch = asyncio.create_task(run_hsm_watch(services.outage, watch_stop)) if settings.background_tasks else None
        try:
            yield
        finally:
            watch_stop.set()
            if jobs is not None:
                # stop, not cancel: a job's HSM or database call finishes before the services
                # close, and the leases are given back
                stop_jobs.set()
                try:
                    await asyncio.wait_for(jobs, JOBS_STOP_SECONDS)
                except TimeoutError:
                    log.warning("the background jobs did not stop within %s s; stopping anyway", JOBS_STOP_SECONDS)
            if watch is not None:
                await watch
            await asyncio.to_thread(services.close)
            process_stopped()

    app = FastAPI(
        title="govsign",
        version=__version__,
        summary="Certificate authority and signing service for Vietnamese government agencies.",
        lifespan=lifespan,
        # The API description is openapi/openapi.json in the repository; nothing but /pki/*,
        # /healthz, /readyz and /metrics answers without authentication.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_middleware(
        app,
        max_request_bytes=settings.max_request_bytes,
        max_document_bytes=settings.max_document_bytes,
        public_upload_bytes=settings.public_max_upload_bytes,
    )
    routers = (health, pki, certificates, approvals, crls, audit, cas, agencies, signatures, credentials, verifications)
    for module in routers:
        app.include_router(module.router)
    app.include_router(csc.router_v2)
    app.include_router(csc.router_v1)
    app.include_router(public.router)
    install_openapi_extras(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        """The OpenAPI document of this running service (the same as openapi/openapi.json)."""
        return JSONResponse(app.openapi())

    # Outermost: ordinary OCSP and time-stamp requests are answered before any other layer.
    app.add_middleware(
        ProtocolFastPath,
        services_of=lambda: getattr(app.state, "services", None),
        settings_of=lambda: settings,
    )
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: each process reads the environment, logs JSON and opens its
    own services (one HSM login per process)."""
    configure_json_logging(os.environ.get("GOVSIGN_LOG_LEVEL", "INFO").upper())
    return create_app(load_settings())
