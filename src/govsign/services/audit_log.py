"""The audit log: the one place an audit event is built, the audit trail the CA writes into inside
a unit of work, failures recorded in a transaction of their own, searches, and the signed
checkpoints of the hash chain.

An event records who acted (the actor, and for API calls the client, its agency and the request
id), what was done to which object, the outcome and facts about it; never a PIN, key, secret or
document content (the hash chain refuses such detail keys).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from govsign.audit.chain import ChainVerdict
from govsign.audit.events import AuditContext, AuditEvent, AuditQuery
from govsign.clock import Clock
from govsign.errors import ErrorKind, GovsignError
from govsign.keystore.api import KeyAlgorithm, KeyRef, KeyStore
from govsign.storage.engine import Database
from govsign.storage.ports import SQLPorts

if TYPE_CHECKING:
    from govsign.services.authorization import Requester

log = logging.getLogger(__name__)

AUDIT_KEY_LABEL = "govsign-audit-1"
CHECKPOINT_EVERY_EVENTS = 100

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


class AuditLog:
    """Appends events to the hash chain (inside a caller's transaction or in one of its own)."""

    def __init__(self, *, database: Database, clock: Clock) -> None:
        self._database = database
        self._clock = clock

    def record(
        self, ports: SQLPorts, action: str, *, context: AuditContext | None = None, **event: Unpack[EventFields]
    ) -> None:
        """Append one event in the transaction of ``ports`` (it commits or rolls back with it)."""
        context = context or AuditContext()
        ports.audit.append(
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


class AuditCheckpoints:
    """Signed checkpoints of the chain head, made with the audit key in the HSM, and the check
    of the whole chain against them."""

    def __init__(self, *, database: Database, keystore: KeyStore, clock: Clock) -> None:
        self._database = database
        self._keystore = keystore
        self._clock = clock

    def _audit_key(self) -> KeyRef:
        key = self._keystore.find_key(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
        if key is None:
            key = self._keystore.generate_key_pair(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
        return key

    def checkpoint(self, *, force: bool = False) -> int | None:
        """Sign the chain head with the audit key in the HSM when CHECKPOINT_EVERY_EVENTS events
        (or, with ``force``, any) have been added since the last checkpoint; returns the event
        covered, or None when none was due."""
        with self._database.unit_of_work() as ports:
            last_id, last_hash = ports.checkpoints.head()
            latest = ports.checkpoints.latest()
            since = last_id - (latest.last_event_id if latest else 0)
            if last_id == 0 or since <= 0 or (since < CHECKPOINT_EVERY_EVENTS and not force):
                return None
            key = self._audit_key()
            signed_at = self._clock.now()
            signature = self._keystore.sign(
                key,
                checkpoint_message(last_id, last_hash, signed_at),
                scheme=key.algorithm.default_scheme,
                hash_algorithm=key.algorithm.default_hash,
            )
            ports.checkpoints.add(
                last_event_id=last_id,
                last_hash=last_hash,
                signed_at=signed_at,
                key_label=key.label,
                signature=signature,
            )
            return last_id

    def verify(self) -> ChainVerdict:
        """The chain, then every checkpoint's signature and hash."""
        with self._database.read_only() as ports:
            verdict = ports.audit.verify()
            checkpoints = ports.checkpoints.all()
            if not verdict.intact or not checkpoints:
                return verdict
            key = self._keystore.find_key(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
            public = self._keystore.public_key(key) if key is not None else None
            for last_event_id, last_hash, signed_at, _label, signature in checkpoints:
                problem = None
                if public is None:
                    problem = "the audit key is missing from the HSM"
                else:
                    try:
                        assert isinstance(public, ec.EllipticCurvePublicKey)
                        public.verify(
                            signature,
                            checkpoint_message(last_event_id, last_hash, signed_at),
                            ec.ECDSA(hashes.SHA256()),
                        )
                    except InvalidSignature:
                        problem = "its signature does not verify"
                if problem is None and ports.checkpoints.event_hash_at(last_event_id) != last_hash:
                    problem = "the event it covers was changed"
                if problem is not None:
                    problem = f"The audit checkpoint at event {last_event_id} is not valid: {problem}."
                    return ChainVerdict.broken(verdict.events_checked, last_event_id, problem)
        return verdict


def checkpoint_message(last_event_id: int, last_hash: str, signed_at: dt.datetime) -> bytes:
    """What a checkpoint's signature covers."""
    stamp = signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"govsign-audit-checkpoint\n{last_event_id}\n{last_hash}\n{stamp}\n".encode("ascii")
