"""The CA's records: certificate authorities, certificates and revocations as frozen values.

The storage layer maps its rows to these; the CA never sees a database row.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

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
