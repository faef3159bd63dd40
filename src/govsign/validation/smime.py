"""S/MIME messages (RFC 8551) as a verifier reads them: the signed MIME entity and its detached
signature of a ``multipart/signed`` message (RFC 1847), or the SignedData of an
``application/pkcs7-mime`` one. The signed entity is taken from the raw bytes exactly as they
were sent (line endings made CRLF, as RFC 8551 canonicalises them), never re-serialised.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from govsign.errors import InvalidInputError

#: The largest header block read before the body of a message.
_MAX_HEADER_BYTES = 256 * 1024


@dataclass(frozen=True, kw_only=True)
class SMIMEParts:
    """What an S/MIME message's signature covers and the signature itself."""

    signature_der: bytes
    """The CMS SignedData, DER."""
    content: bytes | None
    """The signed MIME entity (canonical CRLF) of a multipart/signed message; None when the
    content is inside the SignedData (application/pkcs7-mime)."""


def split_smime(message: bytes) -> SMIMEParts:
    """The signature and what it covers; InvalidInputError when the message is not S/MIME signed."""
    canonical = re.sub(rb"(?<!\r)\n", b"\r\n", message)
    header_end = canonical.find(b"\r\n\r\n")
    if header_end < 0 or header_end > _MAX_HEADER_BYTES:
        raise InvalidInputError("The message has no header block followed by a body.")
    headers = BytesHeaderParser(policy=compat32).parsebytes(canonical[: header_end + 4])
    media = headers.get_content_type()
    body = canonical[header_end + 4 :]
    if media == "multipart/signed":
        boundary = headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise InvalidInputError("The multipart/signed message has no boundary.")
        return _multipart_signed(body, boundary.encode("ascii", "replace"))
    if media in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        return SMIMEParts(signature_der=_base64(body), content=None)
    raise InvalidInputError(f"The message is not S/MIME signed (its content type is {media}).")


def _multipart_signed(body: bytes, boundary: bytes) -> SMIMEParts:
    delimiter = b"\r\n--" + boundary
    text = b"\r\n" + body
    parts = text.split(delimiter)
    # parts[0]: preamble; parts[1]: "\r\n" + signed entity; parts[2]: "\r\n" + signature part; last: "--..."
    if len(parts) < 4 or not parts[-1].startswith(b"--"):
        raise InvalidInputError("The multipart/signed message does not have its two parts.")
    entity = parts[1]
    signature_part = parts[2]
    if not entity.startswith(b"\r\n") or not signature_part.startswith(b"\r\n"):
        raise InvalidInputError("The multipart/signed message's boundaries are malformed.")
    entity = entity[2:]
    header_end = signature_part.find(b"\r\n\r\n", 2)
    if header_end < 0:
        raise InvalidInputError("The signature part of the message has no body.")
    signature_headers = BytesHeaderParser(policy=compat32).parsebytes(signature_part[2 : header_end + 4])
    if signature_headers.get_content_type() not in ("application/pkcs7-signature", "application/x-pkcs7-signature"):
        raise InvalidInputError("The second part of the multipart/signed message is not a PKCS#7 signature.")
    return SMIMEParts(signature_der=_base64(signature_part[header_end + 4 :]), content=entity)


def _base64(data: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("The message's signature is not valid base64.") from None
