"""The RFC 3161 hot path as a raw ASGI layer in front of FastAPI.

``POST /pki/tsa`` with ``Content-Type: application/timestamp-query`` and a body of at most
MAX_TIMESTAMP_QUERY_BYTES is answered here: routing, dependency injection, the JSON middleware
and the worker-thread hop are skipped. A reply costs well under a millisecond of CPU, most of it
the HSM signature, so it is computed on the event loop when the PKCS#11 module lock is free at
once (SoftHSM2 must be called by one thread at a time anyway); when another thread holds it (a
key generation, a PDF signature), the reply is computed in a worker thread so that the loop never
waits for the HSM. Anything else (another method or media type, a larger body, no TSA
credential, an expired one) goes on to the FastAPI route unchanged, with the body replayed, so the
HTTP rules live in one place (routes/pki.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from govsign.api.middleware import LATENCY, REQUESTS
from govsign.api.routes.pki import MAX_TIMESTAMP_QUERY_BYTES, TIMESTAMP_QUERY_MEDIA_TYPE, TIMESTAMP_REPLY_MEDIA_TYPE
from govsign.keystore.pkcs11 import MODULE_LOCK
from govsign.metrics import TIMESTAMPS
from govsign.tsa.authority import TimeStampAuthority, TimeStampReply

TSA_PATH = "/pki/tsa"
#: How long the fast path keeps the runtime's TSA before asking it again (the runtime itself
#: reloads the credential from the database every 30 s, in a worker thread from here).
TSA_RECHECK_SECONDS = 1.0

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_QUERY_TYPE = TIMESTAMP_QUERY_MEDIA_TYPE.encode("ascii")
_REPLY_HEADERS = [(b"content-type", TIMESTAMP_REPLY_MEDIA_TYPE.encode("ascii")), (b"cache-control", b"no-store")]


class TSAFastPath:
    def __init__(self, app: Any, runtime_of: Callable[[], Any]) -> None:
        self.app = app
        self._runtime_of = runtime_of
        self._tsa: TimeStampAuthority | None = None
        self._tsa_runtime: Any = None
        self._tsa_checked = -1e9

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != TSA_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        runtime = self._runtime_of()
        declared = _query_length(scope)
        if runtime is None or declared is None or declared > MAX_TIMESTAMP_QUERY_BYTES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, more = await _read_body(receive)
        tsa = None if more or len(body) > MAX_TIMESTAMP_QUERY_BYTES else await self._authority(runtime)
        if tsa is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        if MODULE_LOCK.acquire(blocking=False):
            try:
                reply = tsa.answer(body)
            finally:
                MODULE_LOCK.release()
        else:
            reply = await asyncio.to_thread(tsa.answer, body)
        await _send_reply(send, reply)
        LATENCY.labels("POST", TSA_PATH).observe(time.perf_counter() - started)

    async def _authority(self, runtime: Any) -> TimeStampAuthority | None:
        """The runtime's TSA, asked again at most every TSA_RECHECK_SECONDS (in a worker thread:
        it may read the database); None when there is none or its certificate has expired."""
        now = time.monotonic()
        if self._tsa_runtime is not runtime or now - self._tsa_checked >= TSA_RECHECK_SECONDS:
            try:
                tsa = await asyncio.to_thread(runtime.time_stamp_authority)
            except Exception:  # noqa: BLE001 - the route answers (and logs) a systemFailure
                tsa = None
            self._tsa, self._tsa_runtime, self._tsa_checked = tsa, runtime, now
        tsa = self._tsa
        if tsa is None or runtime.clock.now() >= tsa.not_after:
            return None
        return tsa


def _query_length(scope: Scope) -> int | None:
    """The declared body length of a time-stamp query (0 when chunked); None when the
    request is not ``application/timestamp-query``."""
    is_query = False
    length = 0
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            is_query = value.split(b";")[0].strip().lower() == _QUERY_TYPE
        elif key == b"content-length":
            if not value.isdigit():
                return None
            length = int(value)
    return length if is_query else None


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Up to MAX_TIMESTAMP_QUERY_BYTES; ``more`` is True when the body is longer (rest unread)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_TIMESTAMP_QUERY_BYTES:
            return b"".join(chunks), message.get("more_body", False)
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


async def _send_reply(send: Send, reply: TimeStampReply) -> None:
    TIMESTAMPS.labels(reply.outcome).inc()
    REQUESTS.labels("POST", TSA_PATH, "200").inc()
    headers = [
        *_REPLY_HEADERS,
        (b"content-length", str(len(reply.der)).encode("ascii")),
        (b"x-request-id", uuid.uuid4().hex.encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": reply.der})
