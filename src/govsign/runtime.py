"""Composition of the service from its settings: database, keystore, clock, linter, authority.

Both front ends (``api`` and ``cli``) build a :class:`Runtime` and run operations through
:meth:`Runtime.execute`, which gives each operation one unit of work, undoes HSM side effects
when the transaction does not commit, and records refused operations in the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from govsign.clock import Clock, SystemClock
from govsign.config import Settings
from govsign.der import certificate_to_asn1
from govsign.errors import (
    ConfigurationError,
    ErrorKind,
    GovsignError,
    HSMLoginError,
    InvalidInputError,
    UnavailableError,
)
from govsign.keystore.pkcs11 import PKCS11KeyStore, reload_module_after_token_change
from govsign.keystore.token_init import create_token
from govsign.metrics import CA_OPERATIONS, TIMESTAMPS
from govsign.pki.authority import (
    AuthorityPolicy,
    CertificateAuthority,
    Progress,
)
from govsign.pki.crl import CRLPolicy, CRLPublisher, PublishedCRLs, StoredCRL
from govsign.pki.lint import PKILintCertificateLinter, PKILintCRLLinter
from govsign.pki.ocsp import (
    OCSPAnswer,
    OCSPDirectory,
    OCSPPolicy,
    OCSPResponder,
    ResponderCredential,
    unsigned_response,
)
from govsign.pki.ports import AuditContext, AuditEvent, CARecord, CARole, CertificateRecord, RevocationRecord
from govsign.pki.profiles import OCSP_RESPONDER, TSA
from govsign.signing.evidence import RevocationEvidence
from govsign.storage.engine import Database
from govsign.storage.migrate import is_at_head, upgrade_to_head
from govsign.storage.ocsp_reader import OCSPStatusReader, StoredResponseReader
from govsign.storage.repositories import SQLPorts
from govsign.tsa.authority import TimeStampAuthority, TSAPolicy, TSASigner, rejection

log = logging.getLogger(__name__)

T = TypeVar("T")

SOFTHSM2_CONF_TEMPLATE = """\
# SoftHSM2 configuration of the govsign embedded default (see hsm/softhsm2.conf.template).
directories.tokendir = {token_dir}
objectstore.backend = file
log.level = ERROR
slots.removable = false
"""


def _write_secret(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")


def _read_secret(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"The PIN file {path} must be readable by its owner only (mode 0600).")
    return path.read_text(encoding="utf-8").splitlines()[0].strip()


_EMBEDDED_CONF_IN_USE: str | None = None


def prepare_embedded_hsm(settings: Settings, *, create: bool) -> None:
    """Lay out SoftHSM2's configuration and token store under the data dir and point
    SOFTHSM2_CONF at it (before the library is loaded).

    SoftHSM2 reads SOFTHSM2_CONF once, when the library is initialised: one process can use the
    token store of one data dir only, and opening another is refused rather than silently
    using the first one's tokens.
    """
    global _EMBEDDED_CONF_IN_USE
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.token_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    conf = settings.softhsm2_conf_path
    if not conf.exists():
        if not create:
            raise ConfigurationError(
                f"There is no SoftHSM2 configuration at {conf}; run 'govsign init' first "
                "(or set GOVSIGN_DATA_DIR to an initialised data dir)."
            )
        conf.write_text(SOFTHSM2_CONF_TEMPLATE.format(token_dir=settings.token_dir.resolve()), encoding="utf-8")
    wanted = str(conf.resolve())
    if _EMBEDDED_CONF_IN_USE is not None and wanted != _EMBEDDED_CONF_IN_USE:
        raise ConfigurationError(
            f"This process already uses the SoftHSM2 token store of {Path(_EMBEDDED_CONF_IN_USE).parent}; "
            "one process serves one GOVSIGN_DATA_DIR."
        )
    os.environ["SOFTHSM2_CONF"] = wanted
    _EMBEDDED_CONF_IN_USE = wanted


def resolve_pin(settings: Settings, *, create: bool) -> str:
    """The user PIN: from GOVSIGN_HSM_PIN(_FILE), or the one generated for the embedded default."""
    configured = settings.configured_pin()
    if configured is not None:
        return configured
    if not settings.embedded_hsm:
        raise ConfigurationError("GOVSIGN_HSM_PIN or GOVSIGN_HSM_PIN_FILE must be set when GOVSIGN_PKCS11_MODULE is.")
    path = settings.generated_pin_path
    if path.exists():
        return _read_secret(path)
    if not create:
        raise ConfigurationError(
            f"No HSM PIN is configured and none was generated at {path}; set GOVSIGN_HSM_PIN or run 'govsign init'."
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_secret(path, secrets.token_urlsafe(18))
    return _read_secret(path)


def policy_from_settings(settings: Settings) -> AuthorityPolicy:
    return AuthorityPolicy(
        public_base_url=settings.public_base_url,
        certificate_policy_oid=settings.certificate_policy_oid,
        subscriber_default_validity_days=settings.subscriber_default_validity_days,
        ocsp_responder_validity_days=settings.ocsp_responder_validity_days,
        tsa_validity_days=settings.tsa_validity_days,
    )


class Runtime:
    """The opened service: database, keystore and the CA's policy."""

    def __init__(self, *, settings: Settings, database: Database, keystore: PKCS11KeyStore, clock: Clock) -> None:
        self.settings = settings
        self.database = database
        self.keystore = keystore
        self.clock = clock
        self.policy = policy_from_settings(settings)
        self.linter = PKILintCertificateLinter() if settings.lint_with_pkilint else None
        self.crl_linter = PKILintCRLLinter() if settings.lint_with_pkilint else None
        self.crl_policy = CRLPolicy(
            validity=dt.timedelta(hours=settings.crl_validity_hours),
            refresh_before=dt.timedelta(hours=settings.crl_refresh_before_hours),
            delta_base_max_age=dt.timedelta(hours=settings.crl_delta_base_max_age_hours),
        )
        self.ocsp_policy = OCSPPolicy(
            response_validity=dt.timedelta(minutes=settings.ocsp_response_validity_minutes),
            refresh_before=dt.timedelta(minutes=settings.ocsp_refresh_before_minutes),
            max_cert_ids=settings.ocsp_max_cert_ids,
        )
        self._responder: OCSPResponder | None = None
        self._fast_keys: dict[bytes, tuple[str, str, str]] = {}
        self._stored_responses = StoredResponseReader(database.engine)
        self._status_reader = OCSPStatusReader(database.engine, self._stored_responses)
        self._responder_loaded_at = 0.0
        self._responder_lock = threading.Lock()
        self.tsa_policy = TSAPolicy(policy_oid=settings.tsa_policy_oid, accuracy_seconds=settings.tsa_accuracy_seconds)
        self._tsa: TimeStampAuthority | None = None
        self._tsa_loaded_at = 0.0
        self._tsa_not_after: dt.datetime | None = None
        self._tsa_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, *, initialize: bool = False, clock: Clock | None = None) -> Runtime:
        """Open the database and log in to the token; with ``initialize``, create what is missing
        (data dir, SoftHSM2 token, PIN, schema). Fails fast with one sentence naming the setting."""
        if settings.embedded_database:
            sqlite_file = settings.data_dir / "govsign.sqlite3"
            if not initialize and not sqlite_file.exists():
                raise ConfigurationError(
                    f"There is no govsign database in {settings.data_dir} (GOVSIGN_DATA_DIR); run 'govsign init' first."
                )
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        database = Database(settings.sqlalchemy_url())
        try:
            database.check()
            if initialize:
                upgrade_to_head(database.engine)
            elif not is_at_head(database.engine):
                raise ConfigurationError("The database schema is missing or out of date; run 'govsign init'.")
            keystore = open_keystore(settings, create=initialize)
        except GovsignError as exc:
            if isinstance(exc, HSMLoginError):
                record_failure(
                    database, clock or SystemClock(), "hsm.login", "system", "token", settings.hsm_token_label, exc
                )
            database.dispose()
            raise
        except BaseException:
            database.dispose()
            raise
        return cls(settings=settings, database=database, keystore=keystore, clock=clock or SystemClock())

    def authority(
        self, ports: SQLPorts, progress: Progress | None = None, audit_context: AuditContext | None = None
    ) -> CertificateAuthority:
        responder = self.ocsp_responder()
        return CertificateAuthority(
            ports=ports,
            keystore=self.keystore,
            clock=self.clock,
            policy=self.policy,
            linter=self.linter,
            progress=progress or (lambda _message: None),
            status_listener=_OCSPPreProducer(responder, ports) if responder is not None else None,
            audit_context=audit_context,
        )

    # -- status services --------------------------------------------------------------------

    RESPONDER_RELOAD_SECONDS = 30.0

    def ocsp_responder(self, *, reload: bool = False) -> OCSPResponder | None:
        """The OCSP responder with a directory of our CAs and their current responder certificates
        (reloaded every 30 s, so a rollover made by another process is picked up)."""
        with self._responder_lock:
            fresh = time.monotonic() - self._responder_loaded_at < self.RESPONDER_RELOAD_SECONDS
            if self._responder is not None and fresh and not reload:
                return self._responder
            with self.database.read_only() as ports:
                cas = ports.cas.list_cas()
                responders = [r for r in (self._responder_credential(ports, ca) for ca in cas) if r is not None]
            if not cas:
                return None
            self._responder = OCSPResponder(
                keystore=self.keystore,
                clock=self.clock,
                policy=self.ocsp_policy,
                directory=OCSPDirectory(cas, responders),
            )
            self._responder_loaded_at = time.monotonic()
            self._fast_keys = {}
            return self._responder

    def _responder_credential(self, ports: SQLPorts, ca: CARecord) -> ResponderCredential | None:
        if ca.role is not CARole.ISSUING:
            return None
        record = ports.certificates.find_service_certificate(issuer_id=ca.id, profile=OCSP_RESPONDER.name)
        if record is None or record.key is None or record.not_after <= self.clock.now():
            return None
        return ResponderCredential(
            ca_id=ca.id,
            certificate_der=record.certificate_der,
            serial_hex=record.serial_hex,
            key=record.key,
            not_after=record.not_after,
        )

    FAST_PATH_CACHE_SIZE = 20000

    def answer_ocsp_pre_produced(self, request_der: bytes) -> OCSPAnswer | None:
        """The hot path: a fresh pre-produced response for a request without a nonce, read with
        one query and no HSM; None when the request needs the full path. The database is read
        on every call, so a revocation is visible as soon as it commits."""
        key = self._fast_keys.get(request_der)
        if key is None:
            responder = self.ocsp_responder()
            if responder is None:
                return None
            found = responder.pre_produced_key(request_der)
            if found is None:
                return None  # not cached: requests with a nonce are all different
            if len(self._fast_keys) >= self.FAST_PATH_CACHE_SIZE:
                self._fast_keys.clear()
            self._fast_keys[request_der] = key = found
        try:
            stored = self._stored_responses.fetch(*key)
        except GovsignError:
            return None
        if stored is None:
            return None
        der, this_update, next_update = stored
        now = self.clock.now()
        if not this_update <= now < next_update:
            return None
        return OCSPAnswer(
            der=der, status="successful", this_update=this_update, next_update=next_update, pre_produced=True
        )

    @property
    def ocsp_fast_path_is_local(self) -> bool:
        return self._stored_responses.is_local

    def answer_ocsp(self, request_der: bytes) -> OCSPAnswer:
        """Answer one OCSP request; never raises (protocol errors are OCSP statuses)."""
        try:
            responder = self.ocsp_responder()
            if responder is None:
                return unsigned_response("unauthorized")
            return responder.respond(request_der, self._status_reader)
        except GovsignError as exc:
            status = "try_later" if exc.kind is ErrorKind.UNAVAILABLE else "internal_error"
            return unsigned_response(status)
        except Exception:
            log.exception("OCSP answer failed")
            return unsigned_response("try_later")

    # -- time-stamping ----------------------------------------------------------------------

    def time_stamp_authority(self, *, reload: bool = False) -> TimeStampAuthority | None:
        """The TSA with the newest valid ``tsa`` certificate of the issuing CA (reloaded every
        30 s, like the OCSP responder, so a new TSA certificate is picked up); None without one."""
        with self._tsa_lock:
            fresh = (
                time.monotonic() - self._tsa_loaded_at < self.RESPONDER_RELOAD_SECONDS
                and self._tsa_not_after is not None
                and self.clock.now() < self._tsa_not_after
            )
            if self._tsa is not None and fresh and not reload:
                return self._tsa
            signer, self._tsa_not_after = self._tsa_signer()
            self._tsa = (
                TimeStampAuthority(keystore=self.keystore, clock=self.clock, signer=signer, policy=self.tsa_policy)
                if signer is not None
                else None
            )
            self._tsa_loaded_at = time.monotonic()
            return self._tsa

    def _tsa_signer(self) -> tuple[TSASigner | None, dt.datetime | None]:
        now = self.clock.now()
        with self.database.read_only() as ports:
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

    def answer_timestamp(self, query_der: bytes) -> bytes:
        """Answer one RFC 3161 time-stamp request; never raises (failures are PKIStatus
        rejections). Not audited one by one (high volume): counted in govsign_timestamps_total."""
        try:
            tsa = self.time_stamp_authority()
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
        return reply.der

    def publish_crls(self, *, force: bool = False) -> dict[str, PublishedCRLs]:
        """Sign fresh complete and delta CRLs for every CA that is due (or all, with ``force``)."""
        published: dict[str, PublishedCRLs] = {}
        with self.database.read_only() as ports:
            cas = ports.cas.list_cas()
            due = [
                ca for ca in cas if force or ports.crls.pending_changes(ca.id) or self._crl_publisher(ports).is_due(ca)
            ]
        for ca in due:
            with self.database.unit_of_work() as ports:
                result = self._crl_publisher(ports).publish(ca, force=force)
                if result is not None:
                    ports.audit.append(
                        AuditEvent(
                            action="crl.publish",
                            actor="system:crl-publisher",
                            object_type="ca",
                            object_id=ca.id,
                            details={
                                "crl_number": result.full.number,
                                "delta_crl_number": result.delta.number,
                                "entries": result.full.entry_count,
                            },
                        ),
                        at=self.clock.now(),
                    )
            if result is not None:
                published[ca.id] = result
        return published

    def _crl_publisher(self, ports: SQLPorts) -> CRLPublisher:
        return CRLPublisher(
            store=ports.crls,
            keystore=self.keystore,
            clock=self.clock,
            policy=self.crl_policy,
            urls=self.policy.urls,
            linter=self.crl_linter,
        )

    def latest_crl(self, ca_id: str, *, delta: bool) -> StoredCRL | None:
        with self.database.read_only() as ports:
            return ports.crls.latest_crl(ca_id, delta=delta)

    # -- long-term validation evidence ------------------------------------------------------

    def revocation_evidence(self, certificates_der: Sequence[bytes], *, include_tsa: bool = True) -> RevocationEvidence:
        """Revocation evidence from our own status services for PAdES B-LT/B-LTA: an OCSP
        response of our responder for each certificate issued by an issuing CA, and the root's
        latest complete CRL (ARL) with its delta CRL for each CA certificate issued by a root
        (published first when there are none or they have expired). With ``include_tsa``, the
        current TSA certificate and its chain are covered too (an LT signature embeds the status
        of its time-stamp's signer). ``certificates`` holds the given certificates and the CA,
        OCSP responder and TSA certificates that validation needs.

        Raises InvalidInputError for a certificate none of our CAs issued, UnavailableError when
        a response or CRL cannot be had.
        """
        with self.database.read_only() as ports:
            cas = ports.cas.list_cas()
        loaded = [(ca, x509.load_der_x509_certificate(ca.certificate_der)) for ca in cas]
        wanted = list(dict.fromkeys(bytes(der) for der in certificates_der))
        if include_tsa:
            tsa = self.time_stamp_authority()
            if tsa is None:
                raise UnavailableError("The time-stamping authority has no valid certificate.")
            for der in (tsa.signer.certificate_der, *tsa.signer.chain_der):
                if der not in wanted:
                    wanted.append(der)
        ocsp_responses: list[bytes] = []
        crls: list[bytes] = []
        extra: list[bytes] = []
        for der in wanted:
            certificate = _load_certificate_for_evidence(der)
            issuer = _issuing_ca(certificate, loaded)
            if issuer is None:
                raise InvalidInputError("A certificate was not issued by this service's certificate authorities.")
            ca, ca_certificate = issuer
            if certificate == ca_certificate:
                continue  # a self-signed root is a trust anchor: no status to show
            if ca.role is CARole.ROOT:
                crls.extend(self._current_crls(ca))
            else:
                response = self._ocsp_evidence(certificate, ca_certificate)
                ocsp_responses.append(response)
                extra.extend(_ocsp_response_certificates(response))
            extra.append(ca.certificate_der)
            if ca.parent_id is not None:
                extra.extend(other.certificate_der for other in cas if other.id == ca.parent_id)
        if ocsp_responses:
            responder = self.ocsp_responder()
            if responder is not None:
                extra.extend(
                    credential.certificate_der
                    for credential in (responder.directory.responder(ca.id) for ca in cas)
                    if credential is not None
                )
        return RevocationEvidence(
            ocsp_responses=tuple(dict.fromkeys(ocsp_responses)),
            crls=tuple(dict.fromkeys(crls)),
            certificates=tuple(dict.fromkeys([*wanted, *extra])),
        )

    def _ocsp_evidence(self, certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """Our responder's DER OCSPResponse (status good or revoked) for one certificate."""
        request_der = _ocsp_request(certificate, issuer)
        answer = self.answer_ocsp_pre_produced(request_der) or self.answer_ocsp(request_der)
        if answer.status != "successful":
            raise UnavailableError(
                f"The OCSP responder cannot give the status of certificate {certificate.serial_number:x} "
                f"right now ({answer.status}); try again later."
            )
        single = asn1_ocsp.OCSPResponse.load(answer.der).basic_ocsp_response["tbs_response_data"]["responses"][0]
        if single["cert_status"].name == "unknown":
            raise UnavailableError(
                f"The OCSP responder does not know certificate {certificate.serial_number:x}; try again later."
            )
        return answer.der

    def _current_crls(self, ca: CARecord) -> list[bytes]:
        """The CA's latest complete CRL and the delta CRL on it (the complete CRL names the delta
        in its Freshest CRL extension, so validators need both), published first when missing,
        expired or out of step."""
        for attempt in range(2):
            now = self.clock.now()
            full = self.latest_crl(ca.id, delta=False)
            delta = self.latest_crl(ca.id, delta=True)
            if (
                full is not None
                and delta is not None
                and delta.base_number is not None
                and delta.base_number <= full.number < delta.number  # RFC 5280 5.2.4: the delta applies
                and now < full.next_update
                and now < delta.next_update
            ):
                return [full.der, delta.der]
            if attempt == 0:
                self.publish_crls(force=full is not None and now < full.next_update)
        raise UnavailableError(f"No current CRL of CA {ca.id} can be had right now; try again later.")

    def ca_certificate(self, ca_id: str) -> bytes | None:
        with self.database.read_only() as ports:
            ca = ports.cas.get_ca(ca_id)
            return ca.certificate_der if ca is not None else None

    def refresh_ocsp_responses(self, *, limit: int = 1000, batch: int = 100) -> int:
        """Pre-produce responses that are missing, expiring or signed by an old responder, in
        short transactions of ``batch`` certificates (SQLite holds its write lock meanwhile)."""
        responder = self.ocsp_responder()
        if responder is None:
            return 0
        done = 0
        with self.database.read_only() as ports:
            credentials = [
                c for c in (responder.directory.responder(ca.id) for ca in ports.cas.list_cas()) if c is not None
            ]
        for credential in credentials:
            while done < limit:
                refresh_before = self.clock.now() + self.ocsp_policy.refresh_before
                with self.database.unit_of_work() as ports:
                    records = ports.ocsp.certificates_needing_responses(
                        issuer_id=credential.ca_id,
                        refresh_before=refresh_before,
                        now=self.clock.now(),
                        responder_serial_hex=credential.serial_hex,
                        limit=min(batch, limit - done),
                    )
                    for record in records:
                        status = ports.ocsp.certificate_status(record.issuer_id, record.serial_hex)
                        revocation = status[1] if status is not None else None
                        responder.pre_produce(record, revocation, ports.ocsp)
                        done += 1
                if len(records) < batch:
                    break
        return done

    def rollover_ocsp_responder(self) -> CertificateRecord | None:
        """Issue a new responder certificate (new HSM key) when the current one has less than a
        third of its validity left; returns the new certificate, or None when none was due."""
        validity = dt.timedelta(days=self.settings.ocsp_responder_validity_days)
        issued: CertificateRecord | None = None
        with self.database.unit_of_work() as ports:
            for ca in ports.cas.list_cas():
                if ca.role is not CARole.ISSUING:
                    continue
                ports.crls.lock_crl_state(ca.id)  # one rollover at a time per CA, across processes
                current = ports.certificates.find_service_certificate(issuer_id=ca.id, profile=OCSP_RESPONDER.name)
                if current is not None and current.not_after - self.clock.now() > validity / 3:
                    continue
                if current is not None and current.not_after >= ca.not_after:
                    continue  # a new certificate could not outlive the current one (CA near its end)
                algorithm = current.key_algorithm if current is not None else None
                issued = self.authority(ports).issue_service_certificate(
                    ca, OCSP_RESPONDER, actor="system:ocsp-rollover", algorithm=algorithm
                )
        if issued is not None:
            self.ocsp_responder(reload=True)
        return issued

    def execute(
        self,
        operation: Callable[[CertificateAuthority], T],
        *,
        action: str,
        actor: str,
        object_id: str,
        progress: Progress | None = None,
        audit_context: AuditContext | None = None,
    ) -> T:
        """Run one CA operation in one transaction (see :meth:`execute_with_ports`)."""
        return self.execute_with_ports(
            lambda authority, _ports: operation(authority),
            action=action,
            actor=actor,
            object_id=object_id,
            progress=progress,
            audit_context=audit_context,
        )

    def execute_with_ports(
        self,
        operation: Callable[[CertificateAuthority, SQLPorts], T],
        *,
        action: str,
        actor: str,
        object_id: str,
        progress: Progress | None = None,
        audit_context: AuditContext | None = None,
    ) -> T:
        """Run one operation in one transaction, with the CA and the unit of work's ports.

        If the operation generated a key pair in the HSM and the transaction then fails to
        commit, the key pair is destroyed, so a failure leaves neither rows nor keys behind.
        Refusals (bad input, policy, state conflicts) are recorded as failed audit events in a
        transaction of their own.
        """
        authority: CertificateAuthority | None = None
        try:
            with self.database.unit_of_work() as ports:
                authority = self.authority(ports, progress, audit_context)
                result = operation(authority, ports)
            CA_OPERATIONS.labels(action, "success").inc()
            return result
        except BaseException as exc:
            CA_OPERATIONS.labels(action, "failure").inc()
            for generated in authority.generated_keys if authority is not None else []:
                try:
                    self.keystore.destroy_key_pair(generated)
                except GovsignError:
                    log.error("could not destroy key %s after a failed transaction", generated.label)
            if isinstance(exc, GovsignError) and exc.kind is not ErrorKind.UNAVAILABLE:
                record_failure(self.database, self.clock, action, actor, "certificate", object_id, exc, audit_context)
            raise

    def close(self) -> None:
        self.keystore.close()
        self.database.dispose()


class _OCSPPreProducer:
    """Keeps the pre-produced OCSP responses in step with issuance and revocation, inside the
    transaction that makes the change."""

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


def _load_certificate_for_evidence(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise InvalidInputError("A certificate to gather revocation evidence for is not DER X.509.") from None


def _issuing_ca(
    certificate: x509.Certificate, cas: Sequence[tuple[CARecord, x509.Certificate]]
) -> tuple[CARecord, x509.Certificate] | None:
    """The CA of ours whose key signed the certificate (by name and signature), or None."""
    for ca, ca_certificate in cas:
        if certificate.issuer != ca_certificate.subject:
            continue
        try:
            certificate.verify_directly_issued_by(ca_certificate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca, ca_certificate
    return None


def _ocsp_request(certificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSPRequest with one SHA-256 CertID and no nonce (so a pre-produced response fits)."""
    asn1_issuer = certificate_to_asn1(issuer)
    cert_id = asn1_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "issuer_name_hash": asn1_issuer.subject.sha256,
            "issuer_key_hash": asn1_issuer.public_key.sha256,
            "serial_number": certificate.serial_number,
        }
    )
    request = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    return bytes(request.dump())


def _ocsp_response_certificates(response_der: bytes) -> list[bytes]:
    """The certificates embedded in a BasicOCSPResponse (the responder's)."""
    basic = asn1_ocsp.OCSPResponse.load(response_der).basic_ocsp_response
    return [bytes(certificate.dump()) for certificate in basic["certs"] or []]


def open_keystore(settings: Settings, *, create: bool) -> PKCS11KeyStore:
    """Log in to the configured token; for the embedded default, create the token if asked."""
    if settings.embedded_hsm:
        prepare_embedded_hsm(settings, create=create)
    module = str(settings.module_path())
    pin = resolve_pin(settings, create=create)
    keystore = PKCS11KeyStore(module_path=module, token_label=settings.hsm_token_label, pin=pin)
    try:
        keystore.open()
    except ConfigurationError as exc:
        if not (create and settings.embedded_hsm and "No token labelled" in exc.message):
            raise
        so_pin_path = settings.generated_so_pin_path
        if not so_pin_path.exists():
            _write_secret(so_pin_path, secrets.token_urlsafe(18))
        create_token(
            module_path=module,
            token_label=settings.hsm_token_label,
            so_pin=_read_secret(so_pin_path),
            user_pin=pin,
            env=dict(os.environ),
        )
        reload_module_after_token_change(module)
        keystore.open()
    return keystore


def record_failure(
    database: Database,
    clock: Clock,
    action: str,
    actor: str,
    object_type: str,
    object_id: str,
    error: GovsignError,
    context: AuditContext | None = None,
) -> None:
    context = context or AuditContext()
    try:
        with database.unit_of_work() as ports:
            ports.audit.append(
                AuditEvent(
                    action=action,
                    actor=actor,
                    object_type=object_type,
                    object_id=object_id[:200],
                    outcome="denied" if error.kind in (ErrorKind.FORBIDDEN, ErrorKind.UNAUTHENTICATED) else "failure",
                    details={"error": error.kind.value, "message": error.message[:500]},
                    client_id=context.client_id,
                    agency_id=context.agency_id,
                    request_id=context.request_id,
                ),
                at=clock.now(),
            )
    except Exception:  # the refusal itself must reach the caller even if auditing fails
        log.exception("could not record a failed %s in the audit log", action)
