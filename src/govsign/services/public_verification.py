"""The public verification page's use cases (no login; Law on E-Transactions 20/2023 art. 24):
verify an uploaded document for anyone, within a rate per address shared by every worker and
node; resolve the reference printed on a stamp's verification line to the signature govsign
made; confirm that an uploaded file is the document that reference names.

A visitor is no API client: the verifications run for the requester ``public:<address>``,
are stored (the report: hashes, never the document) and audited like the API's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from cryptography import x509

from govsign.clock import Clock
from govsign.errors import InvalidInputError, NotFoundError
from govsign.pki.records import CertificateStatus
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Requester
from govsign.services.uow import UnitOfWork

if TYPE_CHECKING:
    from govsign.services.documents import SpooledDocument
    from govsign.services.verifications import StoredReport, Verifications

#: References as the stamps print them: GS- and 26 base32 characters (128 bits).
REFERENCE_PATTERN = re.compile(r"^GS-[A-Z2-7]{26}$")


@dataclass(frozen=True, kw_only=True)
class PublicPolicy:
    """Limits of the public page (from the settings)."""

    verifications_per_minute: int = 30
    """Verifications one address may ask for in a minute."""


@dataclass(frozen=True, kw_only=True)
class ReferencedSignature:
    """What a stamp's reference resolves to: only what the signed document itself shows."""

    reference: str
    """The reference."""
    signer: str
    """The signer's name (CN)."""
    agency: str | None
    """The signer's organization (O)."""
    signed_at: dt.datetime
    """When govsign made the signature."""
    level: str
    """PAdES level."""
    stamp: str
    """The stamp profile (person, seal)."""
    document_sha256: str
    """SHA-256 (hex) of the document as sent to be signed."""
    signed_sha256: str
    """SHA-256 (hex) of the signed document as returned."""
    certificate_status: CertificateStatus
    """The signing certificate's status now."""
    certificate_serial: str
    """Its serial number (hex), as printed in the signature."""


def visitor(address: str) -> Requester:
    """The requester a visitor of the public page is."""
    return Requester.operator(f"public:{address[:64]}")


class PublicVerification:
    """Verification for anyone, by upload or by a stamp's reference."""

    def __init__(
        self, *, uow: UnitOfWork, clock: Clock, audit: AuditLog, verifications: Verifications, policy: PublicPolicy
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._verifications = verifications
        self._policy = policy

    def admit(self, address: str) -> int:
        """Count one verification for ``address``; the seconds to wait when it is over the rate
        (0: go on). Counted in the database, so every worker and node shares the rate."""
        now = self._clock.now()
        window = now.replace(second=0, microsecond=0)
        with self._uow.transaction() as work:
            count = work.ports.rate_counters.add(f"public-verify:{address[:64]}", window)
        if count <= self._policy.verifications_per_minute:
            return 0
        return max(1, int((window + dt.timedelta(minutes=1) - now).total_seconds()) + 1)

    def verify(
        self,
        address: str,
        *,
        document: SpooledDocument,
        kind: str,
        signature: bytes | None = None,
    ) -> StoredReport:
        """Verify a PDF, an S/MIME message (``.eml``) or a detached ``.p7s`` with its document."""
        who = visitor(address)
        if kind == "pdf":
            return self._verifications.verify_pdf(document, who)
        if kind == "smime":
            return self._verifications.verify_smime(document, who)
        if kind == "cms" and signature is not None:
            return self._verifications.verify_cms(signature, who, document=document)
        raise InvalidInputError("Upload a PDF, an e-mail (.eml), or a .p7s signature with its document.")

    def referenced(self, reference: str) -> ReferencedSignature:
        """The signature a stamp's reference names (NotFoundError for any other string)."""
        reference = reference.strip().upper()
        if not REFERENCE_PATTERN.match(reference):
            raise NotFoundError("No signature has this reference.")
        with self._uow.reading() as work:
            stored = work.ports.references.get(reference)
            if stored is None:
                raise NotFoundError("No signature has this reference.")
            record = work.ports.certificates.get(stored.certificate_id)
            assert record is not None
            view = work.ca.view(record)
        subject = x509.load_der_x509_certificate(record.certificate_der).subject
        names = {
            oid: subject.get_attributes_for_oid(oid)
            for oid in (x509.NameOID.COMMON_NAME, x509.NameOID.ORGANIZATION_NAME)
        }
        common = names[x509.NameOID.COMMON_NAME]
        organization = names[x509.NameOID.ORGANIZATION_NAME]
        return ReferencedSignature(
            reference=reference,
            signer=str(common[0].value) if common else record.subject,
            agency=str(organization[0].value) if organization else None,
            signed_at=stored.signed_at,
            level=stored.level,
            stamp=stored.stamp,
            document_sha256=stored.document_sha256,
            signed_sha256=stored.signed_sha256,
            certificate_status=view.status,
            certificate_serial=record.serial_hex,
        )

    def is_the_referenced_document(self, reference: ReferencedSignature, document: SpooledDocument) -> bool:
        """The upload is the signed document, or a later version of it (more signatures added
        as incremental updates keep it as a prefix ending at one of its ``%%EOF`` markers)."""
        with document.open() as stream:
            return any(digest == reference.signed_sha256 for digest in _prefix_digests(stream))


def _prefix_digests(stream: BinaryIO) -> Iterator[str]:
    """SHA-256 (hex) of every prefix of the file that ends at a ``%%EOF`` marker, or after the
    one or two end-of-line bytes that follow it."""
    ends: list[int] = []
    offset, tail = 0, b""
    while chunk := stream.read(1 << 20):
        data = tail + chunk
        base = offset - len(tail)
        start = 0
        while (found := data.find(b"%%EOF", start)) >= 0:
            ends.extend(base + found + 5 + extra for extra in (0, 1, 2))
            start = found + 1
        offset += len(chunk)
        tail = data[-4:]
    stream.seek(0)
    hasher, position = hashlib.sha256(), 0
    for end in sorted(set(e for e in ends if e <= offset)):
        while position < end:
            piece = stream.read(min(1 << 20, end - position))
            if not piece:
                return
            hasher.update(piece)
            position += len(piece)
        yield hasher.copy().hexdigest()
