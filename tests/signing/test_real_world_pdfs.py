"""The PDFs document systems really send: Word's hybrid-reference files, owner-password files whose
permissions allow signing, user-password files with their password, files that already have an
empty signature field. Each signs and verifies (qpdf, pdfsig, pyHanko, our own verification);
what the file's permissions or DocMDP certification forbid is still refused."""

from __future__ import annotations

import datetime as dt
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils.crypt.permissions import StandardPermissions
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import HSMSigner, PDFSignatureSpec, sign_pdf
from govsign.validation.pdf import validate_pdf
from govsign.validation.report import Indication
from helpers.pdf import blank_pdf, pdf_with_empty_signature_field, pdfsig, qpdf_check, word_style_pdf

PRINT = StandardPermissions.ALLOW_PRINTING
#: Acrobat's "filling in form fields and signing existing signature fields": bit 9 only.
FILL_AND_SIGN = PRINT | StandardPermissions.ALLOW_FORM_FILLING
#: Acrobat's "commenting, filling in form fields, and signing": bits 6 and 9, not 4.
COMMENT_FILL_AND_SIGN = FILL_AND_SIGN | StandardPermissions.ALLOW_ANNOTS_FORM_FILLING
#: Bits 4 and 6: a new signature field may be created.
MODIFY = PRINT | StandardPermissions.ALLOW_MODIFICATION_GENERIC | StandardPermissions.ALLOW_ANNOTS_FORM_FILLING


@pytest.fixture(scope="module")
def signer(credentials: dict[KeyAlgorithm, SigningCredential]) -> SigningCredential:
    return credentials[KeyAlgorithm.EC_P256]


def _ours(pdf: bytes, services: Services) -> list[Indication]:
    """Our own verification's indications, with our trust and our CAs' records."""
    verifications = services.verifications
    validated = validate_pdf(
        BytesIO(pdf), verifications.policy(), now=dt.datetime.now(dt.UTC), status=verifications.status
    )
    return [signature.indication for signature in validated.signatures]


def _field_names(pdf: bytes, password: str | None = None) -> list[tuple[str, bool]]:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    if password is not None:
        reader.decrypt(password.encode())
    return [(name, value is not None) for name, value, _ in fields.enumerate_sig_fields(reader)]


def test_a_word_hybrid_reference_file_signs_and_verifies(
    signer: SigningCredential,
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    original = word_style_pdf()
    assert PdfFileReader(BytesIO(original)).xrefs.hybrid_xrefs_present
    signed = sign_pdf(original, signer, store, PDFSignatureSpec(reason="Ký duyệt"))
    assert signed is not None and signed.startswith(original)
    qpdf_check(signed, tmp_path)
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path)
    assert "Signature is Valid." in said and "Certificate is Trusted." in said, said
    assert _ours(signed, initialized_services) == [Indication.TOTAL_PASSED]


@pytest.mark.parametrize("permissions", [FILL_AND_SIGN, COMMENT_FILL_AND_SIGN], ids=["bit9", "bits6+9"])
def test_an_owner_password_file_that_permits_signing_signs_its_empty_field(
    permissions: StandardPermissions,
    signer: SigningCredential,
    store: KeyStore,
    hierarchy: HierarchyResult,
    tmp_path: Path,
) -> None:
    original = pdf_with_empty_signature_field(
        encrypt={"owner_pass": "owner-secret", "user_pass": "", "perms": permissions}
    )
    signed = sign_pdf(original, signer, store, PDFSignatureSpec())
    assert signed is not None
    assert PdfFileReader(BytesIO(signed)).encrypted  # the update keeps the file's encryption
    assert _field_names(signed, "") == [("ChuKyLanhDao", True)]
    qpdf_check(signed, tmp_path)
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path)
    assert "Signature is Valid." in said and "Certificate is Trusted." in said, said


def test_permissions_that_allow_only_existing_fields_refuse_a_new_one(
    signer: SigningCredential, store: KeyStore
) -> None:
    original = blank_pdf(encrypt={"owner_pass": "owner-secret", "user_pass": "", "perms": COMMENT_FILL_AND_SIGN})
    with pytest.raises(InvalidInputError, match="empty signature field it already has"):
        sign_pdf(original, signer, store, PDFSignatureSpec())


def test_permissions_that_allow_modifying_sign_in_a_new_field(signer: SigningCredential, store: KeyStore) -> None:
    original = blank_pdf(encrypt={"owner_pass": "owner-secret", "user_pass": "", "perms": MODIFY})
    signed = sign_pdf(original, signer, store, PDFSignatureSpec())
    assert signed is not None and _field_names(signed, "") == [("Signature1", True)]


def test_permissions_that_forbid_filling_in_fields_refuse_even_an_existing_one(
    signer: SigningCredential, store: KeyStore
) -> None:
    original = pdf_with_empty_signature_field(encrypt={"owner_pass": "owner-secret", "user_pass": "", "perms": PRINT})
    with pytest.raises(InvalidInputError, match="permissions"):
        sign_pdf(original, signer, store, PDFSignatureSpec())


def test_a_user_password_file_signs_with_its_password_and_stays_encrypted(
    signer: SigningCredential, store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    original = blank_pdf(password="mật-khẩu")
    with pytest.raises(InvalidInputError, match="without its password"):
        sign_pdf(original, signer, store, PDFSignatureSpec())
    with pytest.raises(InvalidInputError, match="does not open"):
        sign_pdf(original, signer, store, PDFSignatureSpec(), password="wrong")
    signed = sign_pdf(original, signer, store, PDFSignatureSpec(), password="mật-khẩu")
    assert signed is not None and signed.startswith(original)
    assert PdfFileReader(BytesIO(signed)).encrypted
    assert _field_names(signed, "mật-khẩu") == [("Signature1", True)]
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path, password="mật-khẩu")
    assert "Signature is Valid." in said and "Certificate is Trusted." in said, said


def test_the_only_empty_signature_field_is_the_one_signed(
    signer: SigningCredential, store: KeyStore, initialized_services: Services, tmp_path: Path
) -> None:
    signed = sign_pdf(pdf_with_empty_signature_field(), signer, store, PDFSignatureSpec())
    assert signed is not None and _field_names(signed) == [("ChuKyLanhDao", True)]
    qpdf_check(signed, tmp_path)
    assert _ours(signed, initialized_services) == [Indication.TOTAL_PASSED]
    # the next signature gets a field of its own; a signed field is never signed again
    sealed = sign_pdf(signed, signer, store, PDFSignatureSpec())
    assert sealed is not None and _field_names(sealed) == [("ChuKyLanhDao", True), ("Signature1", True)]
    with pytest.raises(InvalidInputError, match="already signed"):
        sign_pdf(sealed, signer, store, PDFSignatureSpec(field_name="ChuKyLanhDao"))


def test_a_docmdp_certification_that_forbids_changes_is_refused(signer: SigningCredential, store: KeyStore) -> None:
    writer = IncrementalPdfFileWriter(BytesIO(blank_pdf()))
    metadata = signers.PdfSignatureMetadata(
        field_name="Certification", certify=True, docmdp_permissions=fields.MDPPerm.NO_CHANGES
    )
    locked = BytesIO()
    signers.PdfSigner(metadata, signer=HSMSigner(signer, store)).sign_pdf(writer, output=locked)
    with pytest.raises(InvalidInputError, match="cannot be signed"):
        sign_pdf(locked.getvalue(), signer, store, PDFSignatureSpec())
