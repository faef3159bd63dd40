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

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography import x509

from govsign.access.policy import Permission
from govsign.clock import Clock
from govsign.errors import DatabaseUnavailableError, GovsignError, InvalidInputError, PolicyViolationError
from govsign.keystore.api import KeyStore, SignatureScheme
from govsign.pki.authority import CertificateView
from govsign.pki.issuer import serial_to_hex
from govsign.services.audit_log import AuditLog
from govsign.services.authorization import Authorization, Requester
from govsign.services.documents import SignedFile, SpooledDocument
from govsign.services.evidence import EvidenceService
from govsign.services.signing_credentials import check_may_sign, needs_activation, signing_credential
from govsign.services.sole_control import SoleControl
from govsign.services.status import TimeStampService
from govsign.services.uow import UnitOfWork, Work
from govsign.signing.cms import (
    CMSSignatureSpec,
    SigningCredential,
    raw_signature,
    sign_digest,
    sign_digests,
    signature_scheme,
)
from govsign.signing.evidence import RevocationEvidence
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.signing.smime import sign_smime
from govsign.signing.stamp import (
    AnchorPlacement,
    BoxPlacement,
    CopyForm,
    Placement,
    SealOverPersonPlacement,
    StampImage,
    StampProfile,
    TextPlacement,
    VerificationLine,
    VisibleStamp,
)
from govsign.storage.references import SignatureReferenceRecord
from govsign.validation.integrity import intact_signatures

T = TypeVar("T")

#: The hashes an activation must cover, given the activation's digest algorithm.
Hashes = Callable[[str], tuple[str, list[bytes]]]

#: How an RSA key signs: RSASSA-PSS (Circular 15/2025 Appendix I) or PKCS#1 v1.5.
SignatureAlgorithm = Literal["rsa-pss", "rsa-pkcs1v15"]
SIGNATURE_ALGORITHMS: tuple[SignatureAlgorithm, ...] = ("rsa-pss", "rsa-pkcs1v15")


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
    """The signature field: the one named (new, or empty), else the document's only empty
    signature field for an invisible signature, else a new one (Signature1, Signature2...)."""
    certify: bool = False
    """A certification (DocMDP) signature allowing form filling and signing only."""
    stamp: StampProfile | None = None
    """A visible signature as Decree 30/2020 Appendix I draws it: person (an official's
    credential), seal (an agency's, on a document a person signed), attachment or copy (an
    agency's); None for an invisible signature."""
    stamp_page: int | None = None
    """Page of ``stamp_box`` (0-based, -1 the last; default 0), or where to find the title and
    name lines (default: searched from the last page)."""
    stamp_box: tuple[float, float, float, float] | None = None
    """Explicit placement in PDF points (x1, y1, x2, y2 from the lower left corner)."""
    title_text: str | None = None
    """person: the title line printed on the page; the image is centred between it and the name."""
    name_text: str | None = None
    """person: the name line printed on the page."""
    document_number: str | None = None
    """attachment: the main document's number and symbol."""
    copy_form: CopyForm | None = None
    """copy: SAO Y, SAO LỤC or TRÍCH SAO."""
    copy_agency: str | None = None
    """copy: the copying agency's name."""
    seal_diameter_mm: float | None = None
    """seal: its diameter on paper (default: the registered width of the seal image)."""
    verification_line: bool = True
    """person and seal: a short reference and a QR code for checking the signature."""
    signature_algorithm: SignatureAlgorithm | None = None
    """How an RSA key signs; None is the service's default (GOVSIGN_RSA_SIGNATURE_ALGORITHM).
    An EC key signs with ECDSA only: giving it one is refused."""


@dataclass(frozen=True, kw_only=True)
class CMSSigningRequest:
    """A detached CAdES signature of any content."""

    credential: str
    """Serial (hex) of the signing certificate."""
    level: Literal["B-B", "B-T", "B-LT"] = "B-T"
    """CAdES baseline level."""
    digest_algorithm: str = "sha256"
    """Digest of the content."""
    signature_algorithm: SignatureAlgorithm | None = None
    """How an RSA key signs; None is the service's default (GOVSIGN_RSA_SIGNATURE_ALGORITHM).
    An EC key signs with ECDSA only: giving it one is refused."""


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
    signature_algorithm: SignatureAlgorithm | None = None
    """How an RSA key signs (raw output: the bare PSS or PKCS#1 v1.5 value); None is the
    service's default (GOVSIGN_RSA_SIGNATURE_ALGORITHM). An EC key signs with ECDSA only."""


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
        rsa_signature_algorithm: SignatureAlgorithm = "rsa-pkcs1v15",
        verification_base_url: str | None = None,
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
        self._verification_base_url = verification_base_url
        self._rsa_signature_algorithm = _checked_algorithm(rsa_signature_algorithm)

    # -- the three steps ----------------------------------------------------------------------

    def _check(
        self,
        serial: str,
        requester: Requester,
        activation: str | None,
        hashes: Hashes,
        signature_algorithm: SignatureAlgorithm | None = None,
    ) -> _Checked:
        """Step 1: the credential after the agency, key, status and profile checks (and that the
        signature algorithm asked for fits its key), with the activation used up for an
        official's credential. Only that writes, so other credentials are checked in a read-only
        transaction (no write lock); an official's is checked again in the transaction that uses
        the activation up."""
        with self._uow.reading() as work:
            checked = self._checked(work, serial, requester)
        self._scheme(checked.credential, signature_algorithm)  # refused before the activation is used
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
            reference = details.get("verification_reference")
            if reference is not None and view.record.id is not None:  # what the stamp's reference resolves to
                work.ports.references.add(
                    SignatureReferenceRecord(
                        reference=str(reference),
                        certificate_id=view.record.id,
                        document_sha256=str(details["document_sha256"]),
                        signed_sha256=str(details["signed_sha256"]),
                        level=str(details["level"]),
                        stamp=str(details["stamp"]),
                        signed_at=self._clock.now(),
                    )
                )

    def _scheme(self, credential: SigningCredential, requested: SignatureAlgorithm | None) -> SignatureScheme:
        """How the credential's key signs: the algorithm asked for (InvalidInputError when the key
        is not RSA), else GOVSIGN_RSA_SIGNATURE_ALGORITHM for an RSA key and ECDSA for an EC key."""
        if requested is not None:
            return signature_scheme(credential.key, SignatureScheme(_checked_algorithm(requested)))
        if credential.key.algorithm.is_rsa:
            return SignatureScheme(self._rsa_signature_algorithm)
        return signature_scheme(credential.key)

    def _sign(
        self,
        serial: str,
        requester: Requester,
        activation: str | None,
        hashes: Hashes,
        make: Callable[[SigningCredential, str], tuple[T, dict[str, Any]]],
        signature_algorithm: SignatureAlgorithm | None = None,
    ) -> T:
        try:
            checked = self._check(serial, requester, activation, hashes, signature_algorithm)
            result, details = make(checked.credential, checked.view.record.serial_hex)
            self._record(checked.view, requester, {**checked.details, **details})
        except GovsignError as exc:
            if not isinstance(exc, DatabaseUnavailableError):  # an unavailable HSM is audited too
                self._audit.record_refusal("signature.create", requester, serial, exc)
            raise
        return result

    def _visible_stamp(
        self, document: SpooledDocument, request: PDFSigningRequest, password: str | None
    ) -> VisibleStamp | None:
        """The Decree 30 appearance asked for, checked against the credential (person: an
        official's; seal, attachment, copy: an agency's), its registered image and, for a seal,
        the document (it must carry an intact signature by an official of ours)."""
        if request.stamp is None:
            if any(value is not None for value in _stamp_only(request)):
                raise InvalidInputError("The placement and stamp parameters need a stamp profile (stamp=...).")
            return None
        profile = request.stamp
        with self._uow.reading() as work:
            view = work.ca.show(request.credential)
            assert view.record.id is not None
            stored = work.ports.stamp_images.get(view.record.id)
        wanted = "individual" if profile == "person" else "organization"
        if view.record.profile != wanted:
            raise PolicyViolationError(
                f"A {profile} stamp is made with an {wanted} credential (Decree 30/2020 Appendix I); "
                f"this one is {view.record.profile}."
            )
        image = None
        if profile in ("person", "seal"):
            if stored is None:
                raise InvalidInputError(
                    f"The credential has no registered {'signature' if profile == 'person' else 'seal'} image; "
                    "register one (PUT /api/v1/credentials/{serial}/stamp-image) before signing with a visible stamp."
                )
            width = request.seal_diameter_mm if profile == "seal" and request.seal_diameter_mm else stored.width_mm
            image = StampImage(png=stored.png, width_mm=width)
        elif request.seal_diameter_mm is not None:
            raise InvalidInputError("seal_diameter_mm is for the seal profile only.")
        person_field = self._person_signature(document, password) if profile == "seal" else None
        return VisibleStamp(
            profile=profile,
            placement=_placement(request, person_field),
            image=image,
            document_number=request.document_number,
            copy_form=request.copy_form,
            copy_agency=request.copy_agency,
            verification=self._verification_line() if request.verification_line and image is not None else None,
        )

    def _person_signature(self, document: SpooledDocument, password: str | None) -> str:
        """The field of the latest intact signature by an official (an individual credential of
        ours) in the document: a seal goes only under one (PolicyViolationError otherwise)."""
        with document.open() as stream:
            found = intact_signatures(stream, password=password)
        with self._uow.reading() as work:
            for signature in reversed(found):
                serial = serial_to_hex(x509.load_der_x509_certificate(signature.certificate_der).serial_number)
                records = work.ports.certificates.find_by_serial(serial)
                if any(r.certificate_der == signature.certificate_der and r.profile == "individual" for r in records):
                    return signature.field_name
        raise PolicyViolationError(
            "An agency's seal goes only on a document its official has signed (Decree 30/2020 Appendix I, "
            "item 8(a)); this document carries no intact signature by an official."
        )

    def _verification_line(self) -> VerificationLine:
        """A fresh reference for the stamp's verification line (resolved by the verification page)."""
        # 128 random bits (the verification page must not be enumerable), base32 without padding
        reference = "GS-" + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
        url = f"{self._verification_base_url.rstrip('/')}/v/{reference}" if self._verification_base_url else None
        return VerificationLine(reference=reference, url=url)

    def _revocation_evidence(self, credential: SigningCredential, level: str) -> RevocationEvidence | None:
        if level not in ("B-LT", "B-LTA"):
            return None
        return self._evidence.revocation_evidence((credential.certificate_der, *credential.chain_der))

    def _timestamp(self, level: str) -> Callable[[bytes], bytes] | None:
        return self._timestamps.answer if level != "B-B" else None

    # -- operations ---------------------------------------------------------------------------

    def sign_pdf(
        self,
        document: SpooledDocument,
        request: PDFSigningRequest,
        requester: Requester,
        activation: str | None,
        *,
        password: str | None = None,
    ) -> SignedFile:
        """A PAdES signature of ``document``; ``password`` opens an encrypted one (it is passed
        to the signing core only: never logged, audited or stored)."""
        try:
            stamp = self._visible_stamp(document, request, password)
        except GovsignError as exc:
            self._audit.record_refusal("signature.create", requester, request.credential, exc)
            raise
        spec = PDFSignatureSpec(
            field_name=request.field_name,
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
            scheme = self._scheme(credential, request.signature_algorithm)
            signing_spec = replace(spec, signature_scheme=scheme)
            evidence = self._revocation_evidence(credential, request.level)
            timestamper = LocalTimeStamper(self._timestamps.answer) if request.level != "B-B" else None
            arguments: dict[str, Any] = {
                "evidence": evidence,
                "signing_time": self._clock.now(),
                "stamp_font": self._stamp_font,
                "password": password,
            }
            if output is None:
                assert body is not None
                data = sign_pdf(body, credential, self._keystore, signing_spec, timestamper, **arguments)
                assert data is not None  # without an output, the signed PDF is returned
                signed_sha256 = hashlib.sha256(data).hexdigest()
            else:
                assert output.path is not None
                data = None
                with document.open() as source, output.path.open("wb") as sink:
                    sign_pdf(source, credential, self._keystore, signing_spec, timestamper, output=sink, **arguments)
                signed_sha256 = output.digest("sha256").hex()
            signed = SignedFile(
                path=output.path if output is not None else None,
                data=data,
                document_sha256=document_sha256,
                signed_sha256=signed_sha256,
                credential=serial_hex,
                level=request.level,
            )
            details = _details(
                "pades", request.level, evidence, scheme, document_sha256=document_sha256, count=1,
                signed_sha256=signed_sha256,
            )  # fmt: skip
            if stamp is not None:
                details["stamp"] = stamp.profile
                if stamp.verification is not None:
                    # what the verification page will resolve the stamp's reference with
                    details["verification_reference"] = stamp.verification.reference
            return signed, details

        try:
            return self._sign(
                request.credential,
                requester,
                activation,
                lambda alg: (alg, [document.digest(alg)]),
                make,
                request.signature_algorithm,
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
            scheme = self._scheme(credential, request.signature_algorithm)
            evidence = self._revocation_evidence(credential, request.level)
            spec = CMSSignatureSpec(
                digest_algorithm=request.digest_algorithm,
                level=request.level,
                signature_scheme=scheme,
            )
            signature = sign_digest(
                document.digest(request.digest_algorithm),
                request.digest_algorithm,
                credential,
                self._keystore,
                self._clock,
                spec,
                timestamper=self._timestamp(request.level),
                evidence=evidence,
            )
            details = _details("cades", request.level, evidence, scheme, document_sha256=content_sha256, count=1)
            return signature, details

        signature = self._sign(
            request.credential,
            requester,
            activation,
            lambda alg: (alg, [document.digest(alg)]),
            make,
            request.signature_algorithm,
        )
        return SignedContent(data=signature, document_sha256=content_sha256)

    def sign_digests(self, request: DigestSigningRequest, requester: Requester, activation: str | None) -> list[bytes]:
        digests = list(request.digests)
        cms = request.output == "cms"
        level = request.level if cms else "B-B"

        def make(credential: SigningCredential, serial_hex: str) -> tuple[list[bytes], dict[str, Any]]:
            algorithm = request.digest_algorithm
            scheme = self._scheme(credential, request.signature_algorithm)
            evidence = self._revocation_evidence(credential, level) if cms else None
            if cms:
                signatures = sign_digests(
                    digests,
                    algorithm,
                    credential,
                    self._keystore,
                    self._clock,
                    CMSSignatureSpec(digest_algorithm=algorithm, level=level, signature_scheme=scheme),  # type: ignore[arg-type]
                    timestamper=self._timestamp(level),
                    evidence=evidence,
                )
            else:
                signatures = [
                    raw_signature(digest, algorithm, credential, self._keystore, scheme=scheme) for digest in digests
                ]
            details = _details(
                "cades" if cms else "raw",
                level if cms else None,
                evidence,
                scheme,
                digests=[digest.hex() for digest in digests],
                digest_algorithm=algorithm,
                count=len(digests),
            )
            return signatures, details

        return self._sign(
            request.credential,
            requester,
            activation,
            lambda _alg: (request.digest_algorithm, digests),
            make,
            request.signature_algorithm,
        )

    def sign_smime(
        self, document: SpooledDocument, credential_serial: str, requester: Requester, activation: str | None
    ) -> SignedContent:
        message_sha256 = document.digest("sha256").hex()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[bytes, dict[str, Any]]:
            # the key's default scheme, whatever GOVSIGN_RSA_SIGNATURE_ALGORITHM says: mail clients
            # on PKCS#7 code (openssl smime, for one) do not verify RSASSA-PSS, and the S/MIME
            # request has no parameter to ask for another scheme
            signed = sign_smime(document.read_all(), credential, self._keystore, self._clock)
            scheme = signature_scheme(credential.key)
            return signed, _details("smime", "B-B", None, scheme, document_sha256=message_sha256, count=1)

        signed = self._sign(credential_serial, requester, activation, lambda alg: (alg, [document.digest(alg)]), make)
        return SignedContent(data=signed, document_sha256=message_sha256)


def _stamp_only(request: PDFSigningRequest) -> tuple[object, ...]:
    """The request's stamp parameters (each None when not given)."""
    return (
        request.stamp_box,
        request.title_text,
        request.name_text,
        request.document_number,
        request.copy_form,
        request.copy_agency,
        request.seal_diameter_mm,
    )


def _placement(request: PDFSigningRequest, person_field: str | None) -> Placement | None:
    """Where the stamp goes: the explicit box; for a person, between the title and name lines;
    for a seal, over the person's signature; for the text profiles, the top right of page 1."""
    if request.stamp_box is not None:
        return BoxPlacement(page=request.stamp_page or 0, box=request.stamp_box)
    if request.title_text is not None or request.name_text is not None:
        if request.stamp != "person" or request.title_text is None or request.name_text is None:
            raise InvalidInputError("title_text and name_text place a person stamp, and go together.")
        return TextPlacement(title_text=request.title_text, name_text=request.name_text, page=request.stamp_page)
    if request.stamp == "seal":
        return SealOverPersonPlacement(person_field=person_field)
    if request.stamp in ("attachment", "copy"):
        return AnchorPlacement()
    raise InvalidInputError("A person stamp needs its place: stamp_box, or title_text and name_text.")


def _details(
    format_name: str,
    level: str | None,
    evidence: RevocationEvidence | None,
    scheme: SignatureScheme,
    **facts: Any,
) -> dict[str, Any]:
    """What the audit event of a signature records (hashes, never content), with the signature
    algorithm: rsa-pss, rsa-pkcs1v15 or ecdsa."""
    details: dict[str, Any] = {"format": format_name, "level": level, "signature_algorithm": scheme.value, **facts}
    if evidence is not None:
        details["revocation_evidence"] = evidence.summary()
    return details


def _checked_algorithm(name: str) -> SignatureAlgorithm:
    """A signature algorithm name this service knows (InvalidInputError otherwise)."""
    if name not in SIGNATURE_ALGORITHMS:
        raise InvalidInputError(
            f"The signature algorithm {name!r} is not supported; use one of {', '.join(SIGNATURE_ALGORITHMS)}."
        )
    return name  # type: ignore[return-value]
