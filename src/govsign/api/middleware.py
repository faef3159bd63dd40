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
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from govsign.api.problems import problem
from govsign.keystore.pkcs11 import ERROR_COUNTS, OPERATION_COUNTS

REQUEST_ID = contextvars.ContextVar[str | None]("request_id", default=None)
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

REGISTRY = CollectorRegistry(auto_describe=True)
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
CA_OPERATIONS = Counter(
    "govsign_ca_operations_total",
    "Certificate operations by action and outcome.",
    ["action", "outcome"],
    registry=REGISTRY,
)


class _HSMCollector(Collector):
    def collect(self) -> Any:
        operations = CounterMetricFamily("govsign_hsm_operations", "PKCS#11 operations by kind.", labels=["operation"])
        for name, count in sorted(OPERATION_COUNTS.items()):
            operations.add_metric([name], count)
        yield operations
        errors = CounterMetricFamily(
            "govsign_hsm_errors", "PKCS#11 operations that failed, by kind.", labels=["operation"]
        )
        for name, count in sorted(ERROR_COUNTS.items()):
            errors.add_metric([name], count)
        yield errors


REGISTRY.register(_HSMCollector())


class JSONLogFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestContextMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware overhead on the hot OCSP path): assigns the request id
    (X-Request-ID, kept from the client when well formed), enforces the JSON API body limit on
    Content-Length, and records metrics by route template and status."""

    def __init__(self, app: Any, *, max_request_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes

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
            if scope["path"].startswith("/api/") and declared.isdigit() and int(declared) > self.max_request_bytes:
                response = problem(
                    413, "too-large", "Request too large", f"Request bodies are at most {self.max_request_bytes} bytes."
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], template, str(status_holder["status"])).inc()
            LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


def install_middleware(app: FastAPI, *, max_request_bytes: int) -> None:
    app.add_middleware(RequestContextMiddleware, max_request_bytes=max_request_bytes)
