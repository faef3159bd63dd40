"""Authentication of API clients: bearer tokens (HMAC-SHA256 under the server key) or, behind a
trusted TLS proxy, the SHA-256 fingerprint of the client certificate; the limiter of failed
attempts, and their audit.

Failures are counted in the database (``storage/auth_failures.py``) per address, client named by
the failed credentials, and minute, so every worker process and node of a deployment counts
the same failures. Past the limit a failure is answered 429 with Retry-After instead of 401;
valid credentials are never refused, so an address shared with an attacker (a NAT, a proxy)
does not lock the honest clients behind it out (with tokens of 256-bit secrets the limit is
about floods, not guessing). Once this process has seen a client and address over the limit
in a minute, it counts their further failures in memory and adds them to the database at most
once a second (``flush_failures``), so a flood does not turn into a database write per request.
The audit log gets one event per address and minute with the count, written once the minute
(and a few seconds' grace for those flushes) is over, so a flood cannot fill it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable

from govsign.access.clients import client_id_of, token_matches
from govsign.access.policy import Principal, Role
from govsign.clock import Clock
from govsign.errors import GovsignError, InvalidInputError
from govsign.services.audit_log import AuditLog
from govsign.storage.access import APIClientRecord
from govsign.storage.engine import Database

log = logging.getLogger(__name__)

#: Failures from one address in a minute, over every client they named, before 429 (a multiple of
#: the per-client limit: a spray of made-up client ids is a flood too).
ADDRESS_LIMIT_FACTOR = 10
AUTH_FAILURE_ACTION = "authentication.failure"
AUTH_FAILURE_ACTOR = "anonymous"
#: How many of the client ids named in a minute's failures the audit event lists.
AUDITED_CLIENT_IDS = 20
#: How often failures counted in memory (past the limit) are added to the database.
FLUSH_SECONDS = 1.0
#: How long after a minute ends its counts are audited (the last flushes land first).
AUDIT_GRACE = dt.timedelta(seconds=5)

_FailureKey = tuple[str, str, dt.datetime]


class Authentication:
    """Finds the active API client behind a token or a client certificate."""

    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        audit: AuditLog,
        server_key: Callable[[], bytes],
        failure_limit: int,
    ) -> None:
        self._database = database
        self._clock = clock
        self._audit = audit
        self._server_key = server_key
        self.failure_limit = failure_limit
        # (address, client, minute) known to be over the limit -> [failures not yet in the
        # database, when they were last added]
        self._over: dict[_FailureKey, list[float]] = {}
        self._over_lock = threading.Lock()

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

    def record_failure(self, source: str, claimed_client: str | None = None) -> int:
        """Count a failed authentication from ``source`` (an address) whose credentials named
        ``claimed_client``; returns the seconds the caller is told to wait (0: under the limit,
        answer 401). Never raises: a database that cannot count refuses nobody extra."""
        now = self._clock.now()
        window = _minute_of(now)
        wait = max(1, int((window + dt.timedelta(minutes=1) - now).total_seconds()) + 1)
        key = (source[:64], (claimed_client or "")[:64], window)
        with self._over_lock:
            pending = self._over.get(key)
            if pending is not None:
                pending[0] += 1
                if time.monotonic() - pending[1] < FLUSH_SECONDS:
                    return wait
                count, pending[0], pending[1] = int(pending[0]), 0, time.monotonic()
            else:
                count = 1
        try:
            with self._database.unit_of_work() as ports:
                for_client, for_source = ports.auth_failures.add(*key, count)
        except GovsignError as exc:
            log.warning("could not count a failed authentication: %s", exc.message)
            return 0
        if for_client <= self.failure_limit and for_source <= self.failure_limit * ADDRESS_LIMIT_FACTOR:
            return 0
        with self._over_lock:
            if key not in self._over:
                self._over = {k: v for k, v in self._over.items() if k[2] >= window}  # forget past minutes
                self._over[key] = [0, time.monotonic()]
        return wait

    def flush_failures(self) -> int:
        """Add the failures counted in memory to the database (every second, in every process);
        returns how many."""
        with self._over_lock:
            due = [(key, int(pending[0])) for key, pending in self._over.items() if pending[0]]
            for key, _ in due:
                self._over[key][:] = [0, time.monotonic()]
        if not due:
            return 0
        try:
            with self._database.unit_of_work() as ports:
                for key, count in due:
                    ports.auth_failures.add(*key, count)
        except GovsignError as exc:
            log.warning("could not count failed authentications: %s", exc.message)
            return 0
        return sum(count for _, count in due)

    def audit_failures(self) -> int:
        """Write one audit event per address for each minute that is over, with its count of
        failed authentications (and which clients they named), and forget those counts; returns
        how many events were written. Safe to run in several processes: the counts are taken
        under row locks, in the transaction that writes the events."""
        before = _minute_of(self._clock.now() - AUDIT_GRACE)
        with self._database.unit_of_work() as ports:
            counts = ports.auth_failures.take_before(before)
            for count in counts:
                self._audit.record(
                    ports,
                    AUTH_FAILURE_ACTION,
                    actor=AUTH_FAILURE_ACTOR,
                    object_type="address",
                    object_id=count.source,
                    outcome="denied",
                    details={
                        "failures": count.failures,
                        "minute": count.window_start.isoformat(),
                        "client_ids": list(count.client_ids[:AUDITED_CLIENT_IDS]),
                        "client_ids_named": len(count.client_ids),
                    },
                )
        return len(counts)


def _minute_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(second=0, microsecond=0)


def principal_of(client: APIClientRecord) -> Principal:
    """The caller as the access policy sees it."""
    return Principal(client_id=client.id, client_name=client.name, role=Role(client.role), agency_id=client.agency_id)


def normalise_fingerprint(value: str) -> str:
    """A certificate fingerprint as stored: 64 lower-case hex digits, no colons."""
    text = value.replace(":", "").strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise InvalidInputError("A certificate fingerprint is the SHA-256 of the DER certificate, in hex.")
    return text
