"""The status services relying parties call: OCSP answers, RFC 3161 time-stamps and CRLs.

OCSP and the TSA answer in their own protocols and never raise: every failure is an OCSP
response status or a PKIStatus rejection. Both keep their signing credential in memory and read
it again from the database every 30 s, so a rollover made by another process is picked up.

The HTTP front end calls ``answer_now`` on its event loop first: it answers when that costs no
wait (the database is local and the HSM is free at once), and says None otherwise, so the loop
never waits for the HSM or the network; ``answer`` is then called in a worker thread. While the
HSM is down (or when an answer on the loop turns out to be a refusal) ``answer_now`` says None
too, so refusals are answered, and audited through ``refusals``, in the worker thread.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from govsign.clock import Clock
from govsign.errors import GovsignError
from govsign.keystore.api import KeyStore
from govsign.pki.crl import CRLLinter, CRLPolicy, CRLPublisher, PublishedCRLs, StoredCRL
from govsign.pki.issuer import PublicURLs
from govsign.pki.ocsp import (
    OCSPAnswer,
    OCSPDirectory,
    OCSPPolicy,
    OCSPResponder,
    ResponderCredential,
    failure_response,
    unsigned_response,
)
from govsign.pki.profiles import OCSP_RESPONDER, TSA
from govsign.pki.records import CARecord, CARole, CertificateRecord, RevocationRecord
from govsign.services.audit_log import AuditLog
from govsign.services.metrics import TIMESTAMPS
from govsign.storage.engine import Database
from govsign.storage.ocsp_reader import OCSPStatusReader, StoredResponseReader
from govsign.storage.ports import SQLPorts
from govsign.tsa.authority import TimeStampAuthority, TSAPolicy, TSASigner, rejection

log = logging.getLogger(__name__)

#: How long a process keeps a responder or TSA credential before reading it again.
CREDENTIAL_RELOAD_SECONDS = 30.0
#: Requests whose pre-produced response key is remembered (by request bytes).
PRE_PRODUCED_KEY_CACHE_SIZE = 20000


class RefusalAudit(Protocol):
    """Audits one refused protocol request (see :class:`govsign.services.outage.HSMOutage`)."""

    def __call__(self, action: str, *, object_type: str, object_id: str, reason: str) -> None: ...


class OCSPService:
    """Answers OCSP requests: from pre-produced responses when it can, signed live otherwise."""

    def __init__(
        self,
        *,
        database: Database,
        keystore: KeyStore,
        clock: Clock,
        policy: OCSPPolicy,
        refusals: RefusalAudit | None = None,
    ) -> None:
        self._database = database
        self._keystore = keystore
        self._clock = clock
        self.policy = policy
        self._refusals = refusals
        self._responder: OCSPResponder | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        self._pre_produced_keys: dict[bytes, tuple[str, str, str]] = {}
        self._stored = StoredResponseReader(database.engine)
        self._status = OCSPStatusReader(database.engine, self._stored)

    def responder(self, *, reload: bool = False) -> OCSPResponder | None:
        """The responder with a directory of our CAs and their current responder certificates."""
        with self._lock:
            fresh = time.monotonic() - self._loaded_at < CREDENTIAL_RELOAD_SECONDS
            if self._responder is not None and fresh and not reload:
                return self._responder
            with self._database.read_only() as ports:
                cas = ports.cas.list_cas()
                responders = [r for r in (self._credential(ports, ca) for ca in cas) if r is not None]
            if not cas:
                return None
            self._responder = OCSPResponder(
                keystore=self._keystore, clock=self._clock, policy=self.policy, directory=OCSPDirectory(cas, responders)
            )
            self._loaded_at = time.monotonic()
            self._pre_produced_keys = {}
            return self._responder

    def _credential(self, ports: SQLPorts, ca: CARecord) -> ResponderCredential | None:
        if ca.role is not CARole.ISSUING:
            return None
        record = ports.certificates.find_service_certificate(issuer_id=ca.id, profile=OCSP_RESPONDER.name)
        if record is None or record.key is None or record.not_after <= self._clock.now():
            return None
        return ResponderCredential(
            ca_id=ca.id,
            certificate_der=record.certificate_der,
            serial_hex=record.serial_hex,
            key=record.key,
            not_after=record.not_after,
        )

    def pre_produced(self, request_der: bytes) -> OCSPAnswer | None:
        """The hot path: a fresh pre-produced response for a request without a nonce, read with
        one query and no HSM; None when the request needs the full path (or anything fails: the
        full path then answers). The database is read on every call, so a revocation is
        visible as soon as it commits."""
        try:
            key = self._pre_produced_keys.get(request_der)
            if key is None:
                responder = self.responder()
                if responder is None:
                    return None
                key = responder.pre_produced_key(request_der)
                if key is None:
                    return None  # not cached: requests with a nonce are all different
                if len(self._pre_produced_keys) >= PRE_PRODUCED_KEY_CACHE_SIZE:
                    self._pre_produced_keys.clear()
                self._pre_produced_keys[request_der] = key
            stored = self._stored.fetch(*key)
        except Exception:  # noqa: BLE001 - the full path answers, and maps the failure
            return None
        if stored is None:
            return None
        der, this_update, next_update = stored
        if not this_update <= self._clock.now() < next_update:
            return None
        return OCSPAnswer(
            der=der, status="successful", this_update=this_update, next_update=next_update, pre_produced=True
        )

    def answer(self, request_der: bytes) -> OCSPAnswer:
        """Answer one OCSP request; never raises (failures are OCSP response statuses, and a
        ``tryLater`` is audited)."""
        answer = self.pre_produced(request_der) or self._live(request_der)
        if answer.status == "try_later" and self._refusals is not None:
            self._refusals("ocsp.respond", object_type="ocsp", object_id="responder", reason="tryLater")
        return answer

    def _live(self, request_der: bytes) -> OCSPAnswer:
        try:
            responder = self.responder()
            if responder is None:
                return unsigned_response("unauthorized")
            return responder.respond(request_der, self._status)
        except Exception as exc:  # noqa: BLE001 - every failure is an OCSP response status
            return failure_response(exc)

    def answer_now(self, request_der: bytes) -> OCSPAnswer | None:
        """The answer when it costs no wait (local database; the HSM free at once), else None."""
        if not self._stored.is_local:
            return None
        answer = self.pre_produced(request_der)
        if answer is not None:
            return answer
        if not self._keystore.available:
            return None
        with self._keystore.held(wait=False) as free:
            if not free:
                return None
            answer = self._live(request_der)
        return None if answer.status == "try_later" else answer

    def listener(self, ports: SQLPorts) -> OCSPPreProducer | None:
        """What keeps the pre-produced responses in step with one unit of work's changes."""
        responder = self.responder()
        return OCSPPreProducer(responder, ports) if responder is not None else None

    def refresh(self, *, limit: int = 1000, batch: int = 100) -> int:
        """Pre-produce responses that are missing, expiring or signed by an old responder, in
        short transactions of ``batch`` certificates (SQLite holds its write lock meanwhile)."""
        responder = self.responder()
        if responder is None:
            return 0
        done = 0
        with self._database.read_only() as ports:
            credentials = [c for c in (responder.directory.responder(ca.id) for ca in ports.cas.list_cas()) if c]
        for credential in credentials:
            while done < limit:
                with self._database.unit_of_work() as ports:
                    records = ports.ocsp.certificates_needing_responses(
                        issuer_id=credential.ca_id,
                        refresh_before=self._clock.now() + self.policy.refresh_before,
                        now=self._clock.now(),
                        responder_serial_hex=credential.serial_hex,
                        limit=min(batch, limit - done),
                    )
                    for record in records:
                        status = ports.ocsp.certificate_status(record.issuer_id, record.serial_hex)
                        responder.pre_produce(record, status[1] if status is not None else None, ports.ocsp)
                        done += 1
                if len(records) < batch:
                    break
        return done


class OCSPPreProducer:
    """Keeps the pre-produced OCSP responses in step with issuance and revocation, inside the
    transaction that makes the change (a CA :class:`~govsign.pki.authority.CertificateStatusListener`)."""

    def __init__(self, responder: OCSPResponder, ports: SQLPorts) -> None:
        self._responder = responder
        self._ports = ports

    def certificate_issued(self, record: CertificateRecord) -> None:
        try:
            self._responder.pre_produce(record, None, self._ports.ocsp)
        except GovsignError as exc:  # the refresher will produce it later; issuance goes on
            log.warning("could not pre-produce OCSP responses for %s: %s", record.serial_hex, exc.message)

    def status_changed(self, record: CertificateRecord, revocation: RevocationRecord | None) -> None:
        self._responder.status_changed(record, revocation, self._ports.ocsp)


class TimeStampService:
    """The RFC 3161 TSA with the newest valid ``tsa`` certificate of an issuing CA."""

    def __init__(
        self,
        *,
        database: Database,
        keystore: KeyStore,
        clock: Clock,
        policy: TSAPolicy,
        refusals: RefusalAudit | None = None,
    ) -> None:
        self._database = database
        self._keystore = keystore
        self._clock = clock
        self._policy = policy
        self._refusals = refusals
        self._tsa: TimeStampAuthority | None = None
        self._loaded_at = 0.0
        self._not_after: dt.datetime | None = None
        self._lock = threading.Lock()

    def authority(self, *, reload: bool = False) -> TimeStampAuthority | None:
        """The TSA (None without a valid certificate), read again every 30 s and when it expires."""
        with self._lock:
            if self._fresh() and not reload:
                return self._tsa
            signer, self._not_after = self._signer()
            self._tsa = (
                TimeStampAuthority(keystore=self._keystore, clock=self._clock, signer=signer, policy=self._policy)
                if signer is not None
                else None
            )
            self._loaded_at = time.monotonic()
            return self._tsa

    def _fresh(self) -> bool:
        return (
            self._tsa is not None
            and time.monotonic() - self._loaded_at < CREDENTIAL_RELOAD_SECONDS
            and self._not_after is not None
            and self._clock.now() < self._not_after
        )

    def _signer(self) -> tuple[TSASigner | None, dt.datetime | None]:
        now = self._clock.now()
        with self._database.read_only() as ports:
            cas = {ca.id: ca for ca in ports.cas.list_cas()}
            for ca in cas.values():
                if ca.role is not CARole.ISSUING:
                    continue
                record = ports.certificates.find_service_certificate(issuer_id=ca.id, profile=TSA.name)
                if record is None or record.key is None or not record.not_before <= now < record.not_after:
                    continue
                chain = [ca.certificate_der]
                parent = cas.get(ca.parent_id) if ca.parent_id is not None else None
                if parent is not None:
                    chain.append(parent.certificate_der)
                signer = TSASigner(key=record.key, certificate_der=record.certificate_der, chain_der=tuple(chain))
                return signer, record.not_after
        return None, None

    def answer(self, query_der: bytes) -> bytes:
        """Answer one RFC 3161 time-stamp request; never raises (failures are PKIStatus
        rejections). Grants are not audited one by one (high volume): counted in
        govsign_timestamps_total; a systemFailure (the TSA cannot sign) is audited."""
        try:
            tsa = self.authority()
            if tsa is None:
                reply = rejection("system_failure", "The time-stamping authority has no valid certificate.")
            else:
                reply = tsa.answer(query_der)
        except GovsignError as exc:
            log.warning("time-stamp request failed: %s", exc.message)
            reply = rejection("system_failure", "The time-stamping authority is unavailable; try again later.")
        except Exception:
            log.exception("time-stamp request failed")
            reply = rejection("system_failure", "The time-stamping authority is unavailable; try again later.")
        TIMESTAMPS.labels(reply.outcome).inc()
        if reply.outcome == "system_failure" and self._refusals is not None:
            self._refusals("tsa.timestamp", object_type="tsa", object_id="tsa", reason="systemFailure")
        return reply.der

    def answer_now(self, query_der: bytes) -> bytes | None:
        """The answer when it costs no wait (the credential in memory; the HSM free at once)."""
        with self._lock:
            tsa = self._tsa if self._fresh() else None
        if tsa is None or not self._keystore.available:
            return None
        with self._keystore.held(wait=False) as free:
            if not free:
                return None
            reply = tsa.answer(query_der)
        if reply.outcome == "system_failure":
            return None  # answered (and audited) in the worker thread
        TIMESTAMPS.labels(reply.outcome).inc()
        return reply.der


class CRLService:
    """Signs complete and delta CRLs when they are due, and serves the latest ones."""

    def __init__(
        self,
        *,
        database: Database,
        keystore: KeyStore,
        clock: Clock,
        policy: CRLPolicy,
        urls: PublicURLs,
        linter: CRLLinter | None,
        audit: AuditLog,
    ) -> None:
        self._database = database
        self._clock = clock
        self._audit = audit
        self._publisher_on = functools.partial(
            CRLPublisher, keystore=keystore, clock=clock, policy=policy, urls=urls, linter=linter
        )

    def _publisher(self, ports: SQLPorts) -> CRLPublisher:
        return self._publisher_on(store=ports.crls)

    def publish(self, *, force: bool = False) -> dict[str, PublishedCRLs]:
        """Sign fresh complete and delta CRLs for every CA that is due (or all, with ``force``)."""
        published: dict[str, PublishedCRLs] = {}
        with self._database.read_only() as ports:
            due = [
                ca
                for ca in ports.cas.list_cas()
                if force or ports.crls.pending_changes(ca.id) or self._publisher(ports).is_due(ca)
            ]
        for ca in due:
            with self._database.unit_of_work() as ports:
                result = self._publisher(ports).publish(ca, force=force)
                if result is not None:
                    self._audit.record(
                        ports,
                        "crl.publish",
                        actor="system:crl-publisher",
                        object_type="ca",
                        object_id=ca.id,
                        details={
                            "crl_number": result.full.number,
                            "delta_crl_number": result.delta.number,
                            "entries": result.full.entry_count,
                        },
                    )
            if result is not None:
                published[ca.id] = result
        return published

    def latest(self, ca_id: str, *, delta: bool) -> StoredCRL | None:
        with self._database.read_only() as ports:
            return ports.crls.latest_crl(ca_id, delta=delta)

    def current(self, ca: CARecord) -> Sequence[StoredCRL] | None:
        """The CA's latest complete CRL and the delta CRL on it, when both are current and the
        delta applies to the complete one (RFC 5280 5.2.4); None otherwise."""
        now = self._clock.now()
        full = self.latest(ca.id, delta=False)
        delta = self.latest(ca.id, delta=True)
        if (
            full is not None
            and delta is not None
            and delta.base_number is not None
            and delta.base_number <= full.number < delta.number
            and now < full.next_update
            and now < delta.next_update
        ):
            return full, delta
        return None

    def is_current(self, crl: StoredCRL) -> bool:
        return self._clock.now() < crl.next_update
