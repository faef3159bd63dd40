"""The signing operations behind the REST endpoints (synchronous; the routes run them in a
worker thread): PAdES, CAdES detached and hash signing with an organization (agency seal) or
device credential whose key is in the HSM.

Before every signature the credential's status is checked in our own records; after it, one
audit event records the document hash (never the content). Refusals after authentication are
recorded as failed events by :meth:`govsign.runtime.Runtime.execute_with_ports`. Credentials of
the individual profile need a per-transaction signature activation, not offered yet: refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

from govsign.access.policy import Permission, Principal
from govsign.api.schemas import resources as schemas
from govsign.errors import ConflictError, InvalidInputError, PolicyViolationError
from govsign.pki.authority import CertificateAuthority
from govsign.pki.ports import AuditContext, CertificateStatus
from govsign.platform import Platform
from govsign.signing.cms import SigningCredential, raw_signature, sign_detached, sign_digests
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.storage.repositories import SQLPorts

T = TypeVar("T")

INDIVIDUAL_REFUSAL = (
    "Signing with an individual's certificate needs the official's signature activation, "
    "which this service does not offer yet."
)

_STATUS_REFUSALS = {
    CertificateStatus.REVOKED: "The signing certificate is revoked and can no longer sign.",
    CertificateStatus.ON_HOLD: "The signing certificate is on hold and cannot sign until it is released.",
    CertificateStatus.EXPIRED: "The signing certificate has expired and can no longer sign.",
}


def decode_base64(value: str, what: str) -> bytes:
    """Strict standard base64; InvalidInputError naming the field otherwise."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise InvalidInputError(f"The {what} is not valid base64.") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SigningService:
    """Signing operations for one authenticated caller."""

    def __init__(self, platform: Platform, principal: Principal, context: AuditContext) -> None:
        self.platform = platform
        self.runtime = platform.runtime
        self.principal = principal
        self.context = context

    def _credential(
        self, authority: CertificateAuthority, ports: SQLPorts, serial: str
    ) -> tuple[SigningCredential, str]:
        """The credential named by serial, after the agency, key, status and profile checks."""
        view = authority.show(serial)
        record = view.record
        self.platform.authorize(self.principal, Permission.SIGN, agency_id=record.agency_id, agency_bound=True)
        if record.key is None:
            raise InvalidInputError("The credential's key is not held in the HSM of this service, so it cannot sign.")
        refusal = _STATUS_REFUSALS.get(view.status)
        if refusal is not None:
            raise ConflictError(refusal)
        if record.profile == "individual":
            raise PolicyViolationError(INDIVIDUAL_REFUSAL)
        if record.profile not in ("organization", "device"):
            raise PolicyViolationError(f"Certificates of the {record.profile} profile cannot sign documents.")
        chain: list[bytes] = []
        ca = ports.cas.get_ca(record.issuer_id)
        while ca is not None:
            chain.append(ca.certificate_der)
            ca = ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
        credential = SigningCredential(key=record.key, certificate_der=record.certificate_der, chain_der=tuple(chain))
        return credential, record.serial_hex

    def _sign(self, serial: str, make: Callable[[SigningCredential, str], tuple[T, dict[str, Any]]]) -> T:
        """Check the credential, sign, and write one audit event, in one transaction."""

        def operation(authority: CertificateAuthority, ports: SQLPorts) -> T:
            credential, serial_hex = self._credential(authority, ports, serial)
            result, details = make(credential, serial_hex)
            self.platform._audit(
                ports,
                "signature.create",
                self.principal.actor,
                "certificate",
                serial_hex,
                details,
                self.context,
            )
            return result

        return self.runtime.execute_with_ports(
            operation,
            action="signature.create",
            actor=self.principal.actor,
            object_id=serial,
            audit_context=self.context,
        )

    def sign_pdf(self, body: schemas.PDFSignatureRequest) -> dict[str, Any]:
        document = decode_base64(body.pdf, "pdf")
        document_sha256 = hashlib.sha256(document).hexdigest()
        spec = PDFSignatureSpec(
            field_name=body.field_name or "Signature1",
            reason=body.reason,
            location=body.location,
            level=body.level,
        )

        def make(credential: SigningCredential, serial_hex: str) -> tuple[dict[str, Any], dict[str, Any]]:
            timestamper = LocalTimeStamper(self.runtime.answer_timestamp) if body.level == "B-T" else None
            signed = sign_pdf(document, credential, self.runtime.keystore, spec, timestamper)
            resource = schemas.PDFSignature(
                pdf=_b64(signed),
                document_sha256=document_sha256,
                signed_sha256=hashlib.sha256(signed).hexdigest(),
                level=body.level,
                credential=serial_hex,
            ).model_dump(mode="json")
            details = {"format": "pades", "level": body.level, "document_sha256": document_sha256, "count": 1}
            return resource, details

        return self._sign(body.credential, make)

    def sign_cms(self, body: schemas.CMSSignatureRequest) -> dict[str, Any]:
        content = decode_base64(body.content, "content")
        content_sha256 = hashlib.sha256(content).hexdigest()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[dict[str, Any], dict[str, Any]]:
            signature = sign_detached(content, credential, self.runtime.keystore, self.runtime.clock)
            resource = schemas.CMSSignature(signature=_b64(signature), content_sha256=content_sha256)
            details = {"format": "cades", "level": "B-B", "document_sha256": content_sha256, "count": 1}
            return resource.model_dump(mode="json"), details

        return self._sign(body.credential, make)

    def sign_digests(self, body: schemas.DigestSignatureRequest) -> dict[str, Any]:
        digests = [decode_base64(digest, "digest") for digest in body.digests]

        def make(credential: SigningCredential, serial_hex: str) -> tuple[dict[str, Any], dict[str, Any]]:
            keystore, algorithm = self.runtime.keystore, body.digest_algorithm
            if body.output == "cms":
                signatures = sign_digests(digests, algorithm, credential, keystore, self.runtime.clock)
            else:
                signatures = [raw_signature(digest, algorithm, credential, keystore) for digest in digests]
            joined = hashlib.sha256(b"".join(digests)).hexdigest()
            details = {
                "format": "cades" if body.output == "cms" else "raw",
                "level": "B-B" if body.output == "cms" else None,
                "document_sha256": joined,
                "digest_algorithm": algorithm,
                "count": len(digests),
            }
            return schemas.DigestSignatures(signatures=[_b64(s) for s in signatures]).model_dump(mode="json"), details

        return self._sign(body.credential, make)
