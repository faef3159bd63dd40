"""The verification report: what was checked and concluded, per signature and for the document.

The field names are a contract (outside tools read the JSON the API makes of them); indications
and sub-indications are those of ETSI EN 319 102-1, spelt as in EU DSS's ``SubIndication``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from govsign.validation.messages import Message


class Indication(enum.StrEnum):
    TOTAL_PASSED = "TOTAL_PASSED"
    TOTAL_FAILED = "TOTAL_FAILED"
    INDETERMINATE = "INDETERMINATE"


#: The EN 319 102-1 sub-indications a report may give (EU DSS spelling).
SUB_INDICATIONS = frozenset(
    {
        "FORMAT_FAILURE",
        "HASH_FAILURE",
        "SIG_CRYPTO_FAILURE",
        "REVOKED",
        "EXPIRED",
        "NOT_YET_VALID",
        "SIG_CONSTRAINTS_FAILURE",
        "CHAIN_CONSTRAINTS_FAILURE",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
        "CRYPTO_CONSTRAINTS_FAILURE",
        "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
        "POLICY_PROCESSING_ERROR",
        "SIGNATURE_POLICY_NOT_AVAILABLE",
        "TIMESTAMP_ORDER_FAILURE",
        "NO_SIGNING_CERTIFICATE_FOUND",
        "NO_CERTIFICATE_CHAIN_FOUND",
        "REVOKED_NO_POE",
        "REVOKED_CA_NO_POE",
        "OUT_OF_BOUNDS_NO_POE",
        "OUT_OF_BOUNDS_NOT_REVOKED",
        "NO_POE",
        "TRY_LATER",
        "SIGNED_DATA_NOT_FOUND",
    }
)


class Conclusion(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    INDETERMINATE = "indeterminate"
    NO_SIGNATURES = "no-signatures"


@dataclass(frozen=True, kw_only=True)
class CertificateSummary:
    """One certificate of a chain, as a report shows it."""

    subject: str
    """Subject name (RFC 4514)."""
    serial: str
    """Serial number, lower-case hex."""
    not_before: dt.datetime
    """Start of validity."""
    not_after: dt.datetime
    """End of validity."""


@dataclass(frozen=True, kw_only=True)
class SignerSummary:
    """Who signed, from the signer's certificate (Circular 15/2025 Appendix II)."""

    common_name: str | None
    """CN."""
    organization: str | None
    """O: the agency."""
    organizational_unit: str | None
    """OU: the unit managing the certificate, when named."""
    uid: str | None
    """UID (for officials: the identity document, such as ``CCCD:...``)."""
    email: str | None
    """rfc822Name of the subject alternative name, or the e-mail attribute."""
    country: str | None
    """C."""
    serial: str
    """The certificate's serial number, lower-case hex."""
    issuer: str
    """The issuing CA's name (RFC 4514)."""
    not_before: dt.datetime
    """Start of the certificate's validity."""
    not_after: dt.datetime
    """End of the certificate's validity."""
    certificate_pem: str
    """The certificate."""


@dataclass(frozen=True, kw_only=True)
class TimestampSummary:
    """A time-stamp: of a signature (it proves when the signature existed) or of the document."""

    time: dt.datetime
    """genTime."""
    tsa: str
    """The time-stamping authority's name."""
    indication: Indication
    """Whether the time-stamp itself is valid."""
    sub_indication: str | None
    """Why not, when it is not."""


@dataclass(frozen=True, kw_only=True)
class RevocationSummary:
    """The revocation status of one certificate of a chain, and where it came from."""

    subject: str
    """The certificate checked."""
    status: str
    """good, revoked, unknown or unavailable."""
    revoked_at: dt.datetime | None
    """When it was revoked, if it was."""
    reason: str | None
    """The revocation reason, if given."""
    source: str | None
    """embedded-ocsp, embedded-crl, fetched-ocsp, fetched-crl or govsign-records."""
    produced_at: dt.datetime | None
    """When the OCSP response or CRL that says so was made."""


@dataclass(frozen=True, kw_only=True)
class SignatureReport:
    """The validation of one signature (ETSI EN 319 102-1)."""

    indication: Indication
    """TOTAL_PASSED, TOTAL_FAILED or INDETERMINATE."""
    sub_indication: str | None
    """Why, when not passed (one of :data:`SUB_INDICATIONS`)."""
    level: str
    """PAdES-BASELINE-B..-LTA, CAdES-BASELINE-B..-LTA, or PKCS7 when no baseline level is met."""
    field_name: str | None
    """The PDF signature field."""
    revision: int | None
    """The PDF revision the signature covers (0 is the first)."""
    signer: SignerSummary | None
    """Who signed (None when the signing certificate is missing)."""
    chain: Sequence[CertificateSummary]
    """The certificate path from the signer to the trust anchor, as validated (or as found)."""
    claimed_signing_time: dt.datetime | None
    """The signing time the signer claims (signed attribute or /M)."""
    best_signature_time: dt.datetime
    """The earliest proof that the signature existed: its time-stamp, else the validation time."""
    timestamps: Sequence[TimestampSummary]
    """The signature's time-stamps."""
    revocation: Sequence[RevocationSummary]
    """The revocation status of each certificate of the chain."""
    coverage: str
    """entire-document, entire-revision or partial."""
    modifications_after_signing: str
    """none, permitted or not-permitted."""
    modifications: Sequence[str]
    """What changed after signing, in words, when anything did."""
    integrity: bool
    """The signed hash matches the content."""
    valid_at_signing_time: bool
    """The certificate was within its validity and neither revoked nor on hold at the best-signature-time."""
    messages: Sequence[Message]
    """What explains the indication."""


@dataclass(frozen=True, kw_only=True)
class VerificationReport:
    """The verification of one document: every signature and document time-stamp in it."""

    document_sha256: str
    """SHA-256 of the document verified, hex."""
    document_type: str
    """pdf, cms, smime or timestamp."""
    validation_time: dt.datetime
    """When it was verified."""
    conclusion: Conclusion
    """valid, invalid, indeterminate or no-signatures."""
    signatures: Sequence[SignatureReport]
    """Each signature, in document order."""
    timestamps: Sequence[TimestampSummary]
    """Document time-stamps (PAdES B-LTA)."""
    messages: Sequence[Message]
    """What concerns the document as a whole."""


def conclude(signatures: Sequence[SignatureReport], timestamps: Sequence[TimestampSummary]) -> Conclusion:
    """valid only with at least one signature and everything TOTAL_PASSED; invalid when anything
    failed; indeterminate otherwise; no-signatures when there is no signature at all."""
    if not signatures:
        return Conclusion.NO_SIGNATURES
    indications = [s.indication for s in signatures] + [t.indication for t in timestamps]
    if Indication.TOTAL_FAILED in indications:
        return Conclusion.INVALID
    if all(indication is Indication.TOTAL_PASSED for indication in indications):
        return Conclusion.VALID
    return Conclusion.INDETERMINATE


def report_json(report: VerificationReport, report_id: str) -> dict[str, Any]:
    """The report as the API and the CLI give it (the field names are the contract)."""
    body = _plain(report)
    assert isinstance(body, dict)
    return {"id": report_id, **body}


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
