"""Which signatures of a PDF are cryptographically intact: the signed hash matches the bytes its
/ByteRange covers and the signature value verifies with the signer's certificate embedded in it.

No trust, revocation or difference analysis: this answers "has a person already signed this
document?" for Decree 30/2020's rule that an agency's seal goes only on a document its competent
person signed (whose certificate it is, the caller decides from its own records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from pyhanko.pdf_utils.crypt.api import AuthStatus
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import validate_sig_integrity

from govsign.errors import InvalidInputError


@dataclass(frozen=True, kw_only=True)
class IntactSignature:
    """A signature whose hash and signature value verify."""

    field_name: str
    """The signature field."""
    certificate_der: bytes
    """The signer's certificate, as embedded."""


def intact_signatures(stream: BinaryIO, *, password: str | None = None) -> Sequence[IntactSignature]:
    """The intact signatures (not document time-stamps) of the PDF in ``stream``, in document
    order. InvalidInputError when it cannot be read (or opened with ``password``)."""
    try:
        stream.seek(0)
        reader = PdfFileReader(stream, strict=False)
        if reader.encrypted and reader.decrypt(password or "").status is AuthStatus.FAILED:
            raise InvalidInputError("The PDF file is encrypted and cannot be opened without its password.")
        embedded = list(reader.embedded_regular_signatures)
    except InvalidInputError:
        raise
    except Exception as error:
        raise InvalidInputError("The PDF file is damaged and cannot be read.") from error
    found = []
    for signature in embedded:
        try:
            certificate = signature.signer_cert
            intact, valid = validate_sig_integrity(
                signature.signer_info,
                certificate,
                expected_content_type="data",
                actual_digest=signature.compute_digest(),
            )
        except Exception:  # noqa: BLE001, S112 - a signature that cannot be checked is not intact
            continue
        if intact and valid:
            found.append(IntactSignature(field_name=signature.field_name, certificate_der=bytes(certificate.dump())))
    return found
