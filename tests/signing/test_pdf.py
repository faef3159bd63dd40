"""PAdES B-B signatures with keys on the shared SoftHSM2 token, checked by qpdf, pyHanko's own
validation and ``openssl cms -verify`` over the signed byte ranges."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from govsign.errors import InvalidInputError, UnavailableError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.tsa.authority import rejection
from helpers.pdf import assert_valid, blank_pdf, hierarchy_context, openssl_verify_pdf, qpdf_check

KEYS = [pytest.param(KeyAlgorithm.EC_P256, id="ec-p256"), pytest.param(KeyAlgorithm.RSA2048, id="rsa2048")]


@pytest.mark.parametrize("algorithm", KEYS)
def test_pades_b_b_signature_is_valid_and_a_second_one_keeps_it_valid(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    tmp_path: Path,
) -> None:
    original = blank_pdf()
    spec = PDFSignatureSpec(reason="Approved", location="Ha Noi")
    signed = sign_pdf(original, credentials[algorithm], store, spec)
    assert signed.startswith(original)  # incremental update
    qpdf_check(signed, tmp_path)
    assert_valid(signed, hierarchy, 1)
    openssl_verify_pdf(signed, hierarchy, tmp_path)

    other = credentials[KeyAlgorithm.RSA2048 if algorithm is KeyAlgorithm.EC_P256 else KeyAlgorithm.EC_P256]
    sealed = sign_pdf(signed, other, store, PDFSignatureSpec(field_name="Seal"))
    assert sealed.startswith(signed)
    qpdf_check(sealed, tmp_path)
    assert_valid(sealed, hierarchy, 2)


def test_certification_signature_is_valid(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, hierarchy: HierarchyResult
) -> None:
    signed = sign_pdf(blank_pdf(), credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec(certify=True))
    assert_valid(signed, hierarchy, 1)
    assert PdfFileReader(BytesIO(signed)).embedded_signatures[0].docmdp_level is not None


def test_pades_b_t_signature_has_a_valid_signature_time_stamp(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    timestamper = LocalTimeStamper(initialized_services.timestamps.answer)
    spec = PDFSignatureSpec(level="B-T")
    signed = sign_pdf(blank_pdf(), credentials[KeyAlgorithm.RSA2048], store, spec, timestamper=timestamper)
    qpdf_check(signed, tmp_path)
    embedded = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    context = hierarchy_context(hierarchy)
    status = validate_pdf_signature(embedded, context, ts_validation_context=context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.valid and status.timestamp_validity.trusted


def test_b_t_with_a_refusing_time_stamping_authority_is_unavailable_not_an_internal_error(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    """The in-process TSA answers systemFailure while the HSM is down: the signature is refused
    as unavailable (a 503 at the API), with the TSA's failure named, and nothing is signed."""
    refusal = rejection("system_failure", "The time-stamping key is unavailable; try again later.").der
    for answer in (refusal, b"not a time-stamp response"):
        timestamper = LocalTimeStamper(lambda query, answer=answer: answer)  # type: ignore[misc]
        with pytest.raises(UnavailableError, match="time-stamping authority") as raised:
            sign_pdf(blank_pdf(), credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec(level="B-T"), timestamper)
        if answer is refusal:
            assert "system_failure" in raised.value.message, raised.value.message


def test_b_t_without_a_timestamper_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    with pytest.raises(InvalidInputError, match="time-stamp"):
        sign_pdf(blank_pdf(), credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec(level="B-T"))


def test_encrypted_pdf_with_a_user_password_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    pdf = blank_pdf(encrypt={"owner_pass": "owner-secret", "user_pass": "user-secret"})
    with pytest.raises(InvalidInputError, match="password"):
        sign_pdf(pdf, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())


def test_pdf_whose_permissions_forbid_changes_is_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    perms = StandardPermissions.ALLOW_PRINTING | StandardPermissions.ALLOW_CONTENT_EXTRACTION
    pdf = blank_pdf(encrypt={"owner_pass": "owner-secret", "user_pass": "", "perms": perms})
    with pytest.raises(InvalidInputError, match="permissions"):
        sign_pdf(pdf, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())


def test_encrypted_pdf_that_allows_changes_is_signed(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    pdf = blank_pdf(encrypt={"owner_pass": "owner-secret", "user_pass": ""})
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
        whole = blank_pdf()
        data = whole[: len(whole) // 2]
    with pytest.raises(InvalidInputError):
        sign_pdf(data, credentials[KeyAlgorithm.EC_P256], store, PDFSignatureSpec())
