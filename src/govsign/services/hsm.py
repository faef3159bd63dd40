"""The HSM token as an operator inspects it: the module, the token and the private keys govsign
uses (never any key material), and the reconciliation of the token against the records.

A key generated for an issuance carries a pending marker (a row committed before the HSM made
it, removed in the transaction that stores its certificate: see ``UnitOfWork.run``). A crash
(kill -9) between the two leaves a marker whose key no record names: after a grace period,
:meth:`HSMInventory.reconcile` destroys that key, removes the marker and records the event. It
never touches a key that any record names (a CA, a certificate, the audit key) nor a key
without a marker (another deployment's on a shared token, a key made by hand): those are only
listed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from govsign.clock import Clock
from govsign.keystore.api import KeyInfo, KeyStore, TokenInfo
from govsign.services.audit_log import AUDIT_KEY_LABEL, CHAIN_KEY_LABEL, AuditLog
from govsign.storage.engine import Database

log = logging.getLogger(__name__)

#: How long a pending marker is left alone: an issuance in progress holds one for seconds.
DEFAULT_PENDING_KEY_GRACE = dt.timedelta(minutes=10)


@dataclass(frozen=True, kw_only=True)
class UnrecordedKey:
    """A private key on the token that no record of this deployment names."""

    label: str
    """Its CKA_LABEL."""
    key_id_hex: str
    """Its CKA_ID."""
    algorithm: str
    """Its type and size."""
    pending_since: dt.datetime | None
    """When it was announced for an issuance that never committed (None: not ours to remove)."""


@dataclass(frozen=True, kw_only=True)
class ReconciliationReport:
    """The token against the records, and what reconciliation did."""

    recorded: int
    """Private keys on the token that a record names (kept)."""
    unrecorded: tuple[UnrecordedKey, ...]
    """Private keys no record names, as found before anything was destroyed."""
    destroyed: tuple[str, ...]
    """Labels of the pending orphans destroyed now (past the grace period)."""
    cleared: tuple[str, ...]
    """Pending markers past the grace period whose key was never generated, removed."""
    waiting: tuple[str, ...]
    """Pending markers still within the grace period (an issuance may be running)."""


class HSMInventory:
    """What is on the token, and its reconciliation with the records."""

    def __init__(
        self,
        *,
        keystore: KeyStore,
        database: Database | None = None,
        clock: Clock | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._keystore = keystore
        self._database = database
        self._clock = clock
        self._audit = audit

    def token(self) -> TokenInfo:
        return self._keystore.token_info()

    def private_keys(self) -> list[KeyInfo]:
        return self._keystore.list_private_keys()

    def reconcile(
        self,
        *,
        grace: dt.timedelta = DEFAULT_PENDING_KEY_GRACE,
        actor: str = "system:hsm-reconcile",
        destroy: bool = True,
        only_pending: bool = False,
    ) -> ReconciliationReport:
        """List the token's keys that no record names; with ``destroy``, destroy those whose
        pending marker is older than ``grace`` (audited, one transaction per key, the marker
        locked so that two processes never both act on it). With ``only_pending`` (the
        service's start-up), the token is not even listed when no marker exists."""
        assert self._database is not None and self._clock is not None and self._audit is not None
        with self._database.read_only() as ports:
            markers = {marker.label: marker for marker in ports.pending_keys.all()}
        if only_pending and not markers:
            return ReconciliationReport(recorded=0, unrecorded=(), destroyed=(), cleared=(), waiting=())
        keys = self._keystore.list_private_keys()
        with self._database.read_only() as ports:
            # the audit keys (signing and chain) are the deployment's own: never orphans
            recorded = ports.pending_keys.recorded_key_labels() | {AUDIT_KEY_LABEL, CHAIN_KEY_LABEL}
        unrecorded = tuple(
            UnrecordedKey(
                label=key.ref.label,
                key_id_hex=key.ref.key_id_hex,
                algorithm=key.ref.algorithm.value,
                pending_since=markers[key.ref.label].created_at if key.ref.label in markers else None,
            )
            for key in keys
            if key.ref.label not in recorded
        )
        cutoff = self._clock.now() - grace
        destroyed: list[str] = []
        cleared: list[str] = []
        waiting: list[str] = []
        for label, marker in markers.items():
            if marker.created_at > cutoff or not destroy:
                waiting.append(label)
                continue
            with self._database.unit_of_work() as ports:
                if ports.pending_keys.get_for_update(label) is None:
                    continue  # another process is reconciling it
                if label in ports.pending_keys.recorded_key_labels():
                    ports.pending_keys.remove(label)  # its certificate committed after all: keep the key
                    continue
                orphans = [key for key in keys if key.ref.label == label]
                for key in orphans:
                    self._keystore.destroy_key_pair(key.ref)
                ports.pending_keys.remove(label)
                self._audit.record(
                    ports,
                    "hsm.key.destroy-orphan" if orphans else "hsm.key.clear-pending",
                    actor=actor,
                    object_type="key",
                    object_id=label,
                    details={
                        "purpose": marker.purpose,
                        "pending_since": marker.created_at.isoformat(),
                        "key_ids": [key.ref.key_id_hex for key in orphans],
                    },
                )
            (destroyed if orphans else cleared).append(label)
        if destroyed:
            log.warning("destroyed %d HSM keys left by interrupted issuances", len(destroyed))
        return ReconciliationReport(
            recorded=len(keys) - len(unrecorded),
            unrecorded=unrecorded,
            destroyed=tuple(destroyed),
            cleared=tuple(cleared),
            waiting=tuple(waiting),
        )
