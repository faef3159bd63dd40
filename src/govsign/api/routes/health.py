"""Liveness and readiness."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from govsign.api.deps import get_services, get_settings
from govsign.api.problems import problem
from govsign.errors import GovsignError
from govsign.services.metrics import exposition

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", operation_id="getHealth", summary="Liveness: the process answers.")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database answers and the HSM token is there (checked, not cached).",
    responses={
        503: {"description": "The database or the HSM is not available.", "content": {"application/problem+json": {}}}
    },
)
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in get_services(request).health.checks.items():
        try:
            await asyncio.wait_for(asyncio.to_thread(check), READINESS_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except (GovsignError, TimeoutError):
            checks[name] = "unavailable"
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(name for name, value in checks.items() if value != "ok")
    return problem(503, "unavailable", "Service unavailable", f"Not ready: {failing} unavailable.", checks=checks)


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics (requests, latency, HSM operations and errors, CA operations).",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {
            "description": "GOVSIGN_METRICS_TOKEN is set and was not sent.",
            "content": {"application/problem+json": {}},
        },
    },
)
async def metrics(request: Request) -> Response:
    token = get_settings(request).metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            return problem(
                401, "unauthenticated", "Authentication required", "Send the metrics token as a bearer token."
            )
    return Response(await asyncio.to_thread(exposition), media_type=CONTENT_TYPE_LATEST)
