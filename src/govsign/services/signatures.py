"""Signing with a credential whose key is in the HSM: PAdES, CAdES detached, hash signing and
S/MIME.

Each signing has three steps, so that no database transaction (and on SQLite no write lock) is
held while the HSM signs:

1. the credential is looked up and checked in our own records (:mod:`signing_credentials`: its
   agency, key, profile and status); for an official's (individual) credential the signature
   activation is checked against the hashes of the documents and used up, in one transaction;
   other credentials are checked in a read-only one;
2. outside any transaction: the signature is made (B-T and above time-stamped by our TSA; for LT
   levels the revocation evidence gathered from our own OCSP responder and CRLs);
3. in one transaction: one audit event with the document hash (never the content), credential,
   client, level and the revocation evidence used.

Refusals at any step are recorded as failed audit events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from govsign.access.policy import Permission
from govsign.clock import Clock
from govsign.errors import ErrorKind, GovsignError, InvalidInputError
from govsign.keystore.api import KeyStore
from govsign.pki.authority import CertificateView
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.documents import SignedFile, SpooledDocument
from govsign.services.evidence import EvidenceService
from govsign.services.signing_credentials import check_may_sign, needs_activation, signing_credential
from govsign.services.sole_control import SoleControl
from govsign.services.status import TimeStampService
from govsign.services.uow import UnitOfWork, Work
from govsign.signing.cms import CMSSignatureSpec, SigningCredential, raw_signature, sign_digest, sign_digests
from govsign.signing.evidence import RevocationEvidence
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.signing.smime import sign_smime
from govsign.signing.stamp import VisibleStamp

T = TypeVar("T")

#: The hashes an activation must cover, given the activation's digest algorithm.
Hashes = Callable[[str], tuple[str, list[bytes]]]


@dataclass(frozen=True, kw_only=True)
class PDFSigningRequest:
    """A PAdES signature of one PDF."""

    credential: str
    """Serial (hex) of the signing certificate."""
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = "B-T"
    """PAdES baseline level."""
    reason: str | None = None
    """The signature's /Reason."""
    location: str | None = None
    """The signature's /Location."""
    field_name: str | None = None
    """The signature field (default Signature1)."""
    certify: bool = False
    """A certification (DocMDP) signature allowing form filling and signing only."""
    stamp: bool = False
    """A visible signature per Decree 30/2020."""
    stamp_page: int = 0
    """Page of the stamp, 0-based; -1 is the last."""
    stamp_box: tuple[float, float, float, float] = (330.0, 60.0, 565.0, 150.0)
    """Rectangle of the stamp in PDF points (x1, y1, x2, y2 from the lower left corner)."""
    stamp_title: str | None = None
    """The official's title, shown above the signature."""


@dataclass(frozen=True, kw_only=True)
class CMSSigningRequest:
    """A detached CAdES signature of any content."""

    credential: str
    """Serial (hex) of the signing certificate."""
    level: Literal["B-B", "B-T", "B-LT"] = "B-T"
    """CAdES baseline level."""
    digest_algorithm: str = "sha256"
    """Digest of the content."""


@dataclass(frozen=True, kw_only=True)
class DigestSigningRequest:
    """Signatures over digests the client computed (a batch of up to 100)."""

    credential: str
    """Serial (hex) of the signing certificate."""
    digest_algorithm: str
    """Algorithm of the digests."""
    digests: tuple[bytes, ...]
    """The digests, each of the algorithm's length."""
    output: Literal["cms", "raw"] = "cms"
    """Detached CAdES SignedData, or the bare signature value."""
    level: Literal["B-B", "B-T", "B-LT"] = "B-B"
    """CAdES level of CMS output."""


@dataclass(frozen=True, kw_only=True)
class SignedContent:
    """A signature (or signed message) made in memory, and the hash of what was signed."""

    data: bytes
    """The detached CMS, or the signed message."""
    document_sha256: str
    """SHA-256 (hex) of the document as received."""


@dataclass(frozen=True, kw_only=True)
class _Checked:
    view: CertificateView
    """The signing certificate and its status."""
    credential: SigningCredential
    """The credential as the signing cores take it."""
    details: dict[str, Any]
    """What the signature's audit event records of the checks."""


class Signatures:
    """Signing operations."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        keystore: KeyStore,
        clock: Clock,
        authorization: Authorization,
        audit: AuditLog,
        sole_control: SoleControl,
        evidence: EvidenceService,
        timestamps: TimeStampService,
        stamp_font: Path | None,
    ) -> None:
        self._uow = uow
        self._keystore = keystore
        self._clock = clock
        self._authorization = authorization
        self._audit = audit
        self._sole_control = sole_control
        self._evidence = evidence
        self._timestamps = timestamps
        self._stamp_font = stamp_font

    # -- the three steps ----------------------------------------------------------------------

    def _check(self, serial: str, requester: Requester, activation: str | None, hashes: Hashes) -> _Checked:
        """Step 1: the credential after the agency, key, status and profile checks, with the
        activation used up for an official's credential. Only that writes, so other credentials
        are checked in a read-only transaction (no write lock); an official's is checked again
        in the transaction that uses the activation up."""
        with self._uow.reading() as work:
            checked = self._checked(work, serial, requester)
        if not needs_activation(checked.view):
            return checked
        with self._uow.transaction(requester.context) as work:
            checked = self._checked(work, serial, requester)
            if needs_activation(checked.view):
                checked.details.update(
                    self._sole_control.consume(work.ports, checked.view, requester, activation, hashes)
                )
        return checked

    def _checked(self, work: Work, serial: str, requester: Requester) -> _Checked:
        view = work.ca.show(serial)
        self._authorization.check(requester, Permission.SIGN, agency_id=view.record.agency_id)
        check_may_sign(view)
        return _Checked(
            view=view,
            credential=signing_credential(work.ports, view),
            details={"status_checked": view.status.value},
        )

    def _record(self, view: CertificateView, requester: Requester, details: dict[str, Any]) -> None:
        """Step 3: the audit event of a signature that was made."""
        client = requester.principal.client_name if requester.principal is not None else None
        serial_hex = view.record.serial_hex
        with self._uow.transaction(requester.context) as work:
            work.audit.certificate_event(
                "signature.create", requester, serial_hex, {**details, "credential": serial_hex, "client": client}
            )

    def _sign(
        self,
        serial: str,
        requester: Requester,
        activation: str | None,
        hashes: Hashes,
        make: Callable[[SigningCredential, str], tuple[T, dict[str, Any]]],
    ) -> T:
        try:
            checked = self._check(serial, requester, activation, hashes)
            result, details = make(checked.credential, checked.view.record.serial_hex)
            self._record(checked.view, requester, {**checked.details, **details})
        except GovsignError as exc:
            if exc.kind is not ErrorKind.UNAVAILABLE:
                self._audit.record_refusal("signature.create", requester, serial, exc)
            raise
        return result

    def _stamp_inputs(self, serial: str) -> tuple[bool, bytes | None]:
        """Whether the credential is an official's, and the image its visible signatures show."""
        with self._uow.reading() as work:
            view = work.ca.show(serial)
            assert view.record.id is not None
            return needs_activation(view), work.ports.stamp_images.get(view.record.id)

    def _revocation_evidence(self, credential: SigningCredential, level: str) -> RevocationEvidence | None:
        if level not in ("B-LT", "B-LTA"):
            return None
        return self._evidence.revocation_evidence((credential.certificate_der, *credential.chain_der))

    def _timestamp(self, level: str) -> Callable[[bytes], bytes] | None:
        return self._timestamps.answer if level != "B-B" else None

    # -- operations ---------------------------------------------------------------------------

    def sign_pdf(
        self, document: SpooledDocument, request: PDFSigningRequest, requester: Requester, activation: str | None
    ) -> SignedFile:
        stamp: VisibleStamp | None = None
        if request.stamp:
            official, image_png = self._stamp_inputs(request.credential)
            stamp = VisibleStamp(
                page=request.stamp_page,
                box=request.stamp_box,
                kind="individual" if official else "organization",
                title=request.stamp_title,
                image_png=image_png,
            )
        if request.stamp_title is not None and (stamp is None or stamp.kind != "individual"):
            raise InvalidInputError("A stamp title is shown only on an official's visible signature.")
        spec = PDFSignatureSpec(
            field_name=request.field_name or "Signature1",
            reason=request.reason,
            location=request.location,
            level=request.level,
            certify=request.certify,
            stamp=stamp,
        )
        document_sha256 = document.digest("sha256").hex()
        body = document.in_memory
        # a small document is signed in memory; a large one file to file, so memory stays bounded
        output = None if body is not None else SpooledDocument.create(document.path.parent if document.path else None)

        def make(credential: SigningCredential, serial_hex: str) -> tuple[SignedFile, dict[str, Any]]:
            evidence = self._revocation_evidence(credential, request.level)
            timestamper = LocalTimeStamper(self._timestamps.answer) if request.level != "B-B" else None
            arguments: dict[str, Any] = {
                "evidence": evidence,
                "signing_time": self._clock.now(),
                "stamp_font": self._stamp_font,
            }
            if output is None:
                assert body is not None
                data = sign_pdf(body, credential, self._keystore, spec, timestamper, **arguments)
                assert data is not None  # without an output, the signed PDF is returned
                signed_sha256 = hashlib.sha256(data).hexdigest()
            else:
                assert output.path is not None
                data = None
                with document.open() as source, output.path.open("wb") as sink:
                    sign_pdf(source, credential, self._keystore, spec, timestamper, output=sink, **arguments)
                signed_sha256 = output.digest("sha256").hex()
            signed = SignedFile(
                path=output.path if output is not None else None,
                data=data,
                document_sha256=document_sha256,
                signed_sha256=signed_sha256,
                credential=serial_hex,
                level=request.level,
            )
            return signed, _details("pades", request.level, evidence, document_sha256=document_sha256, count=1)

        try:
            return self._sign(
                request.credential, requester, activation, lambda alg: (alg, [document.digest(alg)]), make
            )
        except BaseException:
            if output is not None:
                output.discard()
            raise

    def sign_cms(
        self, document: SpooledDocument, request: CMSSigningRequest, requester: Requester, activation: str | None
    ) -> SignedContent:
        content_sha256 = document.digest("sha256").hex()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[bytes, dict[str, Any]]:
            evidence = self._revocation_evidence(credential, request.level)
            signature = sign_digest(
                document.digest(request.digest_algorithm),
                request.digest_algorithm,
                credential,
                self._keystore,
                self._clock,
                CMSSignatureSpec(digest_algorithm=request.digest_algorithm, level=request.level),  # type: ignore[arg-type]
                timestamper=self._timestamp(request.level),
                evidence=evidence,
            )
            return signature, _details("cades", request.level, evidence, document_sha256=content_sha256, count=1)

        signature = self._sign(
            request.credential, requester, activation, lambda alg: (alg, [document.digest(alg)]), make
        )
        return SignedContent(data=signature, document_sha256=content_sha256)

    def sign_digests(self, request: DigestSigningRequest, requester: Requester, activation: str | None) -> list[bytes]:
        digests = list(request.digests)
        cms = request.output == "cms"
        level = request.level if cms else "B-B"

        def make(credential: SigningCredential, serial_hex: str) -> tuple[list[bytes], dict[str, Any]]:
            algorithm = request.digest_algorithm
            evidence = self._revocation_evidence(credential, level) if cms else None
            if cms:
                signatures = sign_digests(
                    digests,
                    algorithm,
                    credential,
                    self._keystore,
                    self._clock,
                    CMSSignatureSpec(digest_algorithm=algorithm, level=level),  # type: ignore[arg-type]
                    timestamper=self._timestamp(level),
                    evidence=evidence,
                )
            else:
                signatures = [raw_signature(digest, algorithm, credential, self._keystore) for digest in digests]
            details = _details(
                "cades" if cms else "raw",
                level if cms else None,
                evidence,
                digests=[digest.hex() for digest in digests],
                digest_algorithm=algorithm,
                count=len(digests),
            )
            return signatures, details

        return self._sign(
            request.credential, requester, activation, lambda _alg: (request.digest_algorithm, digests), make
        )

    def sign_smime(
        self, document: SpooledDocument, credential_serial: str, requester: Requester, activation: str | None
    ) -> SignedContent:
        message_sha256 = document.digest("sha256").hex()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[bytes, dict[str, Any]]:
            signed = sign_smime(document.read_all(), credential, self._keystore, self._clock)
            return signed, _details("smime", "B-B", None, document_sha256=message_sha256, count=1)

        signed = self._sign(credential_serial, requester, activation, lambda alg: (alg, [document.digest(alg)]), make)
        return SignedContent(data=signed, document_sha256=message_sha256)


def _details(format_name: str, level: str | None, evidence: RevocationEvidence | None, **facts: Any) -> dict[str, Any]:
    """What the audit event of a signature records (hashes, never content)."""
    details: dict[str, Any] = {"format": format_name, "level": level, **facts}
    if evidence is not None:
        details["revocation_evidence"] = evidence.summary()
    return details
