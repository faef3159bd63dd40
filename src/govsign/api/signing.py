"""The signing operations behind the REST endpoints (synchronous; the routes run them in a
worker thread): PAdES, CAdES detached, hash signing and S/MIME with a credential whose key is in
the HSM.

Each signing has three steps, so that no database transaction (and on SQLite no write lock) is
held while the HSM signs:

1. in one transaction: the credential is looked up and its agency, key, profile and status are
   checked in our own records; for an official's (individual) credential the signature
   activation is checked against the hashes of the documents and used up;
2. outside any transaction: the signature is made (and, for LT levels, the revocation evidence
   gathered from our own OCSP responder and CRLs);
3. in one transaction: one audit event with the document hash (never the content), credential,
   client, level and the revocation evidence used.

Refusals at any step are recorded as failed audit events.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from govsign.access.policy import Permission, Principal
from govsign.api.schemas import resources as schemas
from govsign.errors import ConflictError, ErrorKind, GovsignError, InvalidInputError, PolicyViolationError
from govsign.pki.ports import AuditContext, AuditEvent, CertificateRecord, CertificateStatus
from govsign.platform import Platform
from govsign.runtime import record_failure
from govsign.signing.cms import CMSSignatureSpec, SigningCredential, raw_signature, sign_digest, sign_digests
from govsign.signing.evidence import RevocationEvidence
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.signing.smime import sign_smime
from govsign.signing.stamp import VisibleStamp
from govsign.sole_control import SOLE_CONTROL_PROFILE, SoleControl
from govsign.storage.repositories import SQLPorts

T = TypeVar("T")

SIGNING_PROFILES = frozenset({"organization", "device", SOLE_CONTROL_PROFILE})
_CHUNK = 1024 * 1024
#: Request bodies up to this size are kept in memory, larger ones in a temporary file.
_MEMORY_LIMIT = 1024 * 1024

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


@dataclass
class SpooledDocument:
    """A request body with its SHA-256 (other digests are computed on demand from the body).

    :meth:`receive` keeps a body of up to 1 MiB in memory and spills a larger one to a private
    temporary file as it arrives, so memory stays bounded for large documents while the common
    small ones cost no file operations. :meth:`create` makes an (empty) file-backed document."""

    path: Path | None = None
    """The temporary file, when the body is (or is to be) kept in a file."""
    size: int = 0
    _digests: dict[str, bytes] = field(default_factory=dict)
    _directory: Path | None = None
    _parts: list[bytes] = field(default_factory=list)
    _data: bytes | None = None
    _handle: BinaryIO | None = None

    @classmethod
    def create(cls, directory: Path | None = None) -> SpooledDocument:
        fd, name = tempfile.mkstemp(prefix="govsign-doc-", dir=directory)
        os.close(fd)
        return cls(path=Path(name))

    @classmethod
    def receive(cls, directory: Path | None = None) -> SpooledDocument:
        """An empty document to :meth:`write` a body into, then :meth:`close`."""
        return cls(_directory=directory)

    def write(self, chunk: bytes) -> None:
        if self._handle is None and self.path is None and self.size + len(chunk) <= _MEMORY_LIMIT:
            self._parts.append(chunk)
        else:
            if self._handle is None:
                if self.path is None:
                    if self._directory is not None:
                        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    fd, name = tempfile.mkstemp(prefix="govsign-doc-", dir=self._directory)
                    self.path = Path(name)
                    self._handle = os.fdopen(fd, "wb")
                else:
                    self._handle = self.path.open("ab")
                self._handle.writelines(self._parts)
                self._parts = []
            self._handle.write(chunk)
        self.size += len(chunk)

    def close(self) -> None:
        """The body is complete."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        elif self.path is None:
            self._data = b"".join(self._parts)
            self._parts = []

    @property
    def in_memory(self) -> bytes | None:
        """The body, when it is kept in memory."""
        return self._data

    def digest(self, algorithm: str) -> bytes:
        if algorithm not in self._digests:
            if self._data is not None:
                self._digests[algorithm] = hashlib.new(algorithm, self._data).digest()
            else:
                hasher = hashlib.new(algorithm)
                with self.open() as handle:
                    while chunk := handle.read(_CHUNK):
                        hasher.update(chunk)
                self._digests[algorithm] = hasher.digest()
        return self._digests[algorithm]

    def remember(self, algorithm: str, digest: bytes) -> None:
        self._digests[algorithm] = digest

    def read_all(self) -> bytes:
        if self._data is not None:
            return self._data
        assert self.path is not None
        return self.path.read_bytes()

    def open(self) -> BinaryIO:
        if self._data is not None:
            return BytesIO(self._data)
        assert self.path is not None
        return self.path.open("rb")

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        self._data = None
        self._parts = []


@dataclass(frozen=True, kw_only=True)
class SignedFile:
    """A signed document, in memory (small ones) or in a temporary file to be streamed back and
    deleted."""

    path: Path | None
    document_sha256: str
    signed_sha256: str
    credential: str
    level: str
    data: bytes | None = None
    """The signed document, when it is kept in memory (then ``path`` is None)."""

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        return self.path.stat().st_size

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        assert self.path is not None
        try:
            with self.path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk
        finally:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True, kw_only=True)
class _Checked:
    credential: SigningCredential
    record: CertificateRecord
    details: dict[str, Any]


class SigningService:
    """Signing operations for one authenticated caller."""

    def __init__(self, platform: Platform, principal: Principal, context: AuditContext) -> None:
        self.platform = platform
        self.runtime = platform.runtime
        self.principal = principal
        self.context = context
        self.sole_control = SoleControl(platform)

    # -- the three steps ----------------------------------------------------------------------

    def _check(self, serial: str, activation: str | None, hashes: Callable[[str], tuple[str, list[bytes]]]) -> _Checked:
        """Step 1: the credential after the agency, key, status and profile checks, with the
        activation used up for an official's credential. Only that writes, so other credentials
        are checked in a read-only transaction (no write lock); an official's is checked again
        in the transaction that uses the activation up."""
        with self.runtime.database.read_only() as ports:
            checked = self._checked(ports, serial)
        if checked.record.profile != SOLE_CONTROL_PROFILE:
            return checked
        with self.runtime.database.unit_of_work() as ports:
            checked = self._checked(ports, serial)
            if checked.record.profile == SOLE_CONTROL_PROFILE:
                checked.details.update(
                    self.sole_control.consume(ports, checked.record, self.principal, activation, hashes)
                )
        return checked

    def _checked(self, ports: SQLPorts, serial: str) -> _Checked:
        view = self.runtime.authority(ports).show(serial)
        record = view.record
        self.platform.authorize(self.principal, Permission.SIGN, agency_id=record.agency_id, agency_bound=True)
        if record.key is None:
            raise InvalidInputError("The credential's key is not held in the HSM of this service, so it cannot sign.")
        refusal = _STATUS_REFUSALS.get(view.status)
        if refusal is not None:
            raise ConflictError(refusal)
        if record.profile not in SIGNING_PROFILES:
            raise PolicyViolationError(f"Certificates of the {record.profile} profile cannot sign documents.")
        chain: list[bytes] = []
        ca = ports.cas.get_ca(record.issuer_id)
        while ca is not None:
            chain.append(ca.certificate_der)
            ca = ports.cas.get_ca(ca.parent_id) if ca.parent_id else None
        credential = SigningCredential(key=record.key, certificate_der=record.certificate_der, chain_der=tuple(chain))
        return _Checked(credential=credential, record=record, details={"status_checked": view.status.value})

    def _record(self, record: CertificateRecord, details: dict[str, Any]) -> None:
        """Step 3: the audit event of a signature that was made."""
        with self.runtime.database.unit_of_work() as ports:
            ports.audit.append(
                AuditEvent(
                    action="signature.create",
                    actor=self.principal.actor,
                    object_type="certificate",
                    object_id=record.serial_hex,
                    details={**details, "credential": record.serial_hex, "client": self.principal.client_name},
                    client_id=self.context.client_id,
                    agency_id=self.context.agency_id,
                    request_id=self.context.request_id,
                ),
                at=self.runtime.clock.now(),
            )

    def _sign(
        self,
        serial: str,
        activation: str | None,
        hashes: Callable[[str], tuple[str, list[bytes]]],
        make: Callable[[SigningCredential, str], tuple[T, dict[str, Any]]],
    ) -> T:
        try:
            checked = self._check(serial, activation, hashes)
            result, details = make(checked.credential, checked.record.serial_hex)
            self._record(checked.record, {**checked.details, **details})
        except GovsignError as exc:
            if exc.kind is not ErrorKind.UNAVAILABLE:
                record_failure(
                    self.runtime.database,
                    self.runtime.clock,
                    "signature.create",
                    self.principal.actor,
                    "certificate",
                    serial,
                    exc,
                    self.context,
                )
            raise
        return result

    def _stamp_inputs(self, serial: str) -> tuple[str, bytes | None]:
        """The credential's profile and the image its visible signatures show (if one is set)."""
        with self.runtime.database.read_only() as ports:
            record = self.runtime.authority(ports).show(serial).record
            assert record.id is not None
            return record.profile, ports.stamp_images.get(record.id)

    def _evidence(self, credential: SigningCredential, level: str) -> RevocationEvidence | None:
        if level not in ("B-LT", "B-LTA"):
            return None
        return self.runtime.revocation_evidence((credential.certificate_der, *credential.chain_der))

    def _timestamper(self, level: str) -> LocalTimeStamper | None:
        return LocalTimeStamper(self.runtime.answer_timestamp) if level != "B-B" else None

    # -- operations ---------------------------------------------------------------------------

    def sign_pdf(
        self, document: SpooledDocument, query: schemas.PDFSignatureQuery, activation: str | None
    ) -> SignedFile:
        stamp: VisibleStamp | None = None
        if query.stamp:
            profile, image_png = self._stamp_inputs(query.credential)
            stamp = VisibleStamp(
                page=query.stamp_page,
                box=tuple(float(value) for value in query.stamp_box.split(",")),  # type: ignore[arg-type]
                kind="individual" if profile == SOLE_CONTROL_PROFILE else "organization",
                title=query.stamp_title,
                image_png=image_png,
            )
        if query.stamp_title is not None and (stamp is None or stamp.kind != "individual"):
            raise InvalidInputError("A stamp title is shown only on an official's visible signature.")
        spec = PDFSignatureSpec(
            field_name=query.field_name or "Signature1",
            reason=query.reason,
            location=query.location,
            level=query.level,
            certify=query.certify,
            stamp=stamp,
        )
        document_sha256 = document.digest("sha256").hex()
        body = document.in_memory
        # a small document is signed in memory; a large one file to file, so memory stays bounded
        output = None if body is not None else SpooledDocument.create(document.path.parent if document.path else None)

        def make(credential: SigningCredential, serial_hex: str) -> tuple[SignedFile, dict[str, Any]]:
            evidence = self._evidence(credential, query.level)
            arguments: dict[str, Any] = {
                "evidence": evidence,
                "signing_time": self.runtime.clock.now(),
                "stamp_font": self.runtime.settings.stamp_font_file,
            }
            timestamper = self._timestamper(query.level)
            keystore = self.runtime.keystore
            if output is None:
                assert body is not None
                data = sign_pdf(body, credential, keystore, spec, timestamper, **arguments)
                signed_sha256 = hashlib.sha256(data).hexdigest()
            else:
                assert output.path is not None
                data = None
                with document.open() as source, output.path.open("wb") as sink:
                    sign_pdf(source, credential, keystore, spec, timestamper, output=sink, **arguments)
                signed_sha256 = output.digest("sha256").hex()
            signed = SignedFile(
                path=output.path if output is not None else None,
                data=data,
                document_sha256=document_sha256,
                signed_sha256=signed_sha256,
                credential=serial_hex,
                level=query.level,
            )
            details: dict[str, Any] = {
                "format": "pades",
                "level": query.level,
                "document_sha256": document_sha256,
                "count": 1,
            }
            if evidence is not None:
                details["revocation_evidence"] = evidence.summary()
            return signed, details

        try:
            return self._sign(query.credential, activation, lambda alg: (alg, [document.digest(alg)]), make)
        except BaseException:
            if output is not None:
                output.discard()
            raise

    def sign_cms(
        self, document: SpooledDocument, query: schemas.CMSSignatureQuery, activation: str | None
    ) -> tuple[bytes, str]:
        content_sha256 = document.digest("sha256").hex()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[bytes, dict[str, Any]]:
            evidence = self._evidence(credential, query.level)
            signature = sign_digest(
                document.digest(query.digest_algorithm),
                query.digest_algorithm,
                credential,
                self.runtime.keystore,
                self.runtime.clock,
                CMSSignatureSpec(digest_algorithm=query.digest_algorithm, level=query.level),
                timestamper=self.runtime.answer_timestamp if query.level != "B-B" else None,
                evidence=evidence,
            )
            details: dict[str, Any] = {
                "format": "cades",
                "level": query.level,
                "document_sha256": content_sha256,
                "count": 1,
            }
            if evidence is not None:
                details["revocation_evidence"] = evidence.summary()
            return signature, details

        signature = self._sign(query.credential, activation, lambda alg: (alg, [document.digest(alg)]), make)
        return signature, content_sha256

    def sign_digests(self, body: schemas.DigestSignatureRequest, activation: str | None) -> dict[str, Any]:
        digests = [decode_base64(digest, "digest") for digest in body.digests]
        level = body.level if body.output == "cms" else "B-B"

        def make(credential: SigningCredential, serial_hex: str) -> tuple[dict[str, Any], dict[str, Any]]:
            keystore, algorithm = self.runtime.keystore, body.digest_algorithm
            evidence = self._evidence(credential, level) if body.output == "cms" else None
            if body.output == "cms":
                signatures = sign_digests(
                    digests,
                    algorithm,
                    credential,
                    keystore,
                    self.runtime.clock,
                    CMSSignatureSpec(digest_algorithm=algorithm, level=level),
                    timestamper=self.runtime.answer_timestamp if level != "B-B" else None,
                    evidence=evidence,
                )
            else:
                signatures = [raw_signature(digest, algorithm, credential, keystore) for digest in digests]
            details: dict[str, Any] = {
                "format": "cades" if body.output == "cms" else "raw",
                "level": level if body.output == "cms" else None,
                "digests": [digest.hex() for digest in digests],
                "digest_algorithm": algorithm,
                "count": len(digests),
            }
            if evidence is not None:
                details["revocation_evidence"] = evidence.summary()
            return schemas.DigestSignatures(signatures=[_b64(s) for s in signatures]).model_dump(mode="json"), details

        return self._sign(body.credential, activation, lambda _alg: (body.digest_algorithm, digests), make)

    def sign_smime(
        self, document: SpooledDocument, query: schemas.SMIMESignatureQuery, activation: str | None
    ) -> tuple[bytes, str]:
        message_sha256 = document.digest("sha256").hex()

        def make(credential: SigningCredential, serial_hex: str) -> tuple[bytes, dict[str, Any]]:
            signed = sign_smime(document.read_all(), credential, self.runtime.keystore, self.runtime.clock)
            details = {"format": "smime", "level": "B-B", "document_sha256": message_sha256, "count": 1}
            return signed, details

        signed = self._sign(query.credential, activation, lambda alg: (alg, [document.digest(alg)]), make)
        return signed, message_sha256
