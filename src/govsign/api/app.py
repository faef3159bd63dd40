"""The FastAPI application: ``create_app(settings)``; the lifespan owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from govsign import __version__
from govsign.api.background import run_status_tasks
from govsign.api.middleware import configure_json_logging, install_middleware
from govsign.api.ocsp_fast import OCSPFastPath
from govsign.api.openapi_extras import install_openapi_extras
from govsign.api.problems import install_problem_handlers
from govsign.api.routes import health, pki, ra, signing
from govsign.api.tsa_fast import TSAFastPath
from govsign.config import Settings, load_settings
from govsign.platform import Platform
from govsign.runtime import Runtime


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime.open, settings)
        app.state.runtime = runtime
        app.state.platform = await asyncio.to_thread(Platform, runtime)
        tasks = (
            asyncio.create_task(run_status_tasks(runtime, app.state.platform)) if settings.background_tasks else None
        )
        try:
            yield
        finally:
            if tasks is not None:
                tasks.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tasks
            await asyncio.to_thread(runtime.close)

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
    install_problem_handlers(app)
    install_middleware(
        app, max_request_bytes=settings.max_request_bytes, max_document_bytes=settings.max_document_bytes
    )
    app.include_router(health.router)
    app.include_router(pki.router)
    app.include_router(ra.router)
    app.include_router(signing.router)
    install_openapi_extras(app)
    # Outermost: the OCSP hot path answers pre-produced responses before any other layer.
    app.add_middleware(OCSPFastPath, runtime_of=lambda: getattr(app.state, "runtime", None))
    # Also outermost: RFC 3161 time-stamp queries are answered before any other layer.
    app.add_middleware(TSAFastPath, runtime_of=lambda: getattr(app.state, "runtime", None))
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: each process reads the environment, logs JSON and opens its
    own runtime (one HSM login per process)."""
    configure_json_logging(os.environ.get("GOVSIGN_LOG_LEVEL", "INFO").upper())
    return create_app(load_settings())
