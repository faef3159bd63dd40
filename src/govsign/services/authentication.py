"""Authentication of API clients: bearer tokens (HMAC-SHA256 under the server key) or, behind a
trusted TLS proxy, the SHA-256 fingerprint of the client certificate; and the limiter of failed
attempts per source address."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from govsign.access.clients import client_id_of, token_matches
from govsign.access.policy import Principal, Role
from govsign.errors import InvalidInputError
from govsign.storage.access import APIClientRecord
from govsign.storage.engine import Database


class AuthFailureLimiter:
    """Counts failed authentications per source in a sliding minute (per process)."""

    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self._limit = limit
        self._window = window_seconds
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked_for(self, source: str) -> int:
        """Seconds until ``source`` may try again (0 when it may now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(source, []) if now - t < self._window]
            self._failures[source] = recent
            if len(recent) < self._limit:
                return 0
            return max(1, int(self._window - (now - recent[0])) + 1)

    def failed(self, source: str) -> None:
        with self._lock:
            self._failures.setdefault(source, []).append(time.monotonic())
            if len(self._failures) > 10000:  # bound memory under a spray of sources
                self._failures = dict(list(self._failures.items())[-5000:])


class Authentication:
    """Finds the active API client behind a token or a client certificate."""

    def __init__(self, *, database: Database, server_key: Callable[[], bytes], failure_limit: int) -> None:
        self._database = database
        self._server_key = server_key
        self.limiter = AuthFailureLimiter(failure_limit)

    def authenticate_token(self, token: str) -> Principal | None:
        client_id = client_id_of(token)
        if client_id is None:
            return None
        with self._database.read_only() as ports:
            client = ports.access.get_client(client_id)
        if (
            client is None
            or client.status != "active"
            or not token_matches(self._server_key(), token, client.secret_hash)
        ):
            return None
        return principal_of(client)

    def authenticate_certificate(self, fingerprint: str) -> Principal | None:
        with self._database.read_only() as ports:
            client = ports.access.client_by_certificate(normalise_fingerprint(fingerprint))
        if client is None or client.status != "active":
            return None
        return principal_of(client)


def principal_of(client: APIClientRecord) -> Principal:
    """The caller as the access policy sees it."""
    return Principal(client_id=client.id, client_name=client.name, role=Role(client.role), agency_id=client.agency_id)


def normalise_fingerprint(value: str) -> str:
    """A certificate fingerprint as stored: 64 lower-case hex digits, no colons."""
    text = value.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInputError("A certificate fingerprint is the SHA-256 of the DER certificate, in hex.")
    return text
