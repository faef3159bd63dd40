"""Request ids, structured JSON logs, Prometheus metrics and body size limits."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from govsign.api.problems import problem
from govsign.services.metrics import REGISTRY

ACCESS_LOG = logging.getLogger("govsign.access")
REQUEST_ID = contextvars.ContextVar[str | None]("request_id", default=None)
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

REQUESTS = Counter(
    "govsign_http_requests_total",
    "HTTP requests by route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "govsign_http_request_duration_seconds",
    "HTTP request latency by route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)


class JSONLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead on the hot OCSP path): assigns the request id
    (X-Request-ID, kept from the client when well formed), enforces the JSON API body limit on
    Content-Length, and records metrics by route template and status."""

    def __init__(
        self,
        app: Any,
        *,
        max_request_bytes: int,
        max_document_bytes: int | None = None,
        public_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_document_bytes = max_document_bytes or max_request_bytes
        # the public page's uploads (a form: the file and small fields), refused as an HTML page
        self.public_upload_bytes = (public_upload_bytes or max_request_bytes) + 64 * 1024

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _INCOMING_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        try:
            declared = headers.get("content-length", "")
            is_api = scope["path"].startswith("/api/")
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            document_types = DOCUMENT_ROUTES.get(scope["path"]) if scope["method"] == "POST" else None
            limit = self.max_document_bytes if document_types is not None else self.max_request_bytes
            if is_api and declared.isdigit() and int(declared) > limit:
                await _too_large(limit)(scope, receive, send_with_id)
            elif (
                is_api
                and document_types is None  # document routes check their media type after authentication
                and scope["method"] in ("POST", "PUT", "PATCH")
                and (declared not in ("", "0") or "transfer-encoding" in headers)
                and not (content_type == "application/json" or content_type.endswith("+json"))
            ):
                await problem(
                    415, "unsupported-media-type", "Unsupported media type", "Request bodies must be application/json."
                )(scope, receive, send_with_id)
            elif scope["method"] == "POST" and (scope["path"] == "/verify" or scope["path"].startswith("/v/")):
                await self.app(scope, _limited(receive, self.public_upload_bytes), send_with_id)
            else:
                await self.app(scope, _limited(receive, limit) if is_api else receive, send_with_id)
        except _BodyTooLargeError:
            await _too_large(limit)(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], template, str(status_holder["status"])).inc()
            LATENCY.labels(scope["method"], template).observe(elapsed)
            if ACCESS_LOG.isEnabledFor(logging.INFO):
                client = scope.get("client")
                ACCESS_LOG.info(
                    "%s %s %s %.1fms from %s",
                    scope["method"],
                    template,
                    status_holder["status"],
                    elapsed * 1000,
                    client[0] if client else "-",
                    extra={"request_id": request_id},
                )


#: Endpoints that take a document as the raw request body (streamed to disk, up to
#: GOVSIGN_MAX_DOCUMENT_BYTES), with the media types each accepts.
DOCUMENT_ROUTES: dict[str, frozenset[str]] = {
    "/api/v1/signatures/pdf": frozenset({"application/pdf"}),
    "/api/v1/signatures/cms": frozenset({"application/octet-stream"}),
    "/api/v1/signatures/smime": frozenset({"message/rfc822"}),
    "/api/v1/verifications": frozenset(
        {"application/pdf", "application/pkcs7-mime", "application/cms", "message/rfc822", "multipart/form-data"}
    ),
}


class _BodyTooLargeError(StarletteHTTPException):
    """Raised while the body is read; an HTTPException so FastAPI passes it on as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are at most {limit} bytes.")


def _too_large(limit: int) -> Any:
    return problem(413, "too-large", "Request too large", f"Request bodies are at most {limit} bytes.")


def _limited(receive: Any, limit: int) -> Any:
    """Count the body as it is read (also when it is chunked, without a Content-Length)."""
    received = 0

    async def limited() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLargeError(limit)
        return message

    return limited


def install_middleware(
    app: FastAPI,
    *,
    max_request_bytes: int,
    max_document_bytes: int | None = None,
    public_upload_bytes: int | None = None,
) -> None:
    app.add_middleware(
        RequestContextMiddleware,
        max_request_bytes=max_request_bytes,
        max_document_bytes=max_document_bytes,
        public_upload_bytes=public_upload_bytes,
    )


def configure_json_logging(level: str) -> None:
    """Structured logs on stderr: one JSON object per line, with the request id."""
    handler = logging.StreamHandler()
    handler.setFormatter(JSONLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
