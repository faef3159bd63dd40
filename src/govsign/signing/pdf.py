"""PAdES signatures (ETSI EN 319 142-1, /ETSI.CAdES.detached) with the key in the HSM.

:class:`HSMSigner` is a pyHanko :class:`~pyhanko.sign.signers.Signer` whose raw signature comes
from the keystore, so no private key is ever loaded. :func:`sign_pdf` appends the signature as an
incremental update, after refusing input it must not or cannot sign: non-PDF or damaged files,
encrypted files it cannot open without a password, and files whose permissions forbid adding a
signature field (pyHanko itself would sign those without complaint).

Levels B-B and B-T make the signature (B-T with a signature time-stamp); B-LT adds a document
security store (DSS) with the revocation evidence of the signer's and the TSA's chains, and B-LTA
a document time-stamp over all of it. The evidence is given by the caller: this module never
fetches anything from the network.

Large documents are streamed: the input may be a seekable file and the output a file, and pyHanko
then copies and digests them in chunks, so memory does not grow with the document's size.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO, Literal

from asn1crypto import algos, cms, core, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import misc
from pyhanko.pdf_utils.crypt import StandardSecurityHandler
from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathError, RevokedError, ValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from govsign.errors import GovsignError, InvalidInputError, UnavailableError
from govsign.keystore.api import HashAlgorithm, KeyStore, SignatureScheme
from govsign.signing.cms import (
    SigningCredential,
    hash_algorithm,
    signature_algorithm_der,
    signature_scheme,
    signature_time_stamp_attribute_der,
    signed_attributes_der,
    signed_data_der,
)
from govsign.signing.evidence import RevocationEvidence
from govsign.signing.signing_time import VietnamTimePdfSigner
from govsign.signing.stamp import StampAppearance, VisibleStamp, build_stamp_appearance

#: ISO 32000-1 Table 22: creating a signature field needs "modify" (bit 4) and "annotations and
#: forms" (bit 6); filling in an existing one needs "fill in forms" (bit 9), which bit 6 includes.
_NEW_FIELD_PERMISSIONS = StandardPermissions.ALLOW_MODIFICATION_GENERIC | StandardPermissions.ALLOW_ANNOTS_FORM_FILLING
_FILL_FIELD_PERMISSIONS = StandardPermissions.ALLOW_FORM_FILLING | StandardPermissions.ALLOW_ANNOTS_FORM_FILLING
_EC_COORDINATE_BYTES = {"secp256r1": 32, "secp384r1": 48}
_COPY_CHUNK = 1024 * 1024

PDFLevel = Literal["B-B", "B-T", "B-LT", "B-LTA"]
"""PAdES baseline levels (ETSI EN 319 142-1, 6.2)."""


@dataclass(frozen=True, kw_only=True)
class PDFSignatureSpec:
    """How a PAdES signature is made."""

    field_name: str | None = None
    """Name of the (new or existing empty) signature field; None: the document's only empty
    signature field when it has exactly one and the signature is invisible, else a new field
    (``Signature1``, or the first ``SignatureN`` not taken)."""
    reason: str | None = None
    """The /Reason entry of the signature dictionary."""
    location: str | None = None
    """The /Location entry of the signature dictionary."""
    level: PDFLevel = "B-B"
    """PAdES baseline level: B-T adds a signature time-stamp and needs a time-stamper; B-LT adds
    the revocation evidence (a DSS) and needs it given; B-LTA adds a document time-stamp."""
    certify: bool = False
    """Make a certification (DocMDP) signature that allows form filling and signing only."""
    stamp: VisibleStamp | None = None
    """A visible appearance per Decree 30/2020 in a new field; None for an invisible signature."""
    signature_scheme: SignatureScheme | None = None
    """How the key signs: RSA_PSS or RSA_PKCS1V15 for an RSA key; None is the key's default
    (PKCS#1 v1.5 for RSA, ECDSA for EC)."""


def _load_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - force a full parse
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError("A certificate of the signing credential is not DER X.509.") from None
    return certificate


@functools.lru_cache(maxsize=256)
def _parsed_certificates(
    certificate_der: bytes, chain_der: tuple[bytes, ...]
) -> tuple[asn1_x509.Certificate, tuple[asn1_x509.Certificate, ...]]:
    """The signer's certificate and its chain, parsed in full once per credential (InvalidInputError
    for one that is not DER X.509) and then shared between signatures and threads. That is safe
    because they are only read: fully parsed, nothing is parsed lazily any more, and neither our
    code nor pyHanko re-encodes them in place (no ``dump(force=True)``); the CMS itself is
    assembled from DER by :meth:`HSMSigner.async_sign`. Parsing them per request would repeat that
    work on every signature."""
    return _load_certificate(certificate_der), tuple(_load_certificate(der) for der in chain_der)


class HSMSigner(signers.Signer):
    """A pyHanko signer whose signatures are made by the keystore, with the chain embedded.

    The PAdES CMS container is assembled from DER pieces cached per credential (the embedded
    certificates, the sid, the signingCertificateV2 attribute), not built as asn1crypto objects:
    that would re-encode the certificates on every signature, which costs far more than the key
    operation. Requests this fast path does not cover (non-PAdES containers, extra CAdES signed
    attributes, Adobe revocation info, attribute certificates) take pyHanko's own path.

    ``scheme`` RSA_PSS makes RSASSA-PSS signatures (MGF1 with the digest's hash, a salt as long
    as the digest) on both paths; None is the key's default (PKCS#1 v1.5 or ECDSA).
    """

    def __init__(
        self, credential: SigningCredential, keystore: KeyStore, *, scheme: SignatureScheme | None = None
    ) -> None:
        chosen = signature_scheme(credential.key, scheme)
        certificate, chain = _parsed_certificates(credential.certificate_der, credential.chain_der)
        registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]
        registry.register_multiple(chain)
        super().__init__(signing_cert=certificate, cert_registry=registry, embed_roots=True)
        self._credential = credential
        self._keystore = keystore
        self._scheme = chosen

    def get_signature_mechanism_for_digest(self, digest_algorithm: str | None) -> algos.SignedDigestAlgorithm:
        """The signatureAlgorithm pyHanko's own path writes: id-RSASSA-PSS with the parameters
        the keystore signs with (for no digest, the key's default hash), else pyHanko's default."""
        if self._scheme is not SignatureScheme.RSA_PSS:
            return super().get_signature_mechanism_for_digest(digest_algorithm)
        algorithm = hash_algorithm(digest_algorithm or self._credential.key.algorithm.default_hash.value)
        return algos.SignedDigestAlgorithm.load(signature_algorithm_der(self._scheme, algorithm))

    def _placeholder_size(self) -> int:
        algorithm = self._credential.key.algorithm
        if algorithm.is_rsa:
            return algorithm.rsa_bits // 8
        size = _EC_COORDINATE_BYTES[algorithm.curve_name]
        return 2 * (size + 3) + 3  # SEQUENCE of two INTEGERs, each possibly with a leading zero

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        """The keystore's PKCS#1 v1.5, RSASSA-PSS or DER ECDSA signature over data (a placeholder
        on a dry run: a PSS signature is as long as the modulus too)."""
        if dry_run:
            return bytes(self._placeholder_size())
        return self._keystore.sign(
            self._credential.key, data, scheme=self._scheme, hash_algorithm=hash_algorithm(digest_algorithm)
        )

    async def async_sign(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> cms.ContentInfo:
        """A detached PAdES SignedData over ``data_digest``: signed attributes contentType,
        messageDigest and signingCertificateV2 (no signingTime: the signature dictionary's /M
        carries the time), and for B-T the signature time-stamp token as unsigned attribute."""
        settings = signed_attr_settings
        if (
            not (use_pades and is_pdf_sig)
            or encap_content_info is not None
            or self.signed_attr_prov_spec is not None
            or self.unsigned_attr_prov_spec is not None
            or (settings is not None and (settings.cades_signed_attrs is not None or settings.adobe_revinfo_attr))
            or any(True for _ in self.attribute_certs)
        ):
            return await super().async_sign(
                data_digest,
                digest_algorithm,
                dry_run=dry_run,
                use_pades=use_pades,
                timestamper=timestamper,
                signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig,
                encap_content_info=encap_content_info,
            )
        return cms.ContentInfo.load(
            await self._pades_signed_data(data_digest, digest_algorithm, timestamper, dry_run=dry_run)
        )

    async def _pades_signed_data(
        self, data_digest: bytes, digest_algorithm: str, timestamper: TimeStamper | None, *, dry_run: bool = False
    ) -> bytes:
        algorithm = hash_algorithm(digest_algorithm)
        signed_attrs = signed_attributes_der(data_digest, self._credential.certificate_der)
        signature = await self.async_sign_raw(signed_attrs, algorithm.value, dry_run=dry_run)
        unsigned: list[bytes] = []
        if timestamper is not None:
            if dry_run:
                token = await timestamper.async_dummy_response(algorithm.value)
            else:
                imprint = hashlib.new(algorithm.value, signature).digest()
                token = await timestamper.async_timestamp(imprint, algorithm.value)
            unsigned.append(signature_time_stamp_attribute_der(bytes(token.dump())))
        return self._signed_data(algorithm, signed_attrs, signature, unsigned)

    def _signed_data(
        self, algorithm: HashAlgorithm, signed_attrs: bytes, signature: bytes, unsigned: Sequence[bytes] = ()
    ) -> bytes:
        credential = self._credential
        return signed_data_der(
            credential,
            algorithm,
            signed_attrs,
            signature,
            certificates=(credential.certificate_der, *credential.chain_der),
            unsigned_attributes=unsigned,
            scheme=self._scheme,
        )

    def reserved_size(self, digest_algorithm: str) -> int:
        """The /Contents size (hex digits) of a B-B signature: its exact DER size with a signature
        value of the largest size, so that pyHanko makes no trial signature to measure it."""
        algorithm = hash_algorithm(digest_algorithm)
        signed_attrs = signed_attributes_der(bytes(algorithm.digest_size), self._credential.certificate_der)
        return 2 * len(self._signed_data(algorithm, signed_attrs, bytes(self._placeholder_size())))


class _TimeStampRespStatus(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """A TimeStampResp read for its status only (RFC 3161 2.4.2: the token is absent unless granted)."""

    _fields = [  # noqa: RUF012 - asn1crypto's class attribute
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", core.Any, {"optional": True}),
    ]


class LocalTimeStamper(TimeStamper):
    """A pyHanko time-stamper that asks an in-process RFC 3161 responder (DER in, DER out).

    A reply that grants nothing (the responder refuses, e.g. ``systemFailure`` while the HSM is
    unavailable) raises :class:`UnavailableError` here, with the responder's status, instead of
    reaching pyHanko, which cannot make anything of a rejection."""

    def __init__(self, respond: Callable[[bytes], bytes]) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._respond = respond

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """The responder's TimeStampResp to a TimeStampReq; UnavailableError unless it grants."""
        reply_der = self._respond(bytes(req.dump()))
        try:
            # asn1crypto's TimeStampResp cannot even be read without a token: read the status first
            status_info = _TimeStampRespStatus.load(reply_der)["status"]
            status = status_info["status"].native
            failures = status_info["fail_info"].native
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
            raise UnavailableError(
                "The time-stamping authority answered with something that is not a time-stamp response; "
                "try again later."
            ) from None
        if status not in ("granted", "granted_with_mods"):
            reason = ", ".join(sorted(failures)) if failures else str(status)
            raise UnavailableError(
                f"The time-stamping authority refused the signature time-stamp ({reason}); try again later."
            )
        return tsp.TimeStampResp.load(reply_der)


def _source_stream(pdf: bytes | bytearray | BinaryIO) -> BinaryIO:
    """A seekable stream over the input, positioned at its start, after a look at its header."""
    if isinstance(pdf, bytes | bytearray):
        stream: BinaryIO = BytesIO(pdf)
    else:
        try:
            seekable = pdf.seekable() and pdf.readable()
        except (AttributeError, ValueError):
            seekable = False
        if not seekable:
            raise InvalidInputError("The PDF document must be given as bytes or as a seekable binary file.")
        stream = pdf
    stream.seek(0)
    head = stream.read(1024)
    stream.seek(0)
    if not isinstance(head, bytes) or not head.lstrip().startswith(b"%PDF-"):
        raise InvalidInputError("The document is not a PDF file.")
    return stream


def _open_writer(stream: BinaryIO) -> IncrementalPdfFileWriter:
    """The document opened for an incremental update: strictly when it can be, otherwise (a
    damaged-but-readable file, or a hybrid-reference file such as Word's "Save as PDF", which
    pyHanko signs only when not strict) leniently. Either way the original bytes stay the
    prefix of the signed file."""
    last_error: Exception | None = None
    for strict in (True, False):
        try:
            stream.seek(0)
            writer = IncrementalPdfFileWriter(stream, strict=strict)
        except Exception as error:  # noqa: BLE001 - any parser failure means damaged input
            last_error = error
            continue
        if strict and writer.prev.xrefs.hybrid_xrefs_present:
            continue
        return writer
    raise InvalidInputError("The PDF file is damaged and cannot be read.") from last_error


def _open_encrypted(writer: IncrementalPdfFileWriter, password: str | None) -> StandardPermissions | None:
    """Open an encrypted document with ``password`` (or the empty user password) so that the
    update is encrypted as the document is; the permissions that bind the signer (None when the
    document is not encrypted or the owner password opened it)."""
    reader = writer.prev
    if not reader.encrypted:
        return None
    if not isinstance(reader.security_handler, StandardSecurityHandler):
        raise InvalidInputError("The PDF file is encrypted for specific recipients and cannot be opened.")
    try:
        # a str: pyHanko encodes it as the handler's revision wants (PDFDocEncoding, or SASLprep'd UTF-8)
        result = writer.encrypt(password or "")  # type: ignore[no-untyped-call]
    except Exception as error:
        raise InvalidInputError("The PDF file is encrypted in a way that cannot be opened.") from error
    if result.status is AuthStatus.FAILED:
        if password is None:
            raise InvalidInputError("The PDF file is encrypted and cannot be opened without its password.")
        raise InvalidInputError("The password given does not open the PDF file.")
    if result.status is AuthStatus.USER:
        permissions = result.permission_flags
        return permissions if permissions is not None else StandardPermissions(0)
    return None


def _check_permissions(permissions: StandardPermissions | None, *, new_field: bool) -> None:
    """ISO 32000-1 Table 22: filling in an existing signature field needs bit 9 (or bit 6);
    creating a signature field needs bits 4 and 6."""
    if permissions is None:
        return
    if new_field:
        if _NEW_FIELD_PERMISSIONS & permissions != _NEW_FIELD_PERMISSIONS:
            raise InvalidInputError(
                "The permissions of the PDF file forbid adding a signature field; "
                "it can only be signed in an empty signature field it already has."
                if _FILL_FIELD_PERMISSIONS & permissions
                else "The permissions of the PDF file forbid adding a signature."
            )
    elif not _FILL_FIELD_PERMISSIONS & permissions:
        raise InvalidInputError("The permissions of the PDF file forbid adding a signature.")


def _signature_field(writer: IncrementalPdfFileWriter, spec: PDFSignatureSpec) -> tuple[str, bool]:
    """The field the signature goes into and whether it is new: the field named in the spec
    (empty, or new), else the document's only empty signature field when it has exactly one and
    no placement was asked for, else a new field with a name not yet used."""
    present = {name: value for name, value, _ in fields.enumerate_sig_fields(writer)}
    if spec.field_name is not None:
        if present.get(spec.field_name) is not None:
            raise InvalidInputError(
                f"The signature field {spec.field_name!r} is already signed; a signature never replaces another."
            )
        if spec.field_name in present and spec.stamp is not None:
            raise InvalidInputError(
                f"The document already has a signature field named {spec.field_name!r}; "
                "a visible signature placed by the request needs a new field name."
            )
        return spec.field_name, spec.field_name not in present
    empty = [name for name, value in present.items() if value is None]
    if len(empty) == 1 and spec.stamp is None:
        return empty[0], False
    number = 1
    while f"Signature{number}" in present:
        number += 1
    return f"Signature{number}", True


def _load_der(loader: Callable[[bytes], Any], der: bytes, what: str) -> Any:
    try:
        value = loader(der)
        value.native  # noqa: B018 - force a full parse
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError(f"{what} of the revocation evidence cannot be parsed.") from None
    return value


def _validation_context(
    credential: SigningCredential, evidence: RevocationEvidence, trust_roots: Sequence[bytes] | None
) -> ValidationContext:
    """A context that validates with the given evidence only (no fetching, revocation required),
    so a signature is only made when the DSS pyHanko embeds proves every certificate's status."""
    roots = tuple(trust_roots) if trust_roots is not None else credential.chain_der[-1:]
    if not roots:
        raise InvalidInputError("A long-term signature needs the trust root of the signer's chain.")
    ocsp_load: Callable[[bytes], Any] = asn1_ocsp.OCSPResponse.load
    crl_load: Callable[[bytes], Any] = asn1_crl.CertificateList.load
    return ValidationContext(
        trust_roots=[_load_certificate(der) for der in roots],
        other_certs=[_load_certificate(der) for der in (*credential.chain_der, *evidence.certificates)],
        ocsps=[_load_der(ocsp_load, der, "An OCSP response") for der in evidence.ocsp_responses],
        crls=[_load_der(crl_load, der, "A CRL") for der in evidence.crls],
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


def _is_random_access(output: BinaryIO) -> bool:
    try:
        return output.readable() and output.writable() and output.seekable()
    except (AttributeError, ValueError):
        return False


def sign_pdf(
    pdf: bytes | bytearray | BinaryIO,
    credential: SigningCredential,
    keystore: KeyStore,
    spec: PDFSignatureSpec,
    timestamper: TimeStamper | None = None,
    *,
    evidence: RevocationEvidence | None = None,
    trust_roots: Sequence[bytes] | None = None,
    signing_time: dt.datetime | None = None,
    stamp_font: Path | None = None,
    output: BinaryIO | None = None,
    password: str | None = None,
) -> bytes | None:
    """The PDF with a PAdES signature appended as an incremental update.

    ``pdf`` is the document as bytes or as a seekable binary file (read, never written). Without
    ``output`` the signed document is returned as bytes; with it, it is written to ``output``
    (best a file opened ``w+b``: a write-only stream gets the result through a temporary file)
    and None is returned, so a large document never has to be in memory.

    B-T and above need ``timestamper``. B-LT and B-LTA also need ``evidence``: OCSP responses
    and CRLs that prove the status of every certificate of the signer's chain AND of the
    time-stamp authority's chain (its certificate and the CAs above it), plus the certificates
    that validation needs (OCSP responder, TSA chain); see ``govsign.services.evidence``.
    Validation uses that evidence only (no fetching) and requires it to be complete, so a
    long-term signature is only made when its DSS proves every status. ``trust_roots`` (DER)
    default to the last certificate of ``credential.chain_der``.

    An encrypted document is opened with ``password`` (its user or owner password; without one,
    the empty user password) and the update is encrypted as the document is; opened with the
    user password, the document's permissions decide (ISO 32000-1 Table 22): filling in an
    existing empty signature field needs bit 9 or 6, a new field bits 4 and 6. A document whose
    DocMDP certification forbids changes is refused, and so is a field already signed.

    With ``spec.stamp`` the signature gets a visible Decree 30 appearance in a new field, which
    shows ``signing_time`` (required then; the clock's time, within a second of pyHanko's /M)
    in Vietnam time, drawn with the font at ``stamp_font`` (default: a known system font).
    """
    long_term = spec.level in ("B-LT", "B-LTA")
    if spec.level != "B-B" and timestamper is None:
        raise InvalidInputError(f"A PAdES {spec.level} signature needs a time-stamp authority.")
    if long_term and (evidence is None or evidence.is_empty):
        raise InvalidInputError(f"A PAdES {spec.level} signature needs revocation evidence for its certificates.")
    writer = _open_writer(_source_stream(pdf))
    permissions = _open_encrypted(writer, password)
    field_name, new_field = _signature_field(writer, spec)
    _check_permissions(permissions, new_field=new_field)
    meta_args: dict[str, Any] = {
        "field_name": field_name,
        "reason": spec.reason,
        "location": spec.location,
        "subfilter": fields.SigSeedSubFilter.PADES,
        "certify": spec.certify,
        "md_algorithm": credential.key.algorithm.default_hash.value,
    }
    if spec.certify:
        meta_args["docmdp_permissions"] = fields.MDPPerm.FILL_FORMS
    if long_term and evidence is not None:
        meta_args["embed_validation_info"] = True
        meta_args["validation_context"] = _validation_context(credential, evidence, trust_roots)
        meta_args["use_pades_lta"] = spec.level == "B-LTA"
    appearance = _stamp_appearance(writer, credential, spec, field_name, signing_time, stamp_font, password)
    signer = HSMSigner(credential, keystore, scheme=spec.signature_scheme)
    # B-B: the exact size, so pyHanko makes no trial signature. With a time-stamp, or with the
    # PDF MAC attribute of an encrypted document, pyHanko measures a trial container (assembled
    # without the key; with the TSA's dummy token) and adds its margin.
    exact = spec.level == "B-B" and not writer.prev.encrypted
    reserved = signer.reserved_size(meta_args["md_algorithm"]) if exact else None
    pdf_signer = VietnamTimePdfSigner(
        signers.PdfSignatureMetadata(**meta_args),
        signer=signer,
        timestamper=timestamper if spec.level != "B-B" else None,
        stamp_style=appearance.stamp_style if appearance is not None else None,
        new_field_spec=appearance.new_field_spec if appearance is not None else None,
        signing_time=signing_time,
    )
    text_params = appearance.appearance_text_params if appearance is not None else None
    if output is None:
        buffer = BytesIO()
        _run_signer(pdf_signer, writer, buffer, text_params, reserved)
        return buffer.getvalue()
    if _is_random_access(output):
        _run_signer(pdf_signer, writer, output, text_params, reserved)
        return None
    with tempfile.TemporaryFile() as spool:
        _run_signer(pdf_signer, writer, spool, text_params, reserved)
        spool.seek(0)
        shutil.copyfileobj(spool, output, _COPY_CHUNK)
    return None


def _stamp_appearance(
    writer: IncrementalPdfFileWriter,
    credential: SigningCredential,
    spec: PDFSignatureSpec,
    field_name: str,
    signing_time: dt.datetime | None,
    stamp_font: Path | None,
    password: str | None = None,
) -> StampAppearance | None:
    """The Decree 30 appearance of a visible signature (in a new field), checked against the document."""
    if spec.stamp is None:
        return None
    if signing_time is None:
        raise ValueError("a visible signature needs the signing time")
    return build_stamp_appearance(
        spec.stamp,
        document=writer,
        password=password,
        field_name=field_name,
        certificate_der=credential.certificate_der,
        signing_time=signing_time,
        font_path=stamp_font,
    )


def _run_signer(
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    output: BinaryIO,
    appearance_text_params: dict[str, str] | None = None,
    bytes_reserved: int | None = None,
) -> None:
    try:
        pdf_signer.sign_pdf(
            writer, output=output, appearance_text_params=appearance_text_params, bytes_reserved=bytes_reserved
        )
    except SigningError as error:
        if isinstance(error.__cause__, PathError | ValidationError):
            raise _status_error(error.__cause__) from error
        if isinstance(error.__cause__, GovsignError):  # the HSM or the time-stamping authority
            raise error.__cause__ from None
        raise InvalidInputError(f"The PDF file cannot be signed: {str(error).rstrip('.')}.") from error
    except TimestampRequestError as error:  # a time-stamper other than ours that got no token
        raise UnavailableError("The time-stamping authority granted no time-stamp; try again later.") from error
    except (PathError, ValidationError) as error:  # the time-stamp authority's chain
        raise _status_error(error) from error
    except misc.PdfError as error:
        raise InvalidInputError("The PDF file is damaged and cannot be signed.") from error


def _status_error(error: Exception) -> InvalidInputError:
    """Why a long-term signature cannot be made: the chains as validated with the evidence."""
    if isinstance(error, RevokedError):
        return InvalidInputError("A certificate of the signer's or the time-stamp authority's chain is revoked.")
    return InvalidInputError(
        "The revocation evidence does not prove the status of every certificate "
        "of the signer's and the time-stamp authority's chains."
    )
