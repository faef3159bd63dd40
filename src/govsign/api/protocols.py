"""The OCSP (RFC 6960, RFC 5019) and RFC 3161 protocol endpoints: the one implementation of their
HTTP answers, and the raw ASGI layer in front of FastAPI that serves the ordinary requests.

A well-formed request (OCSP by GET, or by POST as ``application/ocsp-request``; a time-stamp
query as ``application/timestamp-query``; a body of at most 16 KiB) is answered by the raw layer:
routing, dependency injection and the JSON middleware are skipped, which makes it several times
cheaper. The status service answers on the event loop when that costs no wait (a local
database, the HSM free at once: SoftHSM2 is called by one thread at a time anyway, and an ECDSA
signature is cheap next to a thread hand-off, see bench/README.md) and in a worker thread otherwise, so the loop never waits for the
HSM or the network.

Anything else (another method or media type, a larger body, a GET path that is not base64, a
service not opened yet) goes on to the FastAPI routes (``routes/pki.py``) with the body replayed:
they keep the HTTP rules (415, 413...) and answer with the same functions as this layer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from prometheus_client import Counter

from govsign.api.middleware import LATENCY, REQUESTS
from govsign.pki.ocsp import OCSPAnswer
from govsign.services.metrics import REGISTRY
from govsign.services.status import OCSPService, TimeStampService

OCSP_PATH = "/pki/ocsp"
TSA_PATH = "/pki/tsa"
OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"
TIMESTAMP_QUERY_MEDIA_TYPE = "application/timestamp-query"
TIMESTAMP_REPLY_MEDIA_TYPE = "application/timestamp-reply"
#: The largest OCSP request or time-stamp query accepted.
MAX_PROTOCOL_BODY = 16 * 1024

PRE_PRODUCED_ANSWERS = Counter(
    "govsign_ocsp_pre_produced_total",
    "OCSP requests answered from pre-produced responses.",
    ["method"],
    registry=REGISTRY,
)
LIVE_ANSWERS = Counter(
    "govsign_ocsp_live_total",
    "OCSP requests answered live, by method and where they were computed.",
    ["method", "where"],
    registry=REGISTRY,
)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = dict[str, str]


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """A metric's child for these label values, looked up once (``labels()`` costs microseconds
    on every call, a noticeable share of a pre-produced answer)."""
    return metric.labels(*labels)


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


# -- the protocols' answers ----------------------------------------------------------------------


def decode_ocsp_get(encoded: str) -> bytes | None:
    """The DER request in an OCSP GET path (URL-encoded base64), or None when it is not one."""
    text = unquote(encoded).strip()
    if not text or len(text) > MAX_PROTOCOL_BODY * 2:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


async def answer_ocsp(ocsp: OCSPService, request_der: bytes, method: str) -> OCSPAnswer:
    """The OCSP answer: on the event loop when that costs no wait, else in a worker thread."""
    answer = ocsp.answer_now(request_der)
    where = "loop"
    if answer is None:
        answer = await asyncio.to_thread(ocsp.answer, request_der)
        where = "thread"
    if answer.pre_produced:
        _child(PRE_PRODUCED_ANSWERS, method).inc()
    else:
        _child(LIVE_ANSWERS, method, where).inc()
    return answer


def ocsp_headers(answer: OCSPAnswer, now: dt.datetime, max_age_cap: int, *, cacheable: bool) -> Headers:
    """RFC 5019 caching headers of a GET answer for one certificate; ``no-store`` otherwise."""
    headers = {"Content-Type": OCSP_RESPONSE_MEDIA_TYPE}
    if not (
        cacheable
        and answer.status == "successful"
        and answer.this_update is not None
        and answer.next_update is not None
        and not answer.nonce
    ):
        headers["Cache-Control"] = "no-store"
        return headers
    max_age = int(min((answer.next_update - now).total_seconds(), max_age_cap))
    if max_age <= 0:
        return headers
    headers.update(
        {
            "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
            "Last-Modified": http_date(answer.this_update),
            "Expires": http_date(answer.next_update),
            "ETag": '"' + hashlib.sha1(answer.der).hexdigest() + '"',  # noqa: S324 - RFC 5019 suggests SHA-1 ETags
        }
    )
    return headers


async def answer_timestamp(timestamps: TimeStampService, query_der: bytes) -> bytes:
    """The TimeStampResp: on the event loop when that costs no wait, else in a worker thread."""
    reply = timestamps.answer_now(query_der)
    if reply is None:
        reply = await asyncio.to_thread(timestamps.answer, query_der)
    return reply


TIMESTAMP_HEADERS: Headers = {"Content-Type": TIMESTAMP_REPLY_MEDIA_TYPE, "Cache-Control": "no-store"}


# -- the raw ASGI layer ----------------------------------------------------------------------------


class ProtocolFastPath:
    """Serves ordinary OCSP and time-stamp requests before any other layer."""

    def __init__(self, app: Any, services_of: Callable[[], Any], settings_of: Callable[[], Any]) -> None:
        self.app = app
        self._services_of = services_of
        self._settings_of = settings_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        services = self._services_of() if path.startswith(("/pki/ocsp", TSA_PATH)) else None
        if services is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        if method == "GET" and path.startswith(OCSP_PATH + "/"):
            request_der = decode_ocsp_get(path[len(OCSP_PATH) + 1 :])
            if request_der is None:
                await self.app(scope, receive, send)
                return
            answer = await answer_ocsp(services.ocsp, request_der, "GET")
            await self._send_ocsp(send, services, answer, "GET", OCSP_PATH + "/{encoded}", cacheable=True)
            _child(LATENCY, "GET", OCSP_PATH + "/{encoded}").observe(time.perf_counter() - started)
            return
        if method != "POST" or path not in (OCSP_PATH, TSA_PATH):
            await self.app(scope, receive, send)
            return
        media_type = OCSP_REQUEST_MEDIA_TYPE if path == OCSP_PATH else TIMESTAMP_QUERY_MEDIA_TYPE
        declared = _declared_length(scope, media_type.encode("ascii"))
        if declared is None or declared > MAX_PROTOCOL_BODY:
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if more or len(body) > MAX_PROTOCOL_BODY:
            await self.app(scope, _replay(body, more, receive), send)
            return
        if path == OCSP_PATH:
            answer = await answer_ocsp(services.ocsp, body, "POST")
            await self._send_ocsp(send, services, answer, "POST", OCSP_PATH, cacheable=False)
        else:
            reply = await answer_timestamp(services.timestamps, body)
            await _send(send, "POST", TSA_PATH, TIMESTAMP_HEADERS, reply)
        _child(LATENCY, "POST", path).observe(time.perf_counter() - started)

    async def _send_ocsp(
        self, send: Send, services: Any, answer: OCSPAnswer, method: str, route: str, *, cacheable: bool
    ) -> None:
        max_age = self._settings_of().ocsp_http_max_age_seconds
        headers = ocsp_headers(answer, services.clock.now(), max_age, cacheable=cacheable)
        await _send(send, method, route, headers, answer.der)


def _declared_length(scope: Scope, media_type: bytes) -> int | None:
    """The declared body length of a request of ``media_type`` (0 when chunked); None when the
    request is of another media type."""
    matches = False
    length = 0
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            matches = value.split(b";")[0].strip().lower() == media_type
        elif key == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
    return length if matches else None


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Up to MAX_PROTOCOL_BODY bytes; ``more`` is True when the body is longer (rest unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_PROTOCOL_BODY:
            return b"".join(chunks), bool(message.get("more_body", False))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


async def _send(send: Send, method: str, route: str, headers: Headers, body: bytes) -> None:
    _child(REQUESTS, method, route, "200").inc()
    raw = [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in headers.items()]
    raw += [
        (b"content-length", str(len(body)).encode("ascii")),
        (b"x-request-id", os.urandom(16).hex().encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": raw})
    await send({"type": "http.response.body", "body": body})
