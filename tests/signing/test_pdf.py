"""PAdES B-B signatures with keys on the shared SoftHSM2 token, checked by qpdf, pyHanko's own
validation and ``openssl cms -verify`` over the signed byte ranges."""

from __future__ import annotations

import re
import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.authority import HierarchyResult
from govsign.runtime import Runtime
from govsign.signing import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf

from .credentials import individual_credentials

KEYS = [pytest.param(KeyAlgorithm.EC_P256, id="ec-p256"), pytest.param(KeyAlgorithm.RSA2048, id="rsa2048")]


@pytest.fixture(scope="module")
def credentials(initialized_runtime: Runtime, hierarchy: HierarchyResult) -> dict[KeyAlgorithm, SigningCredential]:
    """An individual certificate with a key generated on the token, per key algorithm."""
    return individual_credentials(initialized_runtime, hierarchy, "PDF signer")


@pytest.fixture(scope="module")
def store(initialized_runtime: Runtime) -> KeyStore:
    return initialized_runtime.keystore


def _blank_pdf(encrypt: dict[str, object] | None = None) -> bytes:
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    writer.insert_page(  # type: ignore[no-untyped-call]
        PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))  # type: ignore[no-untyped-call]
    )
    if encrypt is not None:
        writer.encrypt(**encrypt)  # type: ignore[no-untyped-call]
    output = BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    return output.getvalue()


def _validation_context(hierarchy: HierarchyResult) -> ValidationContext:
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
        other_certs=[asn1_x509.Certificate.load(hierarchy.issuing.certificate_der)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def _assert_valid(pdf: bytes, hierarchy: HierarchyResult, count: int) -> None:
    reader = PdfFileReader(BytesIO(pdf))
    assert len(reader.embedded_signatures) == count
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, _validation_context(hierarchy))
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
        assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


def _qpdf_check(pdf: bytes, tmp_path: Path) -> None:
    qpdf = shutil.which("qpdf")
    if qpdf is None:
        pytest.skip("qpdf is not installed")
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def _openssl_verify_pdf(pdf: bytes, hierarchy: HierarchyResult, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    start1, length1, start2, length2 = (int(value) for value in match.groups())
    contents_hex = pdf[start1 + length1 + 1 : start2 - 1]
    signature = bytes.fromhex(contents_hex.decode()).rstrip(b"\x00")
    (tmp_path / "sig.p7s").write_bytes(signature)
    (tmp_path / "content.bin").write_bytes(pdf[start1 : start1 + length1] + pdf[start2 : start2 + length2])
    (tmp_path / "chain.pem").write_bytes(
        b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in (hierarchy.issuing.certificate_der, hierarchy.root.certificate_der)
        )
    )
    result = subprocess.run(
        [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
         "-content", str(tmp_path / "content.bin"), "-CAfile", str(tmp_path / "chain.pem"),
         "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification successful" in result.stdout + result.stderr


@pytest.mark.parametrize("algorithm", KEYS)
def test_pades_b_b_signature_is_valid_and_a_second_one_keeps_it_valid(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    tmp_path: Path,
) -> None:
    original = _blank_pdf()
    spec = PDFSignatureSpec(reason="Approved", location="Ha Noi")
    signed = sign_pdf(original, credentials[algorithm], store, spec)
    assert signed.startswith(original)  # incremental update
    _qpdf_check(signed, tmp_path)
    _assert_valid(signed, hierarchy, 1)
    _openssl_verify_pdf(signed, hierarchy, tmp_path)

    other = credentials[KeyAlgorithm.RSA2048 if algorithm is KeyAlgorithm.EC_P256 else KeyAlgorithm.EC_P256]
    sealed = sign_pdf(signed, other, store, PDFSignatureSpec(field_name="Seal"))
    assert sealed.startswith(signed)
    _qpdf_check(sealed, tmp_path)
    _assert_valid(sealed, hierarchy, 2)


def test_certification_signature_is_valid(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, hierarchy: HierarchyResult
) -> None:
    signed = sign_pdf(_blank_pdf(), credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec(certify=True))
    _assert_valid(signed, hierarchy, 1)
    assert PdfFileReader(BytesIO(signed)).embedded_signatures[0].docmdp_level is not None


def test_pades_b_t_signature_has_a_valid_signature_time_stamp(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_runtime: Runtime,
    tmp_path: Path,
) -> None:
    timestamper = LocalTimeStamper(initialized_runtime.answer_timestamp)
    spec = PDFSignatureSpec(level="B-T")
    signed = sign_pdf(_blank_pdf(), credentials[KeyAlgorithm.RSA2048], store, spec, timestamper=timestamper)
    _qpdf_check(signed, tmp_path)
    embedded = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    context = _validation_context(hierarchy)
    status = validate_pdf_signature(embedded, context, ts_validation_context=context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.valid and status.timestamp_validity.trusted


def test_b_t_without_a_timestamper_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    with pytest.raises(InvalidInputError, match="time-stamp"):
        sign_pdf(_blank_pdf(), credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec(level="B-T"))


def test_encrypted_pdf_with_a_user_password_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    pdf = _blank_pdf({"owner_pass": "owner-secret", "user_pass": "user-secret"})
    with pytest.raises(InvalidInputError, match="password"):
        sign_pdf(pdf, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())


def test_pdf_whose_permissions_forbid_changes_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    perms = StandardPermissions.ALLOW_PRINTING | StandardPermissions.ALLOW_CONTENT_EXTRACTION
    pdf = _blank_pdf({"owner_pass": "owner-secret", "user_pass": "", "perms": perms})
    with pytest.raises(InvalidInputError, match="permissions"):
        sign_pdf(pdf, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())


def test_encrypted_pdf_that_allows_changes_is_signed(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    pdf = _blank_pdf({"owner_pass": "owner-secret", "user_pass": ""})
    signed = sign_pdf(pdf, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())
    reader = PdfFileReader(BytesIO(signed))
    reader.decrypt("")
    assert len(reader.embedded_signatures) == 1


@pytest.mark.parametrize(
    "data",
    [pytest.param(b"PK\x03\x04 not a pdf", id="non-pdf"), pytest.param(None, id="truncated")],
)
def test_non_pdf_and_truncated_input_are_refused(
    data: bytes | None, credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    if data is None:
        whole = _blank_pdf()
        data = whole[: len(whole) // 2]
    with pytest.raises(InvalidInputError):
        sign_pdf(data, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())
