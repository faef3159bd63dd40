"""RFC 9457 problem documents: the one place where error kinds become HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from govsign.errors import ErrorKind, GovsignError, RateLimitedError

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://govsign.example/problems/"

STATUS_BY_KIND = {
    ErrorKind.INVALID_INPUT: 422,
    ErrorKind.POLICY_VIOLATION: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.CONFIGURATION: 503,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.RATE_LIMITED: 429,
}
TITLE_BY_KIND = {
    ErrorKind.INVALID_INPUT: "Invalid input",
    ErrorKind.POLICY_VIOLATION: "Refused by policy",
    ErrorKind.NOT_FOUND: "Not found",
    ErrorKind.CONFLICT: "Conflict with the current state",
    ErrorKind.UNAVAILABLE: "Service unavailable",
    ErrorKind.CONFIGURATION: "Service unavailable",
    ErrorKind.INTERNAL: "Internal error",
    ErrorKind.UNAUTHENTICATED: "Authentication required",
    ErrorKind.FORBIDDEN: "Forbidden",
    ErrorKind.RATE_LIMITED: "Too many requests",
}


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    all_headers = {"Retry-After": "5"} if status == 503 else {}
    if status == 401:
        all_headers["WWW-Authenticate"] = 'Bearer realm="govsign"'
    all_headers.update(headers or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=all_headers or None)


#: The CSC API's error codes and HTTP statuses, by error kind (CSC API v2 section 10).
CSC_ERROR_BY_KIND = {
    ErrorKind.INVALID_INPUT: (400, "invalid_request"),
    ErrorKind.POLICY_VIOLATION: (400, "invalid_request"),
    ErrorKind.NOT_FOUND: (400, "invalid_request"),
    ErrorKind.CONFLICT: (400, "invalid_request"),
    ErrorKind.UNAUTHENTICATED: (401, "invalid_token"),
    ErrorKind.FORBIDDEN: (403, "access_denied"),
    ErrorKind.RATE_LIMITED: (429, "access_denied"),
    ErrorKind.UNAVAILABLE: (503, "temporarily_unavailable"),
    ErrorKind.CONFIGURATION: (503, "temporarily_unavailable"),
    ErrorKind.INTERNAL: (500, "server_error"),
}


def is_csc(request: Request) -> bool:
    """The request is one of the CSC API's, whose errors are CSC error objects."""
    return request.url.path.startswith("/csc/")


def csc_error(status: int, error: str, description: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """A CSC API error: ``{"error": ..., "error_description": ...}``."""
    all_headers = {"Cache-Control": "no-store", **(headers or {})}
    if status == 401:
        all_headers["WWW-Authenticate"] = 'Bearer realm="govsign-csc", error="invalid_token"'
    if status == 503:
        all_headers.setdefault("Retry-After", "5")
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=all_headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(GovsignError)
    async def _govsign_error(request: Request, exc: GovsignError) -> JSONResponse:
        if is_csc(request):
            status, code = CSC_ERROR_BY_KIND.get(exc.kind, (500, "server_error"))
            if exc.kind in (ErrorKind.INTERNAL, ErrorKind.CONFIGURATION):
                log.error("request failed: %s", exc.message)
                return csc_error(status, code, "The request could not be completed.")
            retry = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
            return csc_error(status, code, exc.message, headers=retry)
        status = STATUS_BY_KIND.get(exc.kind, 500)
        if exc.kind in (ErrorKind.INTERNAL, ErrorKind.CONFIGURATION):
            log.error("request failed: %s", exc.message)
            return problem(status, exc.kind.value, TITLE_BY_KIND[exc.kind], "The request could not be completed.")
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
        return problem(status, exc.kind.value, TITLE_BY_KIND[exc.kind], exc.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if is_csc(request):
            first = exc.errors()[0] if exc.errors() else {}
            where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
            name = where[0] if where else "body"
            return csc_error(400, "invalid_request", f"Missing or invalid parameter {name}: {first.get('msg', '')}.")
        errors = [
            {"location": ".".join(str(part) for part in error.get("loc", ())), "message": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        return problem(
            422, "invalid-input", "Invalid input", "The request does not match the API's schema.", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}.get(
            exc.status_code, "http-error"
        )
        if is_csc(request):
            code = "invalid_request" if exc.status_code < 500 else "server_error"
            return csc_error(
                exc.status_code, code, str(exc.detail) if exc.detail else "HTTP error", headers=dict(exc.headers or {})
            )
        return problem(exc.status_code, kind, str(exc.detail) if exc.detail else "HTTP error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        if is_csc(request):
            return csc_error(500, "server_error", "The request could not be completed.")
        return problem(500, "internal", "Internal error", "The request could not be completed.")
