"""The audit log: the one place an audit event is built, the audit trail the CA writes into inside
a unit of work, failures recorded in a transaction of their own, searches, and the audit keys in
the HSM that key each event's chain value and sign the checkpoints
(:mod:`govsign.services.audit_checkpoints`).

An event records who acted (the actor, and for API calls the client, its agency and the request
id), what was done to which object, the outcome and facts about it; never a PIN, key, secret or
document content (the hash chain refuses such detail keys).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from govsign.audit.chain import chain_mac
from govsign.audit.checkpoints import (
    Checkpoint,
)
from govsign.audit.events import AuditContext, AuditEvent, AuditQuery
from govsign.clock import Clock
from govsign.errors import ErrorKind, GovsignError
from govsign.keystore.api import KeyAlgorithm, KeyRef, KeyStore, SecretRef
from govsign.storage.engine import Database
from govsign.storage.ports import SQLPorts

if TYPE_CHECKING:
    from govsign.services.authorization import Requester

log = logging.getLogger(__name__)

#: The label of the audit signing key (EC P-256) that signs checkpoints.
AUDIT_KEY_LABEL = "govsign-audit-1"
#: The label of the audit chain key (HMAC-SHA256 secret) that keys each event's chain value.
CHAIN_KEY_LABEL = "govsign-audit-chain-1"
#: Registry purposes (rows of ``audit_keys``).
SIGNING_PURPOSE = "checkpoint-signing"
CHAIN_PURPOSE = "event-chain"
#: The action of the event recording that events were keyed after they were written.
KEYED_LATE_ACTION = "audit.keyed-late"

#: The outcome of refusals of these kinds is ``denied`` (the caller may not), else ``failure``.
_DENIED_KINDS = (ErrorKind.FORBIDDEN, ErrorKind.UNAUTHENTICATED)


class EventFields(TypedDict):
    """What an event records besides its action and request context."""

    actor: str
    """Who acted (``client:NAME``, ``operator:USER``, ``system:...``)."""
    object_type: str
    """Kind of object acted on."""
    object_id: str
    """Which object (cut to 200 characters)."""
    details: Mapping[str, object]
    """Facts about it; never a PIN, key, secret or document content."""
    outcome: NotRequired[str]
    """success (the default), failure or denied."""


class AuditKeys:
    """The two audit keys in the HSM, created once per deployment.

    Both are registered in the ``audit_keys`` table (one row per purpose, the purpose its primary
    key) and always used by the key id registered there, never looked up by label alone. A
    process that finds no row generates a key, then registers it in a transaction of its own; the
    primary key lets one process win (on PostgreSQL a second insert waits for the first
    transaction and then fails; SQLite has one writer). A loser destroys the key it generated
    (unless the winner registered that very key) and uses the winner's. So the CLI and several
    nodes starting together end with one key per purpose, and a key found twice by label (made
    by the race of earlier versions) never stops ``audit verify``: the signing key of an older
    deployment is adopted from the token (the one whose public key verifies its latest
    checkpoint, else the smallest id), and older checkpoints verify with any key of that label.
    """

    def __init__(self, *, database: Database, keystore: KeyStore, clock: Clock) -> None:
        self._database = database
        self._keystore = keystore
        self._clock = clock
        self._lock = threading.Lock()
        self._chain: SecretRef | None = None
        self._signing: KeyRef | None = None

    def ensure(self) -> None:
        """Create (once per deployment) and load both keys."""
        self.chain_secret(create=True)
        self.signing_key(create=True)

    def chain_secret(self, *, create: bool = False, ports: SQLPorts | None = None) -> SecretRef | None:
        """The audit chain key, from the registry (read in ``ports`` when given); created when
        missing with ``create``."""
        if self._chain is not None:
            return self._chain
        if not create:  # no lock: appends call this inside their transaction
            registered = self._registered(CHAIN_PURPOSE, ports)
            if registered is not None:
                self._chain = SecretRef(label=registered[0], key_id=registered[1])
            return self._chain
        with self._lock:
            registered = self._registered(CHAIN_PURPOSE, ports)
            if registered is None and self._keyed_events_exist():
                # a new key would make every keyed event look altered: someone removed the
                # registration; leave it missing for ``audit verify`` to report
                log.error("the audit chain key is not registered, but keyed events exist; not creating one")
                return None
            if registered is None:
                secret = self._keystore.generate_hmac_secret(label=CHAIN_KEY_LABEL)
                registered = self._register(CHAIN_PURPOSE, secret.label, secret.key_id)
                if registered[1] != secret.key_id:
                    self._keystore.destroy_secret(secret)
            if registered is not None:
                self._chain = SecretRef(label=registered[0], key_id=registered[1])
            return self._chain

    def signing_key(self, *, create: bool = False, ports: SQLPorts | None = None) -> KeyRef | None:
        """The audit signing key, from the registry; adopted from the token or created when
        missing with ``create``."""
        if self._signing is not None:
            return self._signing
        if not create:
            registered = self._registered(SIGNING_PURPOSE, ports)
            if registered is not None:
                self._signing = KeyRef(label=registered[0], key_id=registered[1], algorithm=KeyAlgorithm.EC_P256)
            return self._signing
        with self._lock:
            registered = self._registered(SIGNING_PURPOSE, ports)
            if registered is None:
                adopted = self._adoptable()
                key = adopted or self._keystore.generate_key_pair(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
                registered = self._register(SIGNING_PURPOSE, key.label, key.key_id)
                if registered[1] != key.key_id and adopted is None:
                    self._keystore.destroy_key_pair(key)  # lost the race: ours was never used
            if registered is not None:
                self._signing = KeyRef(label=registered[0], key_id=registered[1], algorithm=KeyAlgorithm.EC_P256)
            return self._signing

    def _keyed_events_exist(self) -> bool:
        with self._database.read_only() as ports:
            return ports.audit.has_keyed_events()

    def legacy_signing_keys(self) -> list[KeyRef]:
        """Every key on the token labelled as the audit signing key (version 1 checkpoints name
        only the label)."""
        return self._keystore.find_keys(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)

    def _adoptable(self) -> KeyRef | None:
        """The signing key of a deployment older than the registry, if the token holds one."""
        keys = self.legacy_signing_keys()
        if not keys:
            return None
        with self._database.read_only() as ports:
            latest = ports.checkpoints.latest()
        if latest is not None:
            for key in keys:
                if signature_verifies(self._keystore, key, latest):
                    return key
        return keys[0]

    def keyed_from(self, ports: SQLPorts) -> int | None:
        """The first event of the keyed chain, as registered with the chain key."""
        found = ports.audit_keys.get(CHAIN_PURPOSE)
        return found[2] if found is not None else None

    def _registered(self, purpose: str, ports: SQLPorts | None) -> tuple[str, bytes] | None:
        if ports is not None:
            found = ports.audit_keys.get(purpose)
        else:
            with self._database.read_only() as reading:
                found = reading.audit_keys.get(purpose)
        return (found[0], bytes.fromhex(found[1])) if found is not None else None

    def _register(self, purpose: str, label: str, key_id: bytes) -> tuple[str, bytes]:
        """Register (label, key_id) for ``purpose`` unless another process did first; the
        registered pair."""
        with self._database.unit_of_work() as ports:
            if ports.audit_keys.register(
                purpose, label=label, key_id_hex=key_id.hex(), at=self._clock.now(), chain=purpose == CHAIN_PURPOSE
            ):
                log.info("created the audit key for %s (%s)", purpose, label)
                return label, key_id
        winner = self._registered(purpose, None)
        assert winner is not None, "a registration lost to one that is not there"
        return winner


class HSMChainKey:
    """The audit chain key as :class:`~govsign.audit.chain.ChainKey`: HMAC inside the HSM."""

    def __init__(self, keystore: KeyStore, secret: SecretRef) -> None:
        self._keystore = keystore
        self._secret = secret

    def mac(self, message: bytes) -> bytes:
        return self._keystore.hmac_sha256(self._secret, message)


class AuditLog:
    """Appends events to the chain (inside a caller's transaction or in one of its own), each
    keyed by the audit chain key in the HSM (stored unkeyed, and keyed later, while the HSM is
    unreachable, so refusals during an outage are still recorded)."""

    def __init__(
        self, *, database: Database, clock: Clock, keys: AuditKeys | None = None, keystore: KeyStore | None = None
    ) -> None:
        self._database = database
        self._clock = clock
        self._keys = keys
        self._keystore = keystore
        self.recorded = 0
        """Events this process appended (the head is exported at close when any were)."""

    def sealer(self, ports: SQLPorts) -> Callable[[int, str], str | None]:
        """``seal(sequence, event_hash)`` -> the keyed chain value, or None when the HSM (or the
        key) is not available right now."""

        def seal(sequence: int, digest: str) -> str | None:
            if self._keys is None or self._keystore is None:
                return None
            try:
                secret = self._keys.chain_secret(ports=ports)
                if secret is None:
                    return None
                return chain_mac(HSMChainKey(self._keystore, secret), sequence, digest)
            except GovsignError as exc:
                log.warning("audit event %d stored without its keyed chain value for now: %s", sequence, exc.message)
                return None

        return seal

    def record(
        self, ports: SQLPorts, action: str, *, context: AuditContext | None = None, **event: Unpack[EventFields]
    ) -> None:
        """Append one event in the transaction of ``ports`` (it commits or rolls back with it)."""
        context = context or AuditContext()
        keyed_late = ports.audit.append(
            AuditEvent(
                action=action,
                actor=event["actor"],
                object_type=event["object_type"],
                object_id=event["object_id"][:200],
                outcome=event.get("outcome", "success"),
                details=dict(event["details"]),
                client_id=context.client_id,
                agency_id=context.agency_id,
                request_id=context.request_id,
            ),
            at=self._clock.now(),
            seal=self.sealer(ports),
        )
        self.recorded += 1
        if keyed_late is not None:
            self.record_keyed_late(ports, keyed_late)

    def record_keyed_late(self, ports: SQLPorts, sealed: tuple[int, int]) -> None:
        """The event that says which events were keyed after they were written (the HSM was
        unreachable): ``audit verify`` lists these ranges, so a range nobody can explain by an
        outage stands out."""
        first, last = sealed
        self.record(
            ports,
            KEYED_LATE_ACTION,
            actor="system:audit",
            object_type="audit-events",
            object_id=f"{first}-{last}",
            details={"first_event": first, "last_event": last},
        )

    def trail(self, ports: SQLPorts, context: AuditContext | None = None) -> AuditTrailOf:
        """The audit trail of one unit of work, as the CA core writes into it."""
        return AuditTrailOf(self, ports, context or AuditContext())

    def record_refusal(
        self,
        action: str,
        requester: Requester,
        object_id: str,
        error: GovsignError,
        *,
        object_type: str = "certificate",
    ) -> None:
        """Record an operation ``requester`` asked for that was refused or failed, in a transaction
        of its own (the operation's own transaction was rolled back). Never raises: the refusal
        must reach the caller even when the audit log cannot be written, which is logged."""
        details = {"error": error.kind.value, "message": error.message[:500]}
        outcome = "denied" if error.kind in _DENIED_KINDS else "failure"
        try:
            with self._database.unit_of_work() as ports:
                self.record(
                    ports,
                    action,
                    context=requester.context,
                    actor=requester.actor,
                    object_type=object_type,
                    object_id=object_id,
                    details=details,
                    outcome=outcome,
                )
        except Exception:
            log.exception("could not record a failed %s in the audit log", action)

    def search(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Events matching the query, oldest first, at most ``query.limit``."""
        with self._database.read_only() as ports:
            return ports.audit.search(query)


class AuditTrailOf:
    """The CA core's :class:`~govsign.pki.protocols.AuditTrail` over one unit of work."""

    def __init__(self, log: AuditLog, ports: SQLPorts, context: AuditContext) -> None:
        self._log = log
        self._ports = ports
        self._context = context

    def record(self, action: str, **event: Unpack[EventFields]) -> None:
        """Append one event in this unit of work, with its request context."""
        self._log.record(self._ports, action, context=self._context, **event)

    def certificate_event(
        self, action: str, requester: Requester, serial: str, details: Mapping[str, object], outcome: str = "success"
    ) -> None:
        """An event on the certificate ``serial``, of an operation ``requester`` asked for."""
        self.record(
            action, actor=requester.actor, object_type="certificate", object_id=serial, details=details, outcome=outcome
        )


def signature_verifies(keystore: KeyStore, key: KeyRef, checkpoint: Checkpoint) -> bool:
    """Whether ``checkpoint`` is signed by ``key`` (ECDSA P-256)."""
    public = keystore.public_key(key)
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return False
    try:
        public.verify(checkpoint.signature, checkpoint.message(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
