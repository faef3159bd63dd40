"""The FastAPI application: ``create_app(settings)``; the lifespan owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from govsign import __version__
from govsign.api.background import run_status_tasks
from govsign.api.problems import install_problem_handlers
from govsign.api.routes import health, pki
from govsign.config import Settings, load_settings
from govsign.runtime import Runtime


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(Runtime.open, settings)
        app.state.runtime = runtime
        tasks = asyncio.create_task(run_status_tasks(runtime)) if settings.background_tasks else None
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
    )
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(pki.router)
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for uvicorn workers: each process reads the environment and opens its own runtime."""
    return create_app(load_settings())
