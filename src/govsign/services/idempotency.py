"""At most once per (client, Idempotency-Key): a creating request that is retried gets the answer
of its first run, one still in flight is waited for, and the same key with another request is
refused.

The answer is stored in the transaction of the operation itself, so it commits with the change.
What is stored is the front end's encoding of the result (:class:`StoredAnswer`): this service
keeps it without reading it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from govsign.clock import Clock
from govsign.errors import ConflictError, InvalidInputError
from govsign.storage.engine import Database
from govsign.storage.ports import SQLPorts

R = TypeVar("R")

#: A claim not completed after this long belongs to a request that died; another may take it.
ABANDONED_AFTER = dt.timedelta(seconds=120)


@dataclass(frozen=True, kw_only=True)
class StoredAnswer:
    """The first answer to a request, as the front end encoded it."""

    code: int
    """The front end's code of the answer (for the HTTP API: its status)."""
    body: dict[str, Any]
    """The answer's JSON body."""


class Claim(Generic[R]):
    """A claimed key: stores the answer in the operation's transaction (a ``uow.Completion``)."""

    def __init__(self, client_id: str, key: str, encode: Callable[[R], StoredAnswer]) -> None:
        self._client_id = client_id
        self._key = key
        self._encode = encode
        self.answer: StoredAnswer | None = None

    def complete(self, ports: SQLPorts, result: object) -> None:
        self.answer = self._encode(result)  # type: ignore[arg-type]
        ports.idempotency.complete(
            self._client_id, self._key, self.answer.code, json.dumps(self.answer.body, sort_keys=True, default=str)
        )


class IdempotentRequests:
    """Runs creating requests at most once per (client, key)."""

    def __init__(self, *, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def run(
        self,
        client_id: str,
        key: str | None,
        request: dict[str, Any],
        perform: Callable[[Claim[R] | None], R],
        encode: Callable[[R], StoredAnswer],
        *,
        wait_seconds: float = 30.0,
    ) -> StoredAnswer:
        """``perform(claim)`` runs the operation, passing ``claim`` to its unit of work; without a
        key it runs unguarded."""
        if key is None:
            return encode(perform(None))
        if not 1 <= len(key) <= 200 or not key.isprintable():
            raise InvalidInputError("The Idempotency-Key header must be 1 to 200 printable characters.")
        request_hash = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
        replay = self._claim(client_id, key, request_hash, wait_seconds)
        if replay is not None:
            return replay
        claim = Claim(client_id, key, encode)
        try:
            result = perform(claim)
        except BaseException:
            with self._database.unit_of_work() as ports:
                ports.idempotency.release(client_id, key)
            raise
        return claim.answer if claim.answer is not None else encode(result)

    def _claim(self, client_id: str, key: str, request_hash: str, wait_seconds: float) -> StoredAnswer | None:
        """None once the key is ours; the first answer when the request was answered already."""
        deadline = time.monotonic() + wait_seconds
        while True:
            with self._database.unit_of_work() as ports:
                now = self._clock.now()
                claimed = ports.idempotency.claim(client_id, key, request_hash, now)
                existing = None if claimed else ports.idempotency.get(client_id, key)
                if existing is not None and existing.response_status is None:
                    claimed = ports.idempotency.take_over(client_id, key, older_than=now - ABANDONED_AFTER, at=now)
            if claimed:
                return None
            assert existing is not None
            if existing.request_hash != request_hash:
                raise ConflictError("This Idempotency-Key was used with a different request body.")
            if existing.response_status is not None and existing.response_body is not None:
                return StoredAnswer(code=existing.response_status, body=json.loads(existing.response_body))
            if time.monotonic() > deadline:
                raise ConflictError("A request with this Idempotency-Key is still being processed; retry later.")
            time.sleep(0.05)
