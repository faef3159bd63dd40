"""PAdES signatures (ETSI EN 319 142-1, /ETSI.CAdES.detached) with the key in the HSM.

:class:`HSMSigner` is a pyHanko :class:`~pyhanko.sign.signers.Signer` whose raw signature comes
from the keystore, so no private key is ever loaded. :func:`sign_pdf` appends the signature as an
incremental update, after refusing input it must not or cannot sign: non-PDF or damaged files,
encrypted files it cannot open without a password, and files whose permissions forbid adding a
signature field (pyHanko itself would sign those without complaint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Literal

from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import misc
from pyhanko.pdf_utils.crypt import StandardSecurityHandler
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyStore, SignatureScheme
from govsign.signing.cms import SigningCredential, hash_algorithm

#: Signing a new signature field needs "modify" (bit 4) and "annotations and forms" (bit 6).
_REQUIRED_PERMISSIONS = StandardPermissions.ALLOW_MODIFICATION_GENERIC | StandardPermissions.ALLOW_ANNOTS_FORM_FILLING
_EC_COORDINATE_BYTES = {"secp256r1": 32, "secp384r1": 48}


@dataclass(frozen=True, kw_only=True)
class PDFSignatureSpec:
    """How a PAdES signature is made."""

    field_name: str = "Signature1"
    """Name of the (new or existing empty) signature field."""
    reason: str | None = None
    """The /Reason entry of the signature dictionary."""
    location: str | None = None
    """The /Location entry of the signature dictionary."""
    level: Literal["B-B", "B-T"] = "B-B"
    """PAdES baseline level: B-T adds a signature time-stamp and needs a time-stamper."""
    certify: bool = False
    """Make a certification (DocMDP) signature that allows form filling and signing only."""


def _load_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - force a full parse
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError("A certificate of the signing credential is not DER X.509.") from None
    return certificate


class HSMSigner(signers.Signer):
    """A pyHanko signer whose signatures are made by the keystore, with the chain embedded."""

    def __init__(self, credential: SigningCredential, keystore: KeyStore) -> None:
        certificate = _load_certificate(credential.certificate_der)
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple([_load_certificate(der) for der in credential.chain_der])
        super().__init__(signing_cert=certificate, cert_registry=registry, embed_roots=True)
        self._credential = credential
        self._keystore = keystore

    def _placeholder_size(self) -> int:
        algorithm = self._credential.key.algorithm
        if algorithm.is_rsa:
            return algorithm.rsa_bits // 8
        size = _EC_COORDINATE_BYTES[algorithm.curve_name]
        return 2 * (size + 3) + 3  # SEQUENCE of two INTEGERs, each possibly with a leading zero

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        """The keystore's PKCS#1 v1.5 or DER ECDSA signature over data (a placeholder on a dry run)."""
        if dry_run:
            return bytes(self._placeholder_size())
        key = self._credential.key
        scheme = SignatureScheme.RSA_PKCS1V15 if key.algorithm.is_rsa else SignatureScheme.ECDSA
        return self._keystore.sign(key, data, scheme=scheme, hash_algorithm=hash_algorithm(digest_algorithm))


class LocalTimeStamper(TimeStamper):
    """A pyHanko time-stamper that asks an in-process RFC 3161 responder (DER in, DER out)."""

    def __init__(self, respond: Callable[[bytes], bytes]) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._respond = respond

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """The responder's TimeStampResp to a TimeStampReq."""
        return tsp.TimeStampResp.load(self._respond(bytes(req.dump())))


def _open_writer(pdf: bytes) -> IncrementalPdfFileWriter:
    if not isinstance(pdf, bytes | bytearray) or not bytes(pdf[:1024]).lstrip().startswith(b"%PDF-"):
        raise InvalidInputError("The document is not a PDF file.")
    last_error: Exception | None = None
    for strict in (True, False):
        try:
            return IncrementalPdfFileWriter(BytesIO(bytes(pdf)), strict=strict)
        except Exception as error:  # noqa: BLE001 - any parser failure means damaged input
            last_error = error
    raise InvalidInputError("The PDF file is damaged and cannot be read.") from last_error


def _check_encryption(writer: IncrementalPdfFileWriter) -> None:
    reader = writer.prev
    if not reader.encrypted:
        return
    if not isinstance(reader.security_handler, StandardSecurityHandler):
        raise InvalidInputError("The PDF file is encrypted for specific recipients and cannot be opened.")
    try:
        result = writer.encrypt("")  # type: ignore[no-untyped-call]
    except Exception as error:
        raise InvalidInputError("The PDF file is encrypted and cannot be opened without a password.") from error
    if result.status is AuthStatus.FAILED:
        raise InvalidInputError("The PDF file is encrypted and cannot be opened without a password.")
    if result.status is AuthStatus.USER:
        permissions = result.permission_flags
        if permissions is None or _REQUIRED_PERMISSIONS & permissions != _REQUIRED_PERMISSIONS:
            raise InvalidInputError("The permissions of the PDF file forbid adding a signature.")


def sign_pdf(
    pdf: bytes,
    credential: SigningCredential,
    keystore: KeyStore,
    spec: PDFSignatureSpec,
    timestamper: TimeStamper | None = None,
) -> bytes:
    """The PDF with a PAdES signature appended as an incremental update."""
    if spec.level == "B-T" and timestamper is None:
        raise InvalidInputError("A PAdES B-T signature needs a time-stamp authority.")
    writer = _open_writer(pdf)
    _check_encryption(writer)
    meta_args: dict[str, Any] = {
        "field_name": spec.field_name,
        "reason": spec.reason,
        "location": spec.location,
        "subfilter": fields.SigSeedSubFilter.PADES,
        "certify": spec.certify,
        "md_algorithm": credential.key.algorithm.default_hash.value,
    }
    if spec.certify:
        meta_args["docmdp_permissions"] = fields.MDPPerm.FILL_FORMS
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(**meta_args),
        signer=HSMSigner(credential, keystore),
        timestamper=timestamper if spec.level == "B-T" else None,
    )
    output = BytesIO()
    try:
        pdf_signer.sign_pdf(writer, output=output)
    except SigningError as error:
        raise InvalidInputError(f"The PDF file cannot be signed: {str(error).rstrip('.')}.") from error
    except misc.PdfError as error:
        raise InvalidInputError("The PDF file is damaged and cannot be signed.") from error
    return output.getvalue()
