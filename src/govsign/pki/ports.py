"""What the CA needs from storage, and nothing more (DESIGN.md example 5).

``govsign.storage.repositories`` implements these protocols on SQLAlchemy. Records are frozen
dataclasses; the CA never sees a database row.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Protocol

from govsign.keystore.api import KeyAlgorithm, KeyRef


class CARole(enum.Enum):
    ROOT = "root"
    ISSUING = "issuing"


class CertificateStatus(enum.Enum):
    """Stored status; ``expired`` is derived from notAfter when read."""

    VALID = "valid"
    REVOKED = "revoked"
    ON_HOLD = "on-hold"
    EXPIRED = "expired"


class RevocationReason(enum.Enum):
    """RFC 5280 CRLReason, named as on the command line."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "key-compromise"
    CA_COMPROMISE = "ca-compromise"
    AFFILIATION_CHANGED = "affiliation-changed"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessation-of-operation"
    CERTIFICATE_HOLD = "certificate-hold"
    PRIVILEGE_WITHDRAWN = "privilege-withdrawn"
    AA_COMPROMISE = "aa-compromise"

    @property
    def code(self) -> int:
        """The CRLReason enumeration value (RFC 5280 section 5.3.1)."""
        return {
            "unspecified": 0,
            "key-compromise": 1,
            "ca-compromise": 2,
            "affiliation-changed": 3,
            "superseded": 4,
            "cessation-of-operation": 5,
            "certificate-hold": 6,
            "privilege-withdrawn": 9,
            "aa-compromise": 10,
        }[self.value]


@dataclass(frozen=True, kw_only=True)
class CARecord:
    """A certificate authority of this service."""

    id: str
    """Short stable identifier, used in URLs (``/pki/ca/{id}.crt``)."""
    role: CARole
    """Root or issuing."""
    parent_id: str | None
    """The CA that issued this CA's certificate; None for a root."""
    subject: str
    """The CA's subject name as an RFC 4514 string."""
    serial_hex: str
    """Serial number of the CA certificate, lower-case hex."""
    key: KeyRef
    """The CA's signing key on the token."""
    certificate_der: bytes
    """The CA certificate."""
    not_before: dt.datetime
    """Start of validity."""
    not_after: dt.datetime
    """End of validity."""
    created_at: dt.datetime
    """When the CA was created."""


@dataclass(frozen=True, kw_only=True)
class CertificateRecord:
    """An end-entity (or service) certificate issued by one of our CAs."""

    id: int | None
    """Database id (None before it is stored)."""
    issuer_id: str
    """The issuing CA's id."""
    serial_hex: str
    """Serial number, lower-case hex without separators."""
    subject: str
    """Subject name as an RFC 4514 string (Unicode NFC)."""
    profile: str
    """Certificate profile name."""
    email: str | None
    """rfc822Name in the subject alternative name, if any."""
    not_before: dt.datetime
    """Start of validity."""
    not_after: dt.datetime
    """End of validity."""
    status: CertificateStatus
    """Stored status (valid, revoked, on-hold)."""
    key_algorithm: KeyAlgorithm
    """Type and size of the subject key."""
    key: KeyRef | None
    """The subject's key pair on our token, when it was generated there; None for CSRs."""
    certificate_der: bytes
    """The certificate."""
    fingerprint_sha256: str
    """SHA-256 of the DER, hex."""
    spki_sha256: str
    """SHA-256 of the SubjectPublicKeyInfo, hex."""
    replaces_id: int | None
    """The certificate this one renews or re-keys."""
    created_at: dt.datetime
    """When it was issued."""
    agency_id: str | None = None
    """The agency the subscriber belongs to (scopes who may act on it); None for CA services."""

    def effective_status(self, now: dt.datetime) -> CertificateStatus:
        if self.status is CertificateStatus.VALID and self.not_after < now:
            return CertificateStatus.EXPIRED
        return self.status


@dataclass(frozen=True, kw_only=True)
class RevocationRecord:
    """One revocation (or hold) of a certificate."""

    id: int | None
    """Database id."""
    certificate_id: int
    """The certificate revoked."""
    issuer_id: str
    """Its issuer (kept here so CRLs are built from revocations alone)."""
    serial_hex: str
    """Its serial (kept here for the same reason)."""
    reason: RevocationReason
    """RFC 5280 reason."""
    revoked_at: dt.datetime
    """When the revocation took effect."""
    invalidity_date: dt.datetime | None
    """When the key is known or suspected to have been compromised."""
    actor: str
    """Who revoked."""
    released_at: dt.datetime | None
    """For a hold: when it was released (None while in force)."""
    released_by: str | None
    """For a hold: who released it."""


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One security-relevant action, as the core describes it."""

    action: str
    """What was done, e.g. ``certificate.issue``."""
    actor: str
    """Who did it (operator, client or system)."""
    object_type: str
    """Kind of object acted on."""
    object_id: str
    """Which object."""
    outcome: str = "success"
    """success, failure or denied."""
    details: dict[str, Any] | None = None
    """Further facts; never PINs, keys, secrets or document content."""
    client_id: str | None = None
    """The API client that made the request, if any."""
    agency_id: str | None = None
    """The agency of that client, if any."""
    request_id: str | None = None
    """The request id (also in the X-Request-ID response header)."""


@dataclass(frozen=True, kw_only=True)
class AuditContext:
    """Who is behind the events of one request."""

    client_id: str | None = None
    """The API client."""
    agency_id: str | None = None
    """Its agency."""
    request_id: str | None = None
    """The request id."""


class CARegistry(Protocol):
    def add_ca(self, record: CARecord) -> None: ...
    def get_ca(self, ca_id: str) -> CARecord | None: ...
    def list_cas(self) -> list[CARecord]: ...


class CertificateStore(Protocol):
    def add_certificate(self, record: CertificateRecord) -> CertificateRecord: ...
    def find_by_serial(self, serial_hex: str, issuer_id: str | None = None) -> list[CertificateRecord]: ...
    def get_for_update(self, certificate_id: int) -> CertificateRecord: ...
    def get(self, certificate_id: int) -> CertificateRecord | None: ...
    def set_status(self, certificate_id: int, status: CertificateStatus) -> None: ...
    def list_certificates(
        self, *, status: CertificateStatus | None = None, now: dt.datetime, limit: int = 1000
    ) -> list[CertificateRecord]: ...
    def find_service_certificate(self, *, issuer_id: str, profile: str) -> CertificateRecord | None: ...
    def search_certificates(
        self,
        *,
        now: dt.datetime,
        status: CertificateStatus | None = None,
        profile: str | None = None,
        agency_ids: frozenset[str] | None = None,
        subject_contains: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[CertificateRecord]: ...


class RevocationStore(Protocol):
    def add_revocation(self, record: RevocationRecord) -> RevocationRecord: ...
    def active_revocation(self, certificate_id: int) -> RevocationRecord | None: ...
    def release_hold(self, revocation_id: int, *, released_at: dt.datetime, released_by: str) -> None: ...


class AuditSink(Protocol):
    def append(self, event: AuditEvent, *, at: dt.datetime) -> None: ...


class CAPorts(Protocol):
    """Everything the authority needs, as one unit of work offers it."""

    @property
    def cas(self) -> CARegistry: ...
    @property
    def certificates(self) -> CertificateStore: ...
    @property
    def revocations(self) -> RevocationStore: ...
    @property
    def audit(self) -> AuditSink: ...
