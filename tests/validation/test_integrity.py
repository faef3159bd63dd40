"""Which signatures of a PDF are intact (the rule that a seal needs a person's signature first)."""

from __future__ import annotations

from io import BytesIO

import pytest

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.signing import SigningCredential
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf
from govsign.validation.integrity import intact_signatures
from helpers.pdf import blank_pdf


def test_an_intact_signature_is_found_with_its_certificate_and_a_changed_one_is_not(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    signed = sign_pdf(blank_pdf(), credential, store, PDFSignatureSpec(field_name="NguoiKy"))
    assert signed is not None
    (found,) = intact_signatures(BytesIO(signed))
    assert (found.field_name, found.certificate_der) == ("NguoiKy", credential.certificate_der)

    changed = bytearray(signed)
    position = changed.index(b"/MediaBox")
    changed[position + 1 : position + 2] = b"m"
    assert intact_signatures(BytesIO(bytes(changed))) == []
    assert intact_signatures(BytesIO(blank_pdf())) == []


def test_an_unreadable_pdf_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        intact_signatures(BytesIO(b"%PDF-1.7 not really"))
