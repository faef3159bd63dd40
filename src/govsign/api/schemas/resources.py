"""JSON resources of the REST API (request and response bodies)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ProfileName = Literal["individual", "organization", "device"]
KeyAlgorithmName = Literal["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]
ReasonName = Literal[
    "unspecified",
    "key-compromise",
    "ca-compromise",
    "affiliation-changed",
    "superseded",
    "cessation-of-operation",
    "privilege-withdrawn",
]
StatusName = Literal["valid", "revoked", "expired", "on-hold"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrolmentRequest(_Strict):
    """Enrol a subscriber: from a PKCS#10 request, or with the key generated in the HSM."""

    profile: ProfileName = Field(description="Certificate profile.")
    subject: str | None = Field(
        default=None,
        max_length=1024,
        description="RFC 4514 subject; required with key_algorithm, defaults to the CSR's.",
    )
    email: str | None = Field(
        default=None, max_length=254, description="E-mail address for the subject alternative name."
    )
    csr: str | None = Field(default=None, max_length=65536, description="PKCS#10 request in PEM.")
    key_algorithm: KeyAlgorithmName | None = Field(
        default=None, description="Generate the key pair in the HSM with this algorithm."
    )
    validity_days: int | None = Field(default=None, ge=1, le=1827, description="Validity in days (at most 5 years).")
    agency_id: str | None = Field(
        default=None, max_length=64, description="The subscriber's agency (default: the caller's)."
    )


class RevocationRequest(_Strict):
    reason: ReasonName = Field(description="RFC 5280 reason (use the hold endpoint for certificateHold).")
    invalidity_date: dt.datetime | None = Field(
        default=None, description="When the key was compromised (with a time zone)."
    )


class RenewalRequest(_Strict):
    validity_days: int | None = Field(default=None, ge=1, le=1827, description="Validity in days.")


class RevocationInfo(BaseModel):
    reason: str
    revoked_at: dt.datetime
    invalidity_date: dt.datetime | None = None


class Certificate(BaseModel):
    serial: str = Field(description="Serial number, lower-case hex.")
    issuer_id: str
    status: StatusName
    profile: str
    subject: str
    email: str | None = None
    agency_id: str | None = None
    not_before: dt.datetime
    not_after: dt.datetime
    key_algorithm: str
    key_source: Literal["hsm", "csr"]
    fingerprint_sha256: str
    revocation: RevocationInfo | None = None
    certificate_pem: str


class CertificatePage(BaseModel):
    items: list[Certificate]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; absent on the last page."
    )


class Approval(BaseModel):
    id: str
    operation: str
    target: str
    parameters: dict[str, Any]
    agency_id: str | None = None
    status: Literal["pending", "executed", "rejected", "failed"]
    requested_by: str
    requested_at: dt.datetime
    decided_by: str | None = None
    decided_at: dt.datetime | None = None
    result: dict[str, Any] | None = None


class ApprovalPage(BaseModel):
    items: list[Approval]
    next_cursor: str | None = None


class AuditEvent(BaseModel):
    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    outcome: str
    client_id: str | None = None
    agency_id: str | None = None
    request_id: str | None = None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None = None


class CertificateAuthority(BaseModel):
    id: str
    role: Literal["root", "issuing"]
    parent_id: str | None = None
    subject: str
    serial: str
    key_algorithm: str
    not_before: dt.datetime
    not_after: dt.datetime
    certificate_url: str
    crl_url: str


class Agency(BaseModel):
    id: str
    name: str
    parent_id: str | None = None


# -- signing ---------------------------------------------------------------------------------

CredentialSerial = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F:]{1,60}$",
        description="Serial number (hex) of the signing certificate: an organization or device credential.",
    ),
]
DigestAlgorithmName = Literal["sha256", "sha384", "sha512"]
SignatureAlgorithm = Annotated[
    Literal["rsa-pss", "rsa-pkcs1v15"] | None,
    Field(
        default=None,
        description=(
            "How an RSA key signs: rsa-pss (RSASSA-PSS, MGF1 with the digest's hash, a salt as long as the "
            "digest) or rsa-pkcs1v15; default: the service's GOVSIGN_RSA_SIGNATURE_ALGORITHM. Refused for EC "
            "keys, which sign with ECDSA."
        ),
    ),
]
Base64Digest = Annotated[str, Field(min_length=1, max_length=100)]


OptionalCredential = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[0-9a-fA-F:]{1,60}$",
        description="Serial number (hex) of the signing certificate (required).",
    ),
]
Base64Document = Annotated[
    str, Field(min_length=1, max_length=1_400_000, description="The document, base64 (up to about 1 MB).")
]


class PDFAppearance(_Strict):
    """How a PDF signature looks and where it goes (the same names in /api/v1 and CSC signDoc)."""

    reason: str | None = Field(default=None, max_length=500, description="The /Reason of the signature.")
    location: str | None = Field(default=None, max_length=500, description="The /Location of the signature.")
    field_name: str | None = Field(
        default=None, min_length=1, max_length=100, description="Signature field name (default Signature1)."
    )
    certify: bool = Field(
        default=False, description="Certification (DocMDP) signature allowing form filling and signing only."
    )
    stamp: Literal["person", "seal", "attachment", "copy"] | None = Field(
        default=None,
        description="A visible signature as Decree 30/2020 Appendix I draws it: person (the official's "
        "handwritten signature image between the title and name lines), seal (the agency's seal over the left "
        "third of the person's signature; only on a document a person signed), attachment (document number and "
        "time, top right of page 1) or copy (SAO Y / SAO LỤC / TRÍCH SAO, the copying agency and time).",
    )
    stamp_page: int | None = Field(
        default=None,
        ge=-10000,
        le=10000,
        description="Page of stamp_box (0-based; -1 is the last; default 0), or the page to find title_text and "
        "name_text on (default: searched from the last page).",
    )
    stamp_box: str | None = Field(
        default=None,
        pattern=r"^\d{1,5}(\.\d{1,2})?(,\d{1,5}(\.\d{1,2})?){3}$",
        description="Explicit placement: x1,y1,x2,y2 in PDF points from the lower left corner.",
    )
    title_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="person: the signer's title line as printed on the page (e.g. PHÓ CHỦ TỊCH); the image is "
        "centred between it and name_text.",
    )
    name_text: str | None = Field(
        default=None, min_length=1, max_length=200, description="person: the signer's name line as printed."
    )
    document_number: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="attachment: the main document's number and symbol (số và ký hiệu, e.g. 123/QĐ-UBND).",
    )
    copy_form: Literal["SAO Y", "SAO LỤC", "TRÍCH SAO"] | None = Field(default=None, description="copy: the form.")
    copy_agency: str | None = Field(
        default=None, min_length=1, max_length=200, description="copy: the copying agency's name."
    )
    seal_diameter_mm: float | None = Field(
        default=None, ge=5, le=150, description="seal: the seal's diameter on paper (default: as registered)."
    )
    verification_line: bool = Field(
        default=True, description="person and seal: a short reference and QR code for checking the signature."
    )


class _PDFOptions(PDFAppearance):
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = Field(
        default="B-T",
        description="PAdES baseline level: B-T adds a time-stamp, B-LT revocation data, B-LTA an archive time-stamp.",
    )
    signature_algorithm: SignatureAlgorithm


class PDFSignatureQuery(_PDFOptions):
    """Parameters of a PDF signing."""

    credential: CredentialSerial


class PDFSignatureParams(_PDFOptions):
    """Query parameters of a PDF signing with a raw application/pdf body (credential required)."""

    credential: OptionalCredential


class _CMSOptions(_Strict):
    level: Literal["B-B", "B-T", "B-LT"] = Field(default="B-T", description="CAdES baseline level.")
    digest_algorithm: DigestAlgorithmName = Field(default="sha256", description="Digest of the content.")
    signature_algorithm: SignatureAlgorithm


class CMSSignatureQuery(_CMSOptions):
    """Parameters of a CAdES detached signing."""

    credential: CredentialSerial


class CMSSignatureParams(_CMSOptions):
    """Query parameters of a CAdES signing with a raw body (credential required)."""

    credential: OptionalCredential


class SMIMESignatureQuery(_Strict):
    """Parameters of an S/MIME signing."""

    credential: CredentialSerial


class SMIMESignatureParams(_Strict):
    """Query parameters of an S/MIME signing with a raw message/rfc822 body (credential required)."""

    credential: OptionalCredential


class PDFSignatureJSON(PDFSignatureQuery):
    """A PDF signing as JSON (small documents; large ones go as a raw application/pdf body)."""

    document: Base64Document


class CMSSignatureJSON(CMSSignatureQuery):
    """A CAdES signing as JSON (small contents; large ones go as a raw body)."""

    document: Base64Document


class SMIMESignatureJSON(SMIMESignatureQuery):
    """An S/MIME signing as JSON: the RFC 5322 message in base64."""

    document: Base64Document


class SignedDocument(BaseModel):
    """The answer to a JSON signing request."""

    document: str = Field(description="The signed PDF, the detached .p7s, or the signed message, base64.")
    document_sha256: str = Field(description="SHA-256 (hex) of the document as received.")
    credential: str = Field(description="Serial number (hex) of the signing certificate.")
    level: str | None = Field(default=None, description="The signature level made.")


class DigestSignatureRequest(_Strict):
    """Sign digests computed by the client: detached CMS SignedData or raw signature values."""

    credential: CredentialSerial
    digest_algorithm: DigestAlgorithmName = Field(description="Algorithm of the digests.")
    digests: list[Base64Digest] = Field(
        min_length=1, max_length=100, description="Digests, base64 (each the algorithm's length)."
    )
    output: Literal["cms", "raw"] = Field(
        default="cms", description="cms: detached CAdES SignedData; raw: the bare signature value."
    )
    level: Literal["B-B", "B-T", "B-LT"] = Field(default="B-B", description="CAdES level of cms output.")
    signature_algorithm: SignatureAlgorithm


class DigestSignatures(BaseModel):
    signatures: list[str] = Field(description="One signature per digest, in order, base64 (DER).")


# -- sole control ----------------------------------------------------------------------------


class PINRequest(_Strict):
    """Set or change the official's PIN (changing needs the current one)."""

    pin: str = Field(min_length=6, max_length=64, description="The new PIN.")
    current_pin: str | None = Field(default=None, max_length=64, description="The current PIN, when there is one.")


class TOTPEnrolment(BaseModel):
    credential: str = Field(description="Serial number (hex) of the official's certificate.")
    secret: str = Field(description="The TOTP seed in base32, shown once: give it only to the official.")
    otpauth_uri: str = Field(description="otpauth:// URI of the seed (for a QR code), shown once.")


class FactorStatus(BaseModel):
    credential: str
    totp: bool = Field(description="A TOTP seed is enrolled.")
    pin: bool = Field(description="A PIN is set.")
    locked_until: dt.datetime | None = Field(description="The factors are locked until then after wrong attempts.")


class ActivationRequest(_Strict):
    """The official's factors and the hashes of exactly the documents (or digests) to sign."""

    hash_algorithm: DigestAlgorithmName = Field(default="sha256", description="Algorithm of the hashes.")
    hashes: list[Base64Digest] = Field(min_length=1, max_length=100, description="Hashes, base64.")
    count: int | None = Field(default=None, ge=1, le=100, description="Number of hashes; required for more than one.")
    otp: str | None = Field(default=None, max_length=10, description="The official's current one-time code.")
    pin: str | None = Field(default=None, max_length=64, description="The official's PIN.")


class Activation(BaseModel):
    activation: str = Field(description="Single-use token for the Govsign-Activation header of the signing request.")
    credential: str
    hash_algorithm: str
    count: int
    expires_at: dt.datetime


class StampImageRequest(_Strict):
    """The image a credential's visible signatures show: the agency's seal (organization) or the
    official's handwritten signature (individual), a PNG with a transparent background."""

    image_png: str = Field(min_length=1, max_length=1_300_000, description="The PNG image, base64.")
    width_mm: float | None = Field(
        default=None,
        ge=5,
        le=150,
        description="Its visible width on paper in millimetres (for a round seal its diameter); unset, the PNG's "
        "resolution decides. A seal is drawn at this size unless the signing request gives seal_diameter_mm.",
    )


class StampImage(BaseModel):
    credential: str
    image_sha256: str = Field(description="SHA-256 (hex) of the stored PNG.")
    width_mm: float | None = Field(default=None, description="Its registered width on paper, millimetres.")
