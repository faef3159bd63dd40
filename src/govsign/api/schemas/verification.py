"""The verification report as the REST API gives it (the field names are a contract)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IndicationName = Literal["TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE"]


class ReportMessage(BaseModel):
    """One explanation, in English and in Vietnamese."""

    code: str = Field(description="Stable identifier of the message.")
    severity: Literal["error", "warning", "info"] = Field(description="Why it failed, why it is uncertain, or a fact.")
    en: str = Field(description="The sentence in English.")
    vi: str = Field(description="The sentence in Vietnamese.")


class ReportCertificate(BaseModel):
    """A certificate of the chain."""

    subject: str = Field(description="Subject name (RFC 4514).")
    serial: str = Field(description="Serial number, lower-case hex.")
    not_before: dt.datetime = Field(description="Start of validity.")
    not_after: dt.datetime = Field(description="End of validity.")


class ReportSigner(BaseModel):
    """Who signed, from the signer's certificate."""

    common_name: str | None = Field(description="CN.")
    organization: str | None = Field(description="O: the agency.")
    organizational_unit: str | None = Field(description="OU: the unit managing the certificate.")
    uid: str | None = Field(description="UID, such as CCCD:077190000123.")
    email: str | None = Field(description="E-mail address.")
    country: str | None = Field(description="C.")
    serial: str = Field(description="The certificate's serial number.")
    issuer: str = Field(description="The issuing CA.")
    not_before: dt.datetime = Field(description="Start of the certificate's validity.")
    not_after: dt.datetime = Field(description="End of the certificate's validity.")
    certificate_pem: str = Field(description="The certificate.")


class ReportTimestamp(BaseModel):
    """A time-stamp of a signature or of the document."""

    time: dt.datetime = Field(description="The time it proves.")
    tsa: str = Field(description="The time-stamping authority.")
    indication: IndicationName = Field(description="Whether the time-stamp is valid.")
    sub_indication: str | None = Field(description="Why not, when it is not.")


class ReportRevocation(BaseModel):
    """The revocation status of a certificate of the chain."""

    subject: str = Field(description="The certificate checked.")
    status: Literal["good", "revoked", "unknown", "unavailable"] = Field(description="Its status.")
    revoked_at: dt.datetime | None = Field(description="When it was revoked.")
    reason: str | None = Field(description="The revocation reason.")
    source: str | None = Field(description="embedded-ocsp, embedded-crl, fetched-ocsp, fetched-crl or govsign-records.")
    produced_at: dt.datetime | None = Field(description="When the OCSP response or CRL was made.")


class ReportSignature(BaseModel):
    """The validation of one signature (ETSI EN 319 102-1)."""

    indication: IndicationName = Field(description="The EN 319 102-1 indication.")
    sub_indication: str | None = Field(description="The sub-indication (EU DSS spelling); null when passed.")
    level: str = Field(description="PAdES-BASELINE-B..-LTA, CAdES-BASELINE-B..-LTA, or PKCS7.")
    field_name: str | None = Field(description="The PDF signature field.")
    revision: int | None = Field(description="The PDF revision the signature covers.")
    signer: ReportSigner | None = Field(description="Who signed.")
    chain: list[ReportCertificate] = Field(description="The certificate path, signer first.")
    claimed_signing_time: dt.datetime | None = Field(description="The signing time the signer claims.")
    best_signature_time: dt.datetime = Field(description="The earliest proof that the signature existed.")
    timestamps: list[ReportTimestamp] = Field(description="The signature's time-stamps.")
    revocation: list[ReportRevocation] = Field(description="Revocation status of the chain.")
    coverage: Literal["entire-document", "entire-revision", "partial"] = Field(description="What the signature covers.")
    modifications_after_signing: Literal["none", "permitted", "not-permitted"] = Field(
        description="Whether the document changed after signing, and whether that was allowed."
    )
    modifications: list[str] = Field(description="What changed after signing.")
    integrity: bool = Field(description="The signed hash matches the content.")
    valid_at_signing_time: bool = Field(description="The certificate was valid and not revoked at the signing time.")
    messages: list[ReportMessage] = Field(description="What explains the indication.")


class VerificationReport(BaseModel):
    """The verification of a document."""

    id: str = Field(description="The stored report's id (GET /api/v1/verifications/{id}).")
    document_sha256: str = Field(description="SHA-256 of the document verified.")
    document_type: Literal["pdf", "cms", "smime", "timestamp"] = Field(description="What was verified.")
    validation_time: dt.datetime = Field(description="When it was verified.")
    conclusion: Literal["valid", "invalid", "indeterminate", "no-signatures"] = Field(
        description="valid only when there is a signature and everything passed."
    )
    signatures: list[ReportSignature] = Field(description="Each signature, in document order.")
    timestamps: list[ReportTimestamp] = Field(description="Document time-stamps.")
    messages: list[ReportMessage] = Field(description="What concerns the document as a whole.")


class CMSVerificationRequest(BaseModel):
    """A CMS/CAdES signature to verify with the signed document or its digest, or an RFC 3161
    time-stamp with the stamped document (JSON)."""

    model_config = ConfigDict(extra="forbid")

    signature: str | None = Field(default=None, description="The signature (DER CMS SignedData), base64.", min_length=1)
    timestamp: str | None = Field(
        default=None,
        min_length=1,
        description="Instead of a signature: an RFC 3161 time-stamp token or reply, base64, with the stamped document.",
    )
    document: str | None = Field(default=None, description="The signed document, base64 (detached signatures).")
    digest: str | None = Field(
        default=None,
        pattern="^[0-9a-fA-F]{40,128}$",
        description="Instead of the document: its digest, hex, with the signature's digest algorithm.",
    )
    digest_algorithm: Literal["sha256", "sha384", "sha512"] = Field(
        default="sha256", description="The algorithm of ``digest`` (it must be the signature's)."
    )
