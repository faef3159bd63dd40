"""HSM outages: watched, audited, and ended without a restart.

The keystore marks itself down on an HSM error and refuses calls at once while it is down
(:mod:`govsign.keystore.pkcs11`). This use case is what the service adds around it:

* :meth:`HSMOutage.watch` (a tick of the server's background loop, a few times a second) checks
  the token for real once a second while the keystore is up, so an outage is noticed within a
  second even with no traffic, and probes it while it is down (the keystore lets a probe reach
  the module at most once a second); the first probe that logs in brings signing, OCSP and the
  TSA back.
* The start and the end of an outage are audit events (``hsm.unavailable``, ``hsm.available``).
* Refusals of the public protocols (an OCSP ``tryLater``, a time-stamp ``systemFailure``) are
  audited too, without letting a flood of anonymous requests fill the log: the first refusal of
  an action is written at once, the ones after it within the same second are counted into the
  next event of that action (``details.refused``), so every refusal is in exactly one event.
  Refusals of REST operations are audited one by one by their own use cases.

The audit events are written to the database only: nothing here needs the HSM.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from govsign.clock import Clock
from govsign.errors import GovsignError
from govsign.keystore.api import KeyStore
from govsign.services.audit_log import AuditLog
from govsign.storage.engine import Database

log = logging.getLogger(__name__)

#: While the keystore is up, the token is checked for real this often by :meth:`HSMOutage.watch`.
CHECK_INTERVAL_SECONDS = 1.0
#: At most one audit event per protocol action this often; the refusals between are counted.
REFUSAL_EVENT_INTERVAL_SECONDS = 1.0
#: The actor of the outage events.
ACTOR = "system:hsm-watch"


@dataclass
class _RefusalTally:
    """Refusals of one action not yet written, and when the last event of it was written."""

    object_type: str
    object_id: str
    reason: str
    count: int = 0
    last_written: float = float("-inf")


class HSMOutage:
    """Watches the keystore and audits outages and the protocol refusals they cause."""

    def __init__(self, *, database: Database, keystore: KeyStore, audit: AuditLog, clock: Clock) -> None:
        self._database = database
        self._keystore = keystore
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._tallies: dict[str, _RefusalTally] = {}
        self._last_check = float("-inf")
        self._seen_available = True
        self._down_at: float | None = None

    # -- the watch ----------------------------------------------------------------------------

    def watch(self) -> bool:
        """One tick: check the token (once a second while up), probe it while down, audit a
        change of state and any refusals still counted; True when the keystore is up."""
        now = time.monotonic()
        if not self._keystore.available:
            up = self._keystore.probe()
        elif now - self._last_check >= CHECK_INTERVAL_SECONDS:
            self._last_check = now
            try:
                self._keystore.ping()
                up = True
            except GovsignError:
                up = False
        else:
            up = True
        self._record_change(up)
        self.flush()
        return up

    def _record_change(self, up: bool) -> None:
        if up == self._seen_available:
            return
        self._seen_available = up
        if not up:
            self._down_at = time.monotonic()
            self._write("hsm.unavailable", "token", "hsm", {"probe_interval_seconds": 1}, outcome="failure")
            return
        seconds = round(time.monotonic() - self._down_at, 1) if self._down_at is not None else None
        self._down_at = None
        self.flush(force=True)
        self._write("hsm.available", "token", "hsm", {"unavailable_seconds": seconds})

    # -- refusals -----------------------------------------------------------------------------

    def refused(self, action: str, *, object_type: str, object_id: str, reason: str) -> None:
        """Audit one refused protocol request (``reason``: the protocol status, e.g. tryLater):
        written at once when no event of ``action`` was written in the last second, else
        counted into the next one. Never raises."""
        now = time.monotonic()
        with self._lock:
            tally = self._tallies.get(action)
            if tally is None:
                tally = self._tallies[action] = _RefusalTally(object_type, object_id, reason)
            tally.count += 1
            tally.object_id, tally.reason = object_id, reason
            if now - tally.last_written < REFUSAL_EVENT_INTERVAL_SECONDS:
                return
            pending = self._take(tally, now)
        self._write_refusal(action, pending)

    def flush(self, *, force: bool = False) -> None:
        """Write the refusals counted since the last event of their action (once its second
        is over, or at once with ``force``)."""
        now = time.monotonic()
        with self._lock:
            due = [
                (action, self._take(tally, now))
                for action, tally in self._tallies.items()
                if tally.count and (force or now - tally.last_written >= REFUSAL_EVENT_INTERVAL_SECONDS)
            ]
        for action, pending in due:
            self._write_refusal(action, pending)

    @staticmethod
    def _take(tally: _RefusalTally, now: float) -> _RefusalTally:
        pending = _RefusalTally(tally.object_type, tally.object_id, tally.reason, tally.count)
        tally.count = 0
        tally.last_written = now
        return pending

    def _write_refusal(self, action: str, pending: _RefusalTally) -> None:
        details = {"error": "unavailable", "status": pending.reason, "refused": pending.count}
        self._write(action, pending.object_type, pending.object_id, details, outcome="failure", actor="anonymous")

    def _write(
        self,
        action: str,
        object_type: str,
        object_id: str,
        details: dict[str, object],
        *,
        outcome: str = "success",
        actor: str = ACTOR,
    ) -> None:
        try:
            with self._database.unit_of_work() as ports:
                self._audit.record(
                    ports,
                    action,
                    actor=actor,
                    object_type=object_type,
                    object_id=object_id,
                    details=details,
                    outcome=outcome,
                )
        except Exception:
            log.exception("could not record %s in the audit log", action)
