"""What the three parts of the CA share: its policy, the context of one unit of work, and the
views of certificates they return.

The CA is cut by what it does: :mod:`govsign.pki.hierarchy` creates the CAs and their service
certificates, :mod:`govsign.pki.issuance` issues, renews and re-keys subscriber certificates,
:mod:`govsign.pki.lifecycle` finds, revokes, holds and releases them. Each works inside one unit of
work (a :class:`CAContext` over its ports); the caller commits. Every change records its audit
event through the context's audit trail, so the change and its audit record commit or roll back
together.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography import x509

from govsign.clock import Clock
from govsign.der import certificate_der, certificate_pem
from govsign.errors import ConflictError, InvalidInputError, NotFoundError, PolicyViolationError
from govsign.keystore.api import KeyAlgorithm, KeyRef, KeyStore
from govsign.pki.issuer import (
    CertificateLinter,
    CertificateSpec,
    IssuerContext,
    PublicURLs,
    fingerprint_sha256,
    prepare,
    serial_to_hex,
    spki_sha256,
)
from govsign.pki.names import name_to_text
from govsign.pki.protocols import AuditTrail, CAPorts
from govsign.pki.records import CARecord, CARole, CertificateRecord, CertificateStatus, RevocationRecord

ROOT_CA_ID = "root-1"
ISSUING_CA_ID = "issuing-1"

Progress = Callable[[str], None]


def no_progress(_message: str) -> None:
    return None


class CertificateStatusListener(Protocol):
    """Told of every issuance and status change, inside the same transaction (OCSP pre-production)."""

    def certificate_issued(self, record: CertificateRecord) -> None: ...
    def status_changed(self, record: CertificateRecord, revocation: RevocationRecord | None) -> None: ...


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


@dataclass(kw_only=True)
class CAContext:
    """One unit of work of the CA: its ports, the HSM, the clock, the policy and the linter."""

    ports: CAPorts
    """The CA registry, certificates and revocations of this unit of work."""
    keystore: KeyStore
    """The HSM."""
    clock: Clock
    """The time."""
    policy: AuthorityPolicy
    """The CA's policy."""
    linter: CertificateLinter | None
    """The pre-issuance linter (our profile checks always run)."""
    audit: AuditTrail
    """Where the events of this unit of work go."""
    progress: Progress = no_progress
    """Told what the HSM is busy with (key generation takes a while)."""
    status_listener: CertificateStatusListener | None = None
    """Told of every issuance and status change (OCSP pre-production)."""
    generated_keys: list[KeyRef] = field(default_factory=list)
    """Key pairs generated in the HSM by this unit of work; the caller destroys them if the
    transaction does not commit."""
    reserved_labels: list[str] = field(default_factory=list)
    """Labels (``govsign-<kind>-<random>``) the caller announced, committed as pending markers,
    before this unit of work began; a key generated here whose label is of the same kind takes
    one, so a crash before the commit leaves a key that reconciliation recognises as an orphan."""

    # -- keys ---------------------------------------------------------------------------------

    def generate_key(self, label: str, algorithm: KeyAlgorithm, *, progress: str | None = None) -> KeyRef:
        """A new key pair in the HSM, remembered so that a unit of work that fails removes it;
        labelled with a reserved (pending) label of the same kind when the caller reserved one."""
        if progress is not None:
            self.progress(progress)
        for index, reserved in enumerate(self.reserved_labels):
            if label.startswith(reserved.rsplit("-", 1)[0] + "-"):  # govsign-<kind>-...: a key of that kind
                label = self.reserved_labels.pop(index)
                break
        key = self.keystore.generate_key_pair(label=label, algorithm=algorithm)
        self.generated_keys.append(key)
        return key

    def forget_key(self, key: KeyRef) -> None:
        """Destroy a key pair generated by this unit of work (its issuance failed)."""
        self.keystore.destroy_key_pair(key)
        if key in self.generated_keys:
            self.generated_keys.remove(key)

    # -- certificates -------------------------------------------------------------------------

    def sign(self, spec: CertificateSpec, issuer: IssuerContext) -> x509.Certificate:
        """Prepare, lint, issue once."""
        token = prepare(spec, issuer)
        token.lint(self.linter)
        return token.issue(self.keystore)

    def issuer_context(self, ca: CARecord) -> IssuerContext:
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

    def issuing_ca(self, issuer_id: str | None) -> CARecord:
        """The issuing CA that signs subscriber certificates (the active one by default)."""
        ca_id = issuer_id or ISSUING_CA_ID
        ca = self.ports.cas.get_ca(ca_id)
        if ca is None:
            if issuer_id is None:
                raise NotFoundError("There is no issuing CA yet; run 'govsign init' first.")
            raise NotFoundError(f"There is no CA '{issuer_id}'.")
        if ca.role is not CARole.ISSUING:
            raise PolicyViolationError(f"The CA '{ca.id}' does not issue subscriber certificates.")
        if ca.not_after <= self.clock.now():
            raise PolicyViolationError(f"The CA '{ca.id}' has expired.")
        return ca

    def store(
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
        return self.ports.certificates.add_certificate(
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
                created_at=self.clock.now(),
                agency_id=agency_id,
            )
        )

    def find(self, serial: str, issuer_id: str | None = None) -> CertificateRecord:
        """The certificate with this serial (of this issuer, when several CAs used it)."""
        serial_hex = normalise_serial(serial)
        found = self.ports.certificates.find_by_serial(serial_hex, issuer_id)
        if not found:
            raise NotFoundError(f"No certificate with serial {serial.strip()} was issued by this CA.")
        if len(found) > 1:
            raise ConflictError(f"Several CAs issued a certificate with serial {serial_hex}; name the issuer.")
        return found[0]

    def view(self, record: CertificateRecord) -> CertificateView:
        """The certificate with its effective status and the revocation in force."""
        revocation = (
            self.ports.revocations.active_revocation(record.id)
            if record.id is not None and record.status is not CertificateStatus.VALID
            else None
        )
        replaced = self.ports.certificates.get(record.replaces_id) if record.replaces_id is not None else None
        return CertificateView(
            record=record,
            status=record.effective_status(self.clock.now()),
            revocation=revocation,
            replaces_serial=replaced.serial_hex if replaced is not None else None,
        )

    def show(self, serial: str, issuer_id: str | None = None) -> CertificateView:
        return self.view(self.find(serial, issuer_id))

    def issued(self, record: CertificateRecord) -> None:
        if self.status_listener is not None:
            self.status_listener.certificate_issued(record)

    def status_changed(self, record: CertificateRecord, revocation: RevocationRecord | None) -> None:
        if self.status_listener is not None:
            self.status_listener.status_changed(record, revocation)


def normalise_serial(serial: str) -> str:
    """Lower-case hex without separators or leading zeros; InvalidInputError if not hex."""
    text = serial.strip().lower().replace(":", "").replace(" ", "")
    text = text.removeprefix("0x")
    if not text or not re.fullmatch(r"[0-9a-f]{1,40}", text):
        raise InvalidInputError(f"'{serial}' is not a serial number in hexadecimal.")
    return text.lstrip("0") or "0"
