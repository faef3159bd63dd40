"""The OCSP hot path as a raw ASGI layer in front of FastAPI.

A well-formed OCSP request (by GET, or by POST with the right media type and a body of at most
MAX_FAST_BODY bytes) is answered here; routing, dependency injection and the JSON middleware are
skipped, which makes it several times cheaper:

* one certificate without a nonce: from the pre-produced responses, with one database read;
* anything else (a nonce, several CertIDs, a miss, a bad request): by the same
  ``Runtime.answer_ocsp`` the route calls. With a local database (SQLite: reads cost
  microseconds) the answer is computed on the event loop when the PKCS#11 module lock is free at
  once (SoftHSM2 must be called by one thread at a time anyway; an ECDSA signature costs about
  0.1 ms); when another thread holds it (a key generation, a PDF signature), or the database is
  remote, in a worker thread, so that the loop never waits for the HSM or the network.

Other requests (another method or media type, a larger body, a GET path that is not base64) go
on to the FastAPI route unchanged, with the body replayed, so the HTTP rules (415, 413...) live in
one place (routes/pki.py).
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
from govsign.keystore.pkcs11 import MODULE_LOCK
from govsign.metrics import REGISTRY
from govsign.pki.ocsp import OCSPAnswer

FAST_ANSWERS = Counter(
    "govsign_ocsp_pre_produced_total",
    "OCSP requests answered from pre-produced responses.",
    ["method"],
    registry=REGISTRY,
)
LIVE_ANSWERS = Counter(
    "govsign_ocsp_live_total",
    "OCSP requests answered live by the fast path, by method and where they were computed.",
    ["method", "where"],
    registry=REGISTRY,
)


@functools.cache
def _child(metric: Any, *labels: str) -> Any:
    """A metric's child for these label values, looked up once (``labels()`` costs microseconds
    on every call, a noticeable share of a pre-produced answer)."""
    return metric.labels(*labels)


OCSP_PATH = "/pki/ocsp"
MAX_FAST_BODY = 16 * 1024

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.UTC), usegmt=True)


def ocsp_cache_headers(answer: OCSPAnswer, now: dt.datetime, max_age_cap: int, *, cacheable: bool) -> dict[str, str]:
    """RFC 5019 caching headers of a GET answer for one certificate; ``no-store`` otherwise."""
    if not (
        cacheable
        and answer.status == "successful"
        and answer.this_update is not None
        and answer.next_update is not None
        and not answer.nonce
    ):
        return {"Cache-Control": "no-store"}
    max_age = int(min((answer.next_update - now).total_seconds(), max_age_cap))
    if max_age <= 0:
        return {}
    return {
        "Cache-Control": f"max-age={max_age}, public, no-transform, must-revalidate",
        "Last-Modified": http_date(answer.this_update),
        "Expires": http_date(answer.next_update),
        "ETag": '"' + hashlib.sha1(answer.der).hexdigest() + '"',  # noqa: S324 - RFC 5019 suggests SHA-1 ETags
    }


class OCSPFastPath:
    def __init__(self, app: Any, runtime_of: Callable[[], Any]) -> None:
        self.app = app
        self._runtime_of = runtime_of

    @property
    def runtime(self) -> Any:
        return self._runtime_of()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(OCSP_PATH):
            await self.app(scope, receive, send)
            return
        runtime = self.runtime
        if runtime is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        if method == "GET" and path.startswith(OCSP_PATH + "/"):
            request_der = decode_ocsp_get(path[len(OCSP_PATH) + 1 :])
            if request_der is None:
                await self.app(scope, receive, send)
                return
            answer = await _pre_produced(runtime, request_der)
            if answer is not None:
                _child(FAST_ANSWERS, "GET").inc()
            else:
                answer = await _live(runtime, request_der, "GET")
            await _send_answer(send, answer, runtime, cacheable=True, method="GET")
            _child(LATENCY, "GET", OCSP_PATH + "/{encoded}").observe(time.perf_counter() - started)
            return
        if method == "POST" and path == OCSP_PATH and _is_ocsp_post(scope):
            body, more = await _read_body(receive)
            if more or len(body) > MAX_FAST_BODY:
                await self.app(scope, _replay(body, more, receive), send)
                return
            answer = await _pre_produced(runtime, body) if body else None
            if answer is not None:
                _child(FAST_ANSWERS, "POST").inc()
            else:
                answer = await _live(runtime, body, "POST")
            await _send_answer(send, answer, runtime, cacheable=False, method="POST")
            _child(LATENCY, "POST", OCSP_PATH).observe(time.perf_counter() - started)
            return
        await self.app(scope, receive, send)


def decode_ocsp_get(encoded: str) -> bytes | None:
    """The DER request in an OCSP GET path (URL-encoded base64), or None when it is not one."""
    text = unquote(encoded).strip()
    if not text or len(text) > MAX_FAST_BODY * 2:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_ocsp_post(scope: Scope) -> bool:
    for key, value in scope.get("headers", []):
        if key == b"content-type":
            return bool(value.split(b";")[0].strip().lower() == b"application/ocsp-request")
    return False


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Up to MAX_FAST_BODY bytes; ``more`` is True when the body is longer (left unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False
        if size > MAX_FAST_BODY:
            return b"".join(chunks), True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


async def _pre_produced(runtime: Any, request_der: bytes) -> OCSPAnswer | None:
    """A fresh pre-produced answer, or None (also when anything fails: the live path then
    answers, with tryLater or internalError when it must)."""
    try:
        if runtime.ocsp_fast_path_is_local:
            answer: OCSPAnswer | None = runtime.answer_ocsp_pre_produced(request_der)
        else:
            answer = await asyncio.to_thread(runtime.answer_ocsp_pre_produced, request_der)
    except Exception:  # noqa: BLE001 - answered live below, which logs and maps failures
        return None
    return answer


async def _live(runtime: Any, request_der: bytes, method: str) -> OCSPAnswer:
    """``Runtime.answer_ocsp`` (never raises): on the event loop when the database is local and
    the PKCS#11 module lock is free at once, else in a worker thread."""
    if runtime.ocsp_fast_path_is_local and MODULE_LOCK.acquire(blocking=False):
        try:
            answer: OCSPAnswer = runtime.answer_ocsp(request_der)
        finally:
            MODULE_LOCK.release()
        _child(LIVE_ANSWERS, method, "loop").inc()
        return answer
    answer = await asyncio.to_thread(runtime.answer_ocsp, request_der)
    _child(LIVE_ANSWERS, method, "thread").inc()
    return answer


async def _send_answer(send: Send, answer: OCSPAnswer, runtime: Any, *, cacheable: bool, method: str) -> None:
    _child(REQUESTS, method, OCSP_PATH if method == "POST" else OCSP_PATH + "/{encoded}", "200").inc()
    headers = [
        (b"content-type", b"application/ocsp-response"),
        (b"content-length", str(len(answer.der)).encode("ascii")),
        (b"x-request-id", os.urandom(16).hex().encode("ascii")),
    ]
    extra = ocsp_cache_headers(
        answer, runtime.clock.now(), runtime.settings.ocsp_http_max_age_seconds, cacheable=cacheable
    )
    headers += [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.der})
