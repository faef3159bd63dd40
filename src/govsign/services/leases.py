"""Deployment-wide leases: a background job that must run once per deployment (CRL publication,
OCSP refresh, rollovers, audit checkpoints) runs only in the process that holds its lease, so
with ``--workers N`` on several nodes it still runs once.

The lease is a database row with an expiry (``storage/leases.py``), renewed by its holder well
before it ends. A holder that dies (kill -9, a lost node) stops renewing, and another process
takes the lease over once it has expired. A holder considers itself the holder only until a
little before the expiry it last wrote, measured on its own monotonic clock from before it asked,
so even with the database unreachable it stops running the job before anybody else may start.
The expiry is written with the service clock: nodes need synchronised clocks (NTP), as they do
anyway for certificates, OCSP and time-stamps.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time

from govsign.clock import Clock
from govsign.errors import GovsignError
from govsign.storage.engine import Database
from govsign.storage.leases import LeaseRecord

log = logging.getLogger(__name__)

#: How much of its lifetime a holder trusts a lease for (the rest covers clock skew and the time
#: the renewal took).
TRUSTED_FRACTION = 0.8


def process_holder_name() -> str:
    """A holder name unique to this process and instance: host, pid and a random part."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases:
    """The leases this process takes, renews and gives back."""

    def __init__(self, *, database: Database, clock: Clock, ttl: dt.timedelta, holder: str | None = None) -> None:
        if ttl <= dt.timedelta(0):
            raise ValueError("a lease lasts a positive time")
        self._database = database
        self._clock = clock
        self.ttl = ttl
        self.holder = holder or process_holder_name()
        self._trusted_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def hold(self, name: str) -> bool:
        """Take the lease ``name`` or renew it; True when this process holds it now. A database
        that cannot be reached means False (the job waits), never an exception."""
        asked_at = time.monotonic()
        now = self._clock.now()
        try:
            with self._database.unit_of_work() as ports:
                held = ports.leases.acquire(name, self.holder, now=now, until=now + self.ttl)
        except GovsignError as exc:
            log.warning("could not renew the lease %s: %s", name, exc.message)
            held = False
        with self._lock:
            was_held = self.held(name)
            if held:
                self._trusted_until[name] = asked_at + self.ttl.total_seconds() * TRUSTED_FRACTION
            else:
                self._trusted_until.pop(name, None)
        if held and not was_held:
            log.info("this process now runs the deployment-wide jobs of lease %s", name)
        elif was_held and not held:
            log.warning("this process lost the lease %s", name)
        return held

    def held(self, name: str) -> bool:
        """Whether this process holds ``name`` now, as far as it knows (no database call)."""
        return time.monotonic() < self._trusted_until.get(name, 0.0)

    def release(self, name: str) -> None:
        """Give the lease back, so another process may take it at once (at shutdown)."""
        with self._lock:
            self._trusted_until.pop(name, None)
        try:
            with self._database.unit_of_work() as ports:
                ports.leases.release(name, self.holder)
        except GovsignError as exc:
            log.warning("could not give back the lease %s: %s", name, exc.message)

    def current(self, name: str) -> LeaseRecord | None:
        """The lease ``name`` as stored, when it has not expired."""
        with self._database.read_only() as ports:
            record = ports.leases.get(name)
        return record if record is not None and record.expires_at > self._clock.now() else None
