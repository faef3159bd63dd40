"""Database tables. Alembic migrations (govsign/migrations) are the schema; these mirror them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from govsign.storage.base import Base, UTCDateTime

BigId = BigInteger().with_variant(Integer(), "sqlite")


class CertificateAuthorityRow(Base):
    __tablename__ = "certificate_authorities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("certificate_authorities.id"))
    subject: Mapped[str] = mapped_column(Text)
    serial_hex: Mapped[str] = mapped_column(String(40))
    key_label: Mapped[str] = mapped_column(String(128))
    key_id_hex: Mapped[str] = mapped_column(String(128))
    key_algorithm: Mapped[str] = mapped_column(String(16))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("role IN ('root', 'issuing')", name="role"),)


class CertificateRow(Base):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial_hex: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(320))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    key_algorithm: Mapped[str] = mapped_column(String(16))
    key_label: Mapped[str | None] = mapped_column(String(128))
    key_id_hex: Mapped[str | None] = mapped_column(String(128))
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    spki_sha256: Mapped[str] = mapped_column(String(64), index=True)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id"))
    agency_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial_hex"),
        CheckConstraint("status IN ('valid', 'revoked', 'on-hold')", name="status"),
        Index("ix_certificates_serial_hex", "serial_hex"),
        Index("ix_certificates_status_not_after", "status", "not_after"),
        Index("ix_certificates_issuer_profile", "issuer_id", "profile"),
    )


class RevocationRow(Base):
    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial_hex: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    invalidity_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    released_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_revocations_issuer_revoked_at", "issuer_id", "revoked_at"),)


class AuditEventRow(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))
    details_json: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    agency_id: Mapped[str | None] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    event_hash: Mapped[str] = mapped_column(String(64), unique=True)
    chain_version: Mapped[int] = mapped_column(Integer, server_default="1")
    """1: SHA-256 only (events written before the keyed chain); 2: also keyed (``chain_mac``)."""
    chain_mac: Mapped[str | None] = mapped_column(String(64))
    """HMAC-SHA256 by the audit chain key in the HSM over the sequence and ``event_hash`` (None for
    version 1, and for a version 2 event written while the HSM was unreachable, until sealed)."""


class AuditHeadRow(Base):
    """One row: the last event of the chain. Writers lock it, so the chain has no forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))
    unsealed_from: Mapped[int | None] = mapped_column(BigId)
    """The first event written without its keyed chain value (the HSM was unreachable), if any."""


class AuditKeyRow(Base):
    """The registry of the audit keys in the HSM: one row per purpose, so a key is created once per
    deployment (the row's primary key decides the race between processes) and found by its id."""

    __tablename__ = "audit_keys"

    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(128))
    key_id_hex: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    keyed_from: Mapped[int | None] = mapped_column(BigId)
    """For the chain key: the first event written after it existed (every later event is keyed)."""


class CRLStateRow(Base):
    """Per CA: the CRL number sequence and the revocation change counter.

    Revocations, holds and releases bump ``change_seq`` in their transaction; the publisher
    signs a new CRL when ``change_seq`` is ahead of ``published_change_seq`` or nextUpdate
    approaches. Writers lock this row, so CRL numbers are allocated once, in order, across
    processes.
    """

    __tablename__ = "crl_state"

    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"), primary_key=True)
    next_crl_number: Mapped[int] = mapped_column(BigId)
    change_seq: Mapped[int] = mapped_column(BigId)
    published_change_seq: Mapped[int] = mapped_column(BigId)
    delta_base_number: Mapped[int | None] = mapped_column(BigId)


class CRLRow(Base):
    __tablename__ = "crls"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ca_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    crl_number: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(8))
    base_crl_number: Mapped[int | None] = mapped_column(BigId)
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    entry_count: Mapped[int] = mapped_column(Integer)
    crl_der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("ca_id", "crl_number"),
        CheckConstraint("kind IN ('full', 'delta')", name="kind"),
        Index("ix_crls_ca_kind_number", "ca_id", "kind", "crl_number"),
    )


class OCSPResponseRow(Base):
    """A pre-produced OCSP response for one certificate and one CertID hash algorithm."""

    __tablename__ = "ocsp_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    issuer_id: Mapped[str] = mapped_column(ForeignKey("certificate_authorities.id"))
    serial_hex: Mapped[str] = mapped_column(String(40))
    hash_algorithm: Mapped[str] = mapped_column(String(8))
    cert_status: Mapped[str] = mapped_column(String(8))
    this_update: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    next_update: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    responder_serial_hex: Mapped[str] = mapped_column(String(40))
    response_der: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("issuer_id", "serial_hex", "hash_algorithm"),
        CheckConstraint("cert_status IN ('good', 'revoked', 'unknown')", name="cert_status"),
    )


class AgencyRow(Base):
    """A government agency (cơ quan, tổ chức); sub-units name their parent."""

    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class APIClientRow(Base):
    """A calling system. Its secret is stored only as a keyed hash (HMAC-SHA256)."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agency_id: Mapped[str] = mapped_column(ForeignKey("agencies.id"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    certificate_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("status IN ('active', 'disabled')", name="status"),)


class IdempotencyKeyRow(Base):
    """The first result of a creating request, replayed for retries with the same key."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("client_id", "key"),)


class ApprovalRow(Base):
    """A dual-control request: made by one officer, decided by another."""

    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    parameters_json: Mapped[str] = mapped_column(Text)
    agency_id: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(32))
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(32))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    result_json: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint("status IN ('pending', 'executed', 'rejected', 'failed')", name="status"),)


class AuditCheckpointRow(Base):
    """A signature by the audit key (in the HSM) over the chain head at some event."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[int] = mapped_column(BigId, unique=True)
    """1, 2, 3... in order (version 1 checkpoints were numbered by the migration)."""
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    """1: signs the head only; 2: numbered, chained to the previous checkpoint, keyed head."""
    last_event_id: Mapped[int] = mapped_column(BigId, unique=True)
    last_hash: Mapped[str] = mapped_column(String(64))
    last_mac: Mapped[str | None] = mapped_column(String(64))
    """The keyed chain value of the event covered (version 2)."""
    previous_hash: Mapped[str | None] = mapped_column(String(64))
    """The hash of the checkpoint before it (version 2; zeros for the first)."""
    keyed_from: Mapped[int | None] = mapped_column(BigId)
    """The first event of the keyed chain (version 2): every event from it on must be keyed."""
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    key_label: Mapped[str] = mapped_column(String(128))
    key_id_hex: Mapped[str | None] = mapped_column(String(64))
    """The audit signing key (version 2)."""
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Our TSA's RFC 3161 token over the checkpoint's hash (None when the TSA was unavailable)."""
    timestamp_problem: Mapped[str | None] = mapped_column(String(500))
    """Why there is no time-stamp token."""


class CredentialFactorsRow(Base):
    """An official's second factors for one signing credential (sole control).

    The TOTP seed is not here: it is a secret in the HSM, named by label and id; the PIN is a
    scrypt hash. Consecutive failures lock the factors for a while."""

    __tablename__ = "credential_factors"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    totp_label: Mapped[str | None] = mapped_column(String(128))
    totp_key_id_hex: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    pin_hash: Mapped[str | None] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SignatureActivationRow(Base):
    """A single-use, short-lived permission to sign exactly some hashes with one credential.
    Only the SHA-256 of the activation token is stored."""

    __tablename__ = "signature_activations"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(32))
    hash_algorithm: Mapped[str] = mapped_column(String(16))
    hashes_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    max_signatures: Mapped[int | None] = mapped_column(Integer)
    """For an authorization not bound to hashes (a CSC SCAL 1 SAD of a seal or device
    credential): how many signatures it allows; None when it names its hashes."""


class RemoteAccessTokenRow(Base):
    """A short-lived access token of the remote-signing (CSC) API, given to an API client by
    ``auth/login`` or ``oauth2/token``. Only its SHA-256 is stored."""

    __tablename__ = "remote_access_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class SignatureReferenceRow(Base):
    """The reference printed on a stamp's verification line (Decree 30), and what it resolves to:
    the signature as govsign made it. 128 random bits: not enumerable."""

    __tablename__ = "signature_references"

    reference: Mapped[str] = mapped_column(String(40), primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), index=True)
    document_sha256: Mapped[str] = mapped_column(String(64))
    """The document as it was sent to be signed."""
    signed_sha256: Mapped[str] = mapped_column(String(64))
    """The signed document as it was returned."""
    level: Mapped[str] = mapped_column(String(8))
    stamp: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RateCounterRow(Base):
    """Requests counted per key (e.g. an address of the public page) and minute, shared by every
    worker process and node."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class StampImageRow(Base):
    """The image a credential's visible signatures show (Decree 30: the agency's seal, or the
    official's handwritten signature), a transparent PNG."""

    __tablename__ = "stamp_images"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), primary_key=True)
    image_png: Mapped[bytes] = mapped_column(LargeBinary)
    width_mm: Mapped[float | None] = mapped_column(Float)
    """The image's visible width on paper (a seal's diameter), when registered."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class VerificationRow(Base):
    """A stored verification report: the report (JSON) and the document's hash, never the document."""

    __tablename__ = "verifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    client_id: Mapped[str | None] = mapped_column(String(32))
    document_sha256: Mapped[str] = mapped_column(String(64), index=True)
    document_type: Mapped[str] = mapped_column(String(16))
    conclusion: Mapped[str] = mapped_column(String(16))
    report_json: Mapped[str] = mapped_column(Text)
    etsi_xml: Mapped[str | None] = mapped_column(Text)
    report_pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """The report rendered as a PDF and sealed, made when first asked for."""


class LeaseRow(Base):
    """Who runs a deployment-wide background job: the holder renews the lease before it expires;
    when it stops renewing (its process died), another process takes it over after expiry."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuthFailureRow(Base):
    """Failed authentications from one address naming one client (``""`` when the credentials
    named none) in one minute: the shared limiter's counter and the source of the audit event."""

    __tablename__ = "auth_failures"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)


class PendingKeyRow(Base):
    """A key pair about to be generated in the HSM for an issuance, committed before the HSM
    makes it; deleted in the transaction that stores its certificate. A row that outlives its
    grace period names an orphan from a crash (``govsign hsm reconcile`` destroys it)."""

    __tablename__ = "pending_keys"

    label: Mapped[str] = mapped_column(String(128), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    """What the key was generated for (issuance, a service certificate)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
