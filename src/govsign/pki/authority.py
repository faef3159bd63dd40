"""The certificate authority: the facade that the API and the CLI use.

One :class:`CertificateAuthority` works inside one unit of work (its ``ports``); the caller
commits. Every change writes its audit event through the same ports, so the change and its
audit record commit or roll back together.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography import x509

from govsign.clock import Clock
from govsign.der import certificate_der, certificate_pem
from govsign.errors import (
    AlreadyInitializedError,
    AlreadyRevokedError,
    ConflictError,
    InvalidInputError,
    InvalidStateTransitionError,
    NotFoundError,
    PolicyViolationError,
)
from govsign.keystore.api import KeyAlgorithm, KeyRef, KeyStore, PublicKey
from govsign.pki.csr import check_csr, key_algorithm_of
from govsign.pki.issuer import (
    CertificateKind,
    CertificateLinter,
    CertificateSpec,
    IssuerContext,
    PublicURLs,
    fingerprint_sha256,
    prepare,
    random_serial,
    serial_to_hex,
    spki_sha256,
)
from govsign.pki.names import name_to_text, normalise_name, parse_subject
from govsign.pki.ports import (
    AuditContext,
    AuditEvent,
    CAPorts,
    CARecord,
    CARole,
    CertificateRecord,
    CertificateStatus,
    RevocationReason,
    RevocationRecord,
)
from govsign.pki.profiles import (
    OCSP_RESPONDER,
    TSA,
    CertificateProfile,
    add_years,
    subscriber_profile,
)

ROOT_CA_ID = "root-1"
ISSUING_CA_ID = "issuing-1"
DEFAULT_ROOT_SUBJECT = "CN=govsign Root CA,O=govsign,C=VN"
DEFAULT_ISSUING_SUBJECT = "CN=govsign Issuing CA 1,O=govsign,C=VN"
DEFAULT_OCSP_SUBJECT = "CN=govsign OCSP Responder 1,O=govsign,C=VN"
DEFAULT_TSA_SUBJECT = "CN=govsign Time-Stamping Unit 1,O=govsign,C=VN"

_EMAIL_PATTERN = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

Progress = Callable[[str], None]


class CertificateStatusListener(Protocol):
    """Told of every issuance and status change, inside the same transaction (OCSP pre-production)."""

    def certificate_issued(self, record: CertificateRecord) -> None: ...
    def status_changed(self, record: CertificateRecord, revocation: RevocationRecord | None) -> None: ...


def _no_progress(_message: str) -> None:
    return None


@dataclass(frozen=True, kw_only=True)
class AuthorityPolicy:
    """The CA's policy settings (from the service settings; the core never reads them itself)."""

    public_base_url: str
    """Base URL for AIA, CRL distribution points and OCSP."""
    certificate_policy_oid: str
    """Certificate policy OID."""
    subscriber_default_validity_days: int = 730
    """Validity when a request names none."""
    ocsp_responder_validity_days: int = 30
    """Validity of the OCSP responder certificate."""
    tsa_validity_days: int = 1826
    """Validity of the TSA certificate."""

    @property
    def urls(self) -> PublicURLs:
        return PublicURLs(base_url=self.public_base_url)


@dataclass(frozen=True, kw_only=True)
class HierarchySpec:
    """What ``govsign init`` creates; None means the default (or, on a re-run, whatever exists)."""

    root_subject: str | None = None
    """Root CA subject (default CN=govsign Root CA,O=govsign,C=VN)."""
    root_algorithm: KeyAlgorithm | None = None
    """Root CA key (default RSA-4096)."""
    root_validity_years: int | None = None
    """Root CA validity (default 20 years)."""
    issuing_subject: str | None = None
    """Issuing CA subject."""
    issuing_algorithm: KeyAlgorithm | None = None
    """Issuing CA key (default RSA-3072)."""
    issuing_validity_years: int | None = None
    """Issuing CA validity (default 10 years)."""
    service_algorithm: KeyAlgorithm | None = None
    """Key of the OCSP responder and the TSA. Default: RSA-2048 for the OCSP responder (its
    responses are read by the widest range of relying-party software) and EC P-256 for the TSA
    (an ECDSA signature costs the HSM a fifth of an RSA-2048 one, and every time-stamp needs one;
    every signature validator accepts ECDSA time-stamp tokens)."""


@dataclass(frozen=True, kw_only=True)
class HierarchyResult:
    """The CA hierarchy after ``init``."""

    created: bool
    """False when everything existed already and nothing changed."""
    root: CARecord
    """The root CA."""
    issuing: CARecord
    """The issuing CA."""
    ocsp_responder: CertificateRecord
    """The OCSP responder certificate."""
    tsa: CertificateRecord
    """The TSA certificate."""


@dataclass(frozen=True, kw_only=True)
class IssuanceRequest:
    """A request for a subscriber certificate."""

    profile: str
    """individual, organization or device."""
    subject: str | None = None
    """RFC 4514 subject; required with generate_key, defaults to the CSR's subject."""
    email: str | None = None
    """rfc822Name for the subject alternative name."""
    csr: bytes | None = None
    """PKCS#10 request (PEM or DER)."""
    generate_key: KeyAlgorithm | None = None
    """Generate the subscriber's key pair in the HSM instead of taking a CSR."""
    validity_days: int | None = None
    """Validity in days (default from the policy; at most 5 years)."""
    issuer_id: str | None = None
    """Issuing CA; default the active issuing CA."""
    agency_id: str | None = None
    """The subscriber's agency."""
    actor: str
    """Who asks."""


@dataclass(frozen=True, kw_only=True)
class CertificateView:
    """A certificate with its current status, as shown to people and scripts."""

    record: CertificateRecord
    """The stored certificate."""
    status: CertificateStatus
    """Effective status (expired derived from notAfter)."""
    revocation: RevocationRecord | None
    """The revocation or hold in force, if any."""
    replaces_serial: str | None = None
    """Serial of the certificate this one renewed or re-keyed."""

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(x509.load_der_x509_certificate(self.record.certificate_der))


@dataclass(frozen=True, kw_only=True)
class IssuedCertificate:
    """The result of an issuance."""

    record: CertificateRecord
    """The stored certificate."""
    certificate: x509.Certificate
    """The signed certificate."""
    generated_key: KeyRef | None
    """The key pair generated in the HSM for this issuance (to undo it if the commit fails)."""

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)


class CertificateAuthority:
    """CA operations inside one unit of work."""

    def __init__(
        self,
        *,
        ports: CAPorts,
        keystore: KeyStore,
        clock: Clock,
        policy: AuthorityPolicy,
        linter: CertificateLinter | None,
        progress: Progress = _no_progress,
        status_listener: CertificateStatusListener | None = None,
        audit_context: AuditContext | None = None,
    ) -> None:
        self._status_listener = status_listener
        self._audit_context = audit_context or AuditContext()
        #: Key pairs generated in the HSM by this unit of work; the caller destroys them if the
        #: transaction does not commit.
        self.generated_keys: list[KeyRef] = []
        self._ports = ports
        self._keystore = keystore
        self._clock = clock
        self._policy = policy
        self._linter = linter
        self._progress = progress

    # -- hierarchy --------------------------------------------------------------------------

    def initialize(self, spec: HierarchySpec, *, actor: str) -> HierarchyResult:
        """Create the root CA, issuing CA, OCSP responder and TSA once; refuse different parameters."""
        existing_root = self._ports.cas.get_ca(ROOT_CA_ID)
        existing_issuing = self._ports.cas.get_ca(ISSUING_CA_ID)
        if existing_root is not None and existing_issuing is not None:
            self._check_same_hierarchy(spec, existing_root, existing_issuing)
            ocsp = self._ports.certificates.find_service_certificate(
                issuer_id=ISSUING_CA_ID, profile=OCSP_RESPONDER.name
            )
            tsa = self._ports.certificates.find_service_certificate(issuer_id=ISSUING_CA_ID, profile=TSA.name)
            created = False
            if ocsp is None:
                ocsp = self._issue_service_certificate(existing_issuing, OCSP_RESPONDER, spec, actor)
                created = True
            if tsa is None:
                tsa = self._issue_service_certificate(existing_issuing, TSA, spec, actor)
                created = True
            return HierarchyResult(
                created=created, root=existing_root, issuing=existing_issuing, ocsp_responder=ocsp, tsa=tsa
            )
        if existing_root is not None or existing_issuing is not None:
            raise ConflictError(
                "The CA hierarchy is incomplete in the database; restore it from backup before running init."
            )

        now = self._clock.now()
        root_subject = parse_subject(spec.root_subject or DEFAULT_ROOT_SUBJECT)
        issuing_subject = parse_subject(spec.issuing_subject or DEFAULT_ISSUING_SUBJECT)
        root_years = spec.root_validity_years or 20
        issuing_years = spec.issuing_validity_years or 10
        if not 1 <= root_years <= 30:
            raise InvalidInputError("The root CA validity must be between 1 and 30 years.")
        if not 1 <= issuing_years < root_years:
            raise InvalidInputError("The issuing CA validity must be at least 1 year and shorter than the root's.")

        root_key = self._ensure_key("govsign-root-1", spec.root_algorithm or KeyAlgorithm.RSA4096)
        root_public = self._keystore.public_key(root_key)
        root_context = IssuerContext(
            ca_id=ROOT_CA_ID,
            name=root_subject,
            key=root_key,
            public_key=root_public,
            certificate=None,
            parent_ca_id=None,
        )
        root_spec = CertificateSpec(
            kind=CertificateKind.ROOT_CA,
            profile=None,
            subject=root_subject,
            public_key=root_public,
            serial=random_serial(),
            not_before=now,
            not_after=add_years(now, root_years),
            policy_oid=self._policy.certificate_policy_oid,
            path_length=None,
            urls=self._policy.urls,
        )
        self._progress("Signing the root CA certificate in the HSM")
        root_certificate = self._sign(root_spec, root_context)
        root = CARecord(
            id=ROOT_CA_ID,
            role=CARole.ROOT,
            parent_id=None,
            subject=name_to_text(root_subject),
            serial_hex=serial_to_hex(root_spec.serial),
            key=root_key,
            certificate_der=certificate_der(root_certificate),
            not_before=root_certificate.not_valid_before_utc,
            not_after=root_certificate.not_valid_after_utc,
            created_at=now,
        )
        self._ports.cas.add_ca(root)
        self._audit(
            "ca.create",
            actor,
            "ca",
            ROOT_CA_ID,
            {
                "role": "root",
                "subject": root.subject,
                "serial": root.serial_hex,
                "key_algorithm": root_key.algorithm.value,
            },
        )

        issuing_key = self._ensure_key("govsign-issuing-1", spec.issuing_algorithm or KeyAlgorithm.RSA3072)
        issuing_public = self._keystore.public_key(issuing_key)
        root_context = replace(root_context, certificate=root_certificate)
        issuing_spec = CertificateSpec(
            kind=CertificateKind.SUBORDINATE_CA,
            profile=None,
            subject=issuing_subject,
            public_key=issuing_public,
            serial=random_serial(),
            not_before=now,
            not_after=min(add_years(now, issuing_years), root_certificate.not_valid_after_utc),
            policy_oid=self._policy.certificate_policy_oid,
            path_length=0,
            urls=self._policy.urls,
        )
        self._progress("Signing the issuing CA certificate with the root key")
        issuing_certificate = self._sign(issuing_spec, root_context)
        issuing = CARecord(
            id=ISSUING_CA_ID,
            role=CARole.ISSUING,
            parent_id=ROOT_CA_ID,
            subject=name_to_text(issuing_subject),
            serial_hex=serial_to_hex(issuing_spec.serial),
            key=issuing_key,
            certificate_der=certificate_der(issuing_certificate),
            not_before=issuing_certificate.not_valid_before_utc,
            not_after=issuing_certificate.not_valid_after_utc,
            created_at=now,
        )
        self._ports.cas.add_ca(issuing)
        self._audit(
            "ca.create",
            actor,
            "ca",
            ISSUING_CA_ID,
            {
                "role": "issuing",
                "subject": issuing.subject,
                "serial": issuing.serial_hex,
                "key_algorithm": issuing_key.algorithm.value,
                "parent": ROOT_CA_ID,
            },
        )

        ocsp = self._issue_service_certificate(issuing, OCSP_RESPONDER, spec, actor)
        tsa = self._issue_service_certificate(issuing, TSA, spec, actor)
        return HierarchyResult(created=True, root=root, issuing=issuing, ocsp_responder=ocsp, tsa=tsa)

    def _check_same_hierarchy(self, spec: HierarchySpec, root: CARecord, issuing: CARecord) -> None:
        differences = []
        if spec.root_subject is not None and name_to_text(parse_subject(spec.root_subject)) != root.subject:
            differences.append(f"root subject is '{root.subject}'")
        if spec.root_algorithm is not None and spec.root_algorithm is not root.key.algorithm:
            differences.append(f"root key is {root.key.algorithm.value}")
        if spec.issuing_subject is not None and name_to_text(parse_subject(spec.issuing_subject)) != issuing.subject:
            differences.append(f"issuing CA subject is '{issuing.subject}'")
        if spec.issuing_algorithm is not None and spec.issuing_algorithm is not issuing.key.algorithm:
            differences.append(f"issuing CA key is {issuing.key.algorithm.value}")
        if (
            spec.root_validity_years is not None
            and add_years(root.not_before, spec.root_validity_years) != root.not_after
        ):
            differences.append("root validity differs")
        if (
            spec.issuing_validity_years is not None
            and add_years(issuing.not_before, spec.issuing_validity_years) != issuing.not_after
        ):
            differences.append("issuing CA validity differs")
        if differences:
            raise AlreadyInitializedError(
                "The CA hierarchy exists already with other parameters ("
                + "; ".join(differences)
                + "); nothing was changed."
            )

    def _ensure_key(self, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """The CA key with this label: left over from an interrupted init, or generated now."""
        existing = self._keystore.find_key(label=label, algorithm=algorithm)
        if existing is not None:
            return existing
        self._progress(f"Generating the {algorithm.value} key '{label}' in the HSM")
        return self._keystore.generate_key_pair(label=label, algorithm=algorithm)

    def issue_service_certificate(
        self, issuing: CARecord, profile: CertificateProfile, *, actor: str, algorithm: KeyAlgorithm | None = None
    ) -> CertificateRecord:
        """A new OCSP responder or TSA certificate with a new key in the HSM (rollover)."""
        return self._issue_service_certificate(issuing, profile, HierarchySpec(service_algorithm=algorithm), actor)

    def _issue_service_certificate(
        self, issuing: CARecord, profile: CertificateProfile, spec: HierarchySpec, actor: str
    ) -> CertificateRecord:
        now = self._clock.now()
        if profile is OCSP_RESPONDER:
            subject_text, days, index = DEFAULT_OCSP_SUBJECT, self._policy.ocsp_responder_validity_days, "ocsp"
        else:
            subject_text, days, index = DEFAULT_TSA_SUBJECT, self._policy.tsa_validity_days, "tsa"
        algorithm = spec.service_algorithm or (KeyAlgorithm.EC_P256 if profile is TSA else KeyAlgorithm.RSA2048)
        label = f"govsign-{index}-{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
        key = self._keystore.generate_key_pair(label=label, algorithm=algorithm)
        self.generated_keys.append(key)
        try:
            public = self._keystore.public_key(key)
            context = self._issuer_context(issuing)
            not_after = min(
                now + dt.timedelta(days=days), issuing.not_after, add_years(now, profile.max_validity_years)
            )
            cert_spec = CertificateSpec(
                kind=CertificateKind.END_ENTITY,
                profile=profile,
                subject=parse_subject(subject_text),
                public_key=public,
                serial=random_serial(),
                not_before=now,
                not_after=not_after,
                policy_oid=self._policy.certificate_policy_oid,
                urls=self._policy.urls,
            )
            self._progress(f"Signing the {profile.name} certificate")
            certificate = self._sign(cert_spec, context)
            record = self._store(
                certificate,
                profile=profile.name,
                issuer_id=issuing.id,
                key=key,
                algorithm=algorithm,
                email=None,
                replaces_id=None,
            )
        except BaseException:
            self._forget_key(key)
            raise
        self._audit(
            "certificate.issue",
            actor,
            "certificate",
            record.serial_hex,
            {"profile": profile.name, "issuer": issuing.id, "subject": record.subject, "key": "hsm"},
        )
        return record

    # -- issuance ---------------------------------------------------------------------------

    def issue(self, request: IssuanceRequest) -> IssuedCertificate:
        """Issue a subscriber certificate; checks everything before touching the HSM."""
        profile = subscriber_profile(request.profile)
        if (request.csr is None) == (request.generate_key is None):
            raise InvalidInputError("Give either a CSR or a key algorithm to generate, not both or neither.")
        public_key: PublicKey | None = None
        if request.csr is not None:
            checked = check_csr(request.csr)
            subject = parse_subject(request.subject) if request.subject else normalise_name(checked.subject)
            public_key, algorithm = checked.public_key, checked.key_algorithm
        else:
            if not request.subject:
                raise InvalidInputError("A subject is required when the key is generated in the HSM.")
            subject = parse_subject(request.subject)
            assert request.generate_key is not None
            algorithm = request.generate_key
        if algorithm not in profile.allowed_key_algorithms:
            raise PolicyViolationError(f"The {profile.name} profile does not accept {algorithm.value} keys.")
        email = self._check_email(request.email, profile)
        issuing = self._issuing_ca(request.issuer_id)
        not_before, not_after = self._validity(profile, issuing, request.validity_days)

        generated: KeyRef | None = None
        if public_key is None:
            label = f"govsign-sub-{secrets.token_hex(8)}"
            self._progress(f"Generating the {algorithm.value} key in the HSM")
            generated = self._keystore.generate_key_pair(label=label, algorithm=algorithm)
            self.generated_keys.append(generated)
        try:
            if generated is not None:
                public_key = self._keystore.public_key(generated)
            assert public_key is not None
            spec = CertificateSpec(
                kind=CertificateKind.END_ENTITY,
                profile=profile,
                subject=subject,
                public_key=public_key,
                serial=random_serial(),
                not_before=not_before,
                not_after=not_after,
                email=email,
                policy_oid=self._policy.certificate_policy_oid,
                urls=self._policy.urls,
            )
            certificate = self._sign(spec, self._issuer_context(issuing))
            record = self._store(
                certificate,
                profile=profile.name,
                issuer_id=issuing.id,
                key=generated,
                algorithm=algorithm,
                email=email,
                replaces_id=None,
                agency_id=request.agency_id,
            )
            self._audit(
                "certificate.issue",
                request.actor,
                "certificate",
                record.serial_hex,
                {
                    "profile": profile.name,
                    "issuer": issuing.id,
                    "subject": record.subject,
                    "key": "hsm" if generated else "csr",
                    "key_algorithm": algorithm.value,
                    "not_after": record.not_after.isoformat(),
                },
            )
            if self._status_listener is not None:
                self._status_listener.certificate_issued(record)
        except BaseException:
            if generated is not None:
                self._forget_key(generated)
            raise
        return IssuedCertificate(record=record, certificate=certificate, generated_key=generated)

    def _check_email(self, email: str | None, profile: CertificateProfile) -> str | None:
        if email is None or email == "":
            return None
        if not profile.email_allowed:
            raise InvalidInputError(f"The {profile.name} profile carries no e-mail address.")
        if len(email) > 254 or not email.isascii() or not _EMAIL_PATTERN.match(email):
            raise InvalidInputError(f"'{email}' is not a valid e-mail address (ASCII, local@domain).")
        local, domain = email.rsplit("@", 1)
        return f"{local}@{domain.lower()}"

    def _validity(
        self, profile: CertificateProfile, issuing: CARecord, validity_days: int | None
    ) -> tuple[dt.datetime, dt.datetime]:
        now = self._clock.now()
        days = validity_days if validity_days is not None else self._policy.subscriber_default_validity_days
        if days < 1:
            raise InvalidInputError("The validity must be at least one day.")
        if days > 40000:
            raise PolicyViolationError(
                f"A validity of {days} days exceeds the {profile.max_validity_years}-year limit."
            )
        not_after = now + dt.timedelta(days=days)
        if not_after > add_years(now, profile.max_validity_years):
            raise PolicyViolationError(
                f"A validity of {days} days exceeds the {profile.max_validity_years}-year limit for {profile.name} certificates."
            )
        if not_after > issuing.not_after:
            raise PolicyViolationError(
                f"A validity of {days} days would end after the issuing CA's certificate ({issuing.not_after.date().isoformat()})."
            )
        if now < issuing.not_before:
            raise PolicyViolationError("The issuing CA's certificate is not valid yet.")
        return now, not_after

    def _issuing_ca(self, issuer_id: str | None) -> CARecord:
        ca_id = issuer_id or ISSUING_CA_ID
        ca = self._ports.cas.get_ca(ca_id)
        if ca is None:
            if issuer_id is None:
                raise NotFoundError("There is no issuing CA yet; run 'govsign init' first.")
            raise NotFoundError(f"There is no CA '{issuer_id}'.")
        if ca.role is not CARole.ISSUING:
            raise PolicyViolationError(f"The CA '{ca.id}' does not issue subscriber certificates.")
        if ca.not_after <= self._clock.now():
            raise PolicyViolationError(f"The CA '{ca.id}' has expired.")
        return ca

    def _issuer_context(self, ca: CARecord) -> IssuerContext:
        certificate = x509.load_der_x509_certificate(ca.certificate_der)
        public = certificate.public_key()
        assert not isinstance(public, str)
        return IssuerContext(
            ca_id=ca.id,
            name=certificate.subject,
            key=ca.key,
            public_key=public,  # type: ignore[arg-type]
            certificate=certificate,
            parent_ca_id=ca.parent_id,
        )

    def _sign(self, spec: CertificateSpec, issuer: IssuerContext) -> x509.Certificate:
        token = prepare(spec, issuer)
        token.lint(self._linter)
        return token.issue(self._keystore)

    def _store(
        self,
        certificate: x509.Certificate,
        *,
        profile: str,
        issuer_id: str,
        key: KeyRef | None,
        algorithm: KeyAlgorithm,
        email: str | None,
        replaces_id: int | None,
        agency_id: str | None = None,
    ) -> CertificateRecord:
        public = certificate.public_key()
        return self._ports.certificates.add_certificate(
            CertificateRecord(
                id=None,
                issuer_id=issuer_id,
                serial_hex=serial_to_hex(certificate.serial_number),
                subject=name_to_text(certificate.subject),
                profile=profile,
                email=email,
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                status=CertificateStatus.VALID,
                key_algorithm=algorithm,
                key=key,
                certificate_der=certificate_der(certificate),
                fingerprint_sha256=fingerprint_sha256(certificate),
                spki_sha256=spki_sha256(public),  # type: ignore[arg-type]
                replaces_id=replaces_id,
                created_at=self._clock.now(),
                agency_id=agency_id,
            )
        )

    # -- lifecycle --------------------------------------------------------------------------

    def find(self, serial: str, issuer_id: str | None = None) -> CertificateRecord:
        serial_hex = normalise_serial(serial)
        found = self._ports.certificates.find_by_serial(serial_hex, issuer_id)
        if not found:
            raise NotFoundError(f"No certificate with serial {serial.strip()} was issued by this CA.")
        if len(found) > 1:
            raise ConflictError(f"Several CAs issued a certificate with serial {serial_hex}; name the issuer.")
        return found[0]

    def show(self, serial: str, issuer_id: str | None = None) -> CertificateView:
        return self.view(self.find(serial, issuer_id))

    def view(self, record: CertificateRecord) -> CertificateView:
        revocation = (
            self._ports.revocations.active_revocation(record.id)
            if record.id is not None and record.status is not CertificateStatus.VALID
            else None
        )
        replaced = self._ports.certificates.get(record.replaces_id) if record.replaces_id is not None else None
        return CertificateView(
            record=record,
            status=record.effective_status(self._clock.now()),
            revocation=revocation,
            replaces_serial=replaced.serial_hex if replaced is not None else None,
        )

    def list_certificates(self, status: CertificateStatus | None = None, limit: int = 1000) -> list[CertificateView]:
        records = self._ports.certificates.list_certificates(status=status, now=self._clock.now(), limit=limit)
        return [self.view(record) for record in records]

    def revoke(
        self,
        serial: str,
        *,
        reason: RevocationReason,
        actor: str,
        invalidity_date: dt.datetime | None = None,
        issuer_id: str | None = None,
    ) -> CertificateView:
        """Revoke (or, with certificateHold, suspend) a certificate."""
        found = self.find(serial, issuer_id)
        assert found.id is not None
        record = self._ports.certificates.get_for_update(found.id)
        now = self._clock.now()
        if invalidity_date is not None:
            if invalidity_date.tzinfo is None:
                raise InvalidInputError("The invalidity date needs a time zone.")
            if invalidity_date > now:
                raise InvalidInputError("The invalidity date cannot be in the future.")
        if reason is RevocationReason.AA_COMPROMISE:
            raise InvalidInputError("aACompromise applies to attribute certificates only.")
        if record.status is CertificateStatus.REVOKED:
            active = self._ports.revocations.active_revocation(found.id)
            when = f" on {active.revoked_at.isoformat()}" if active else ""
            why = f" ({active.reason.value})" if active else ""
            raise AlreadyRevokedError(f"Certificate {record.serial_hex} is already revoked{why}{when}.")
        if record.status is CertificateStatus.ON_HOLD:
            hold = self._ports.revocations.active_revocation(found.id)
            if reason is RevocationReason.CERTIFICATE_HOLD:
                raise InvalidStateTransitionError(f"Certificate {record.serial_hex} is already on hold.")
            if hold is not None and hold.id is not None:
                # The hold becomes a permanent revocation: close the hold, then revoke.
                self._ports.revocations.release_hold(hold.id, released_at=now, released_by=actor)
        if reason is RevocationReason.CERTIFICATE_HOLD and record.profile not in (
            "individual",
            "organization",
            "device",
        ):
            raise InvalidStateTransitionError("Only subscriber certificates can be put on hold.")
        revocation = self._ports.revocations.add_revocation(
            RevocationRecord(
                id=None,
                certificate_id=found.id,
                issuer_id=record.issuer_id,
                serial_hex=record.serial_hex,
                reason=reason,
                revoked_at=now,
                invalidity_date=invalidity_date,
                actor=actor,
                released_at=None,
                released_by=None,
            )
        )
        new_status = (
            CertificateStatus.ON_HOLD if reason is RevocationReason.CERTIFICATE_HOLD else CertificateStatus.REVOKED
        )
        self._ports.certificates.set_status(found.id, new_status)
        action = "certificate.hold" if new_status is CertificateStatus.ON_HOLD else "certificate.revoke"
        details: dict[str, object] = {"reason": reason.value, "issuer": record.issuer_id}
        if invalidity_date is not None:
            details["invalidity_date"] = invalidity_date.isoformat()
        self._audit(action, actor, "certificate", record.serial_hex, details)
        updated = replace(record, status=new_status)
        if self._status_listener is not None:
            self._status_listener.status_changed(updated, revocation)
        return CertificateView(record=updated, status=new_status, revocation=revocation)

    def release(self, serial: str, *, actor: str, issuer_id: str | None = None) -> CertificateView:
        """Release a certificate from hold (the only way back from a revocation status)."""
        found = self.find(serial, issuer_id)
        assert found.id is not None
        record = self._ports.certificates.get_for_update(found.id)
        if record.status is not CertificateStatus.ON_HOLD:
            raise InvalidStateTransitionError(
                f"Certificate {record.serial_hex} is {record.status.value}, not on hold; only a held certificate can be released."
            )
        hold = self._ports.revocations.active_revocation(found.id)
        if hold is None or hold.id is None:
            raise InvalidStateTransitionError(f"Certificate {record.serial_hex} has no hold to release.")
        self._ports.revocations.release_hold(hold.id, released_at=self._clock.now(), released_by=actor)
        self._ports.certificates.set_status(found.id, CertificateStatus.VALID)
        self._audit("certificate.release", actor, "certificate", record.serial_hex, {"issuer": record.issuer_id})
        if self._status_listener is not None:
            self._status_listener.status_changed(replace(record, status=CertificateStatus.VALID), None)
        return CertificateView(
            record=replace(record, status=CertificateStatus.VALID), status=CertificateStatus.VALID, revocation=None
        )

    def renew(
        self, serial: str, *, actor: str, validity_days: int | None = None, issuer_id: str | None = None
    ) -> IssuedCertificate:
        """A new certificate for the same subject and key, with a new validity period."""
        old = self.find(serial, issuer_id)
        if old.status is not CertificateStatus.VALID:
            raise InvalidStateTransitionError(
                f"Certificate {old.serial_hex} is {old.status.value}; only a valid or expired certificate can be renewed."
            )
        old_certificate = x509.load_der_x509_certificate(old.certificate_der)
        public = old_certificate.public_key()
        return self._reissue(old, public, None, validity_days, actor, "certificate.renew")  # type: ignore[arg-type]

    def rekey(
        self,
        serial: str,
        *,
        actor: str,
        csr: bytes | None = None,
        generate_key: KeyAlgorithm | None = None,
        validity_days: int | None = None,
        issuer_id: str | None = None,
    ) -> IssuedCertificate:
        """A new certificate for the same subject with a new key (from a CSR or generated in the HSM)."""
        old = self.find(serial, issuer_id)
        if old.status is CertificateStatus.ON_HOLD:
            raise InvalidStateTransitionError(
                f"Certificate {old.serial_hex} is on hold; release or revoke it before re-keying."
            )
        if (csr is None) == (generate_key is None):
            raise InvalidInputError("Give either a CSR or a key algorithm to generate, not both or neither.")
        if csr is not None:
            checked = check_csr(csr)
            if spki_sha256(checked.public_key) == old.spki_sha256:
                raise InvalidInputError("The new key is the same as the old one; use renew to keep a key.")
            return self._reissue(old, checked.public_key, None, validity_days, actor, "certificate.rekey")
        assert generate_key is not None
        return self._reissue(old, None, generate_key, validity_days, actor, "certificate.rekey")

    def _reissue(
        self,
        old: CertificateRecord,
        public_key: PublicKey | None,
        generate_key: KeyAlgorithm | None,
        validity_days: int | None,
        actor: str,
        action: str,
    ) -> IssuedCertificate:
        profile = subscriber_profile(old.profile)
        issuing = self._issuing_ca(old.issuer_id)
        not_before, not_after = self._validity(profile, issuing, validity_days)
        old_certificate = x509.load_der_x509_certificate(old.certificate_der)
        generated: KeyRef | None = None
        key: KeyRef | None = (
            old.key if public_key is not None and generate_key is None and action == "certificate.renew" else None
        )
        if generate_key is not None:
            generated = self._keystore.generate_key_pair(
                label=f"govsign-sub-{secrets.token_hex(8)}", algorithm=generate_key
            )
            self.generated_keys.append(generated)
            key = generated
        try:
            if generated is not None:
                public_key = self._keystore.public_key(generated)
            assert public_key is not None
            algorithm = key_algorithm_of(public_key)
            spec = CertificateSpec(
                kind=CertificateKind.END_ENTITY,
                profile=profile,
                subject=old_certificate.subject,
                public_key=public_key,
                serial=random_serial(),
                not_before=not_before,
                not_after=not_after,
                email=old.email,
                policy_oid=self._policy.certificate_policy_oid,
                urls=self._policy.urls,
            )
            certificate = self._sign(spec, self._issuer_context(issuing))
            record = self._store(
                certificate,
                profile=profile.name,
                issuer_id=issuing.id,
                key=key,
                algorithm=algorithm,
                email=old.email,
                replaces_id=old.id,
                agency_id=old.agency_id,
            )
            self._audit(
                action,
                actor,
                "certificate",
                record.serial_hex,
                {"replaces": old.serial_hex, "issuer": issuing.id, "profile": profile.name},
            )
            if self._status_listener is not None:
                self._status_listener.certificate_issued(record)
        except BaseException:
            if generated is not None:
                self._forget_key(generated)
            raise
        return IssuedCertificate(record=record, certificate=certificate, generated_key=generated)

    def _forget_key(self, key: KeyRef) -> None:
        self._keystore.destroy_key_pair(key)
        if key in self.generated_keys:
            self.generated_keys.remove(key)

    # -- CAs --------------------------------------------------------------------------------

    def list_cas(self) -> list[CARecord]:
        return self._ports.cas.list_cas()

    def _audit(self, action: str, actor: str, object_type: str, object_id: str, details: dict[str, object]) -> None:
        self._ports.audit.append(
            AuditEvent(
                action=action,
                actor=actor,
                object_type=object_type,
                object_id=object_id,
                details=dict(details),
                client_id=self._audit_context.client_id,
                agency_id=self._audit_context.agency_id,
                request_id=self._audit_context.request_id,
            ),
            at=self._clock.now(),
        )


def normalise_serial(serial: str) -> str:
    """Lower-case hex without separators or leading zeros; InvalidInputError if not hex."""
    text = serial.strip().lower().replace(":", "").replace(" ", "")
    text = text.removeprefix("0x")
    if not text or not re.fullmatch(r"[0-9a-f]{1,40}", text):
        raise InvalidInputError(f"'{serial}' is not a serial number in hexadecimal.")
    return text.lstrip("0") or "0"
