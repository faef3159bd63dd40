"""S/MIME signing of an e-mail message: RFC 8551 ``multipart/signed`` over a canonical MIME entity.

:func:`sign_smime` takes an RFC 5322 message (LF or CRLF line endings) and returns it with its
top-level headers (From, To, Subject, Date, Message-ID...) kept and its content, the MIME entity
made of the ``Content-*`` headers and the body, wrapped into ``multipart/signed`` (RFC 1847) with a
detached CAdES-B-B signature (:func:`govsign.signing.cms.sign_detached`) as ``smime.p7s``.

Before signing, the entity is put into canonical form (RFC 8551 section 3.1): CRLF line endings,
and 7-bit transfer encodings only (section 3.1.2): text with 8-bit bytes, NULs, bare CRs or lines
longer than 998 octets is re-encoded as quoted-printable (or base64), other such content as base64;
multipart and message/rfc822 content is walked part by part. The output is built byte by byte
(never through ``email.generator``, which refolds headers) so the signed bytes are exactly the
bytes a receiver finds between the boundaries. The ``email`` package only parses header values.

The From header must name one mailbox whose address is an e-mail address of the signer's
certificate (rfc822Name in subjectAltName or emailAddress in the subject): local parts compared
exactly, domains case-insensitively after IDNA (A-label) conversion.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.message
import email.policy
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.errors import InvalidHeaderDefect
from email.utils import getaddresses
from typing import Literal

from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.errors import InvalidInputError, PolicyViolationError
from govsign.keystore.api import HashAlgorithm, KeyStore
from govsign.signing.cms import CMSSignatureSpec, SigningCredential, hash_algorithm, sign_detached

#: micalg parameter values of RFC 8551 section 3.5.3.2.
MICALG: dict[HashAlgorithm, str] = {
    HashAlgorithm.SHA256: "sha-256",
    HashAlgorithm.SHA384: "sha-384",
    HashAlgorithm.SHA512: "sha-512",
}

_CRLF = b"\r\n"
_MAX_LINE = 998
_HEADER_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+")
_DIRECT_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})
_SEVEN_BIT_ENCODINGS = frozenset({"base64", "quoted-printable"})
_PREAMBLE = b"This is a cryptographically signed message in MIME format."
_SIGNATURE_HEADERS = (
    b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename=smime.p7s\r\n"
)
_MAX_DEPTH = 32


@dataclass(frozen=True, kw_only=True)
class SMIMESignatureSpec:
    """How an e-mail message is signed."""

    cms: CMSSignatureSpec = field(default_factory=CMSSignatureSpec)
    """How the detached CMS signature is made; its digest algorithm also names the micalg."""
    text_transfer_encoding: Literal["quoted-printable", "base64"] = "quoted-printable"
    """How text that is not 7-bit clean is re-encoded; other content that is not gets base64."""


@dataclass(frozen=True)
class _Header:
    name: str
    """Field name as written."""
    lines: tuple[bytes, ...]
    """The field's physical lines, without line endings (continuation lines start with WSP)."""

    @property
    def key(self) -> str:
        return self.name.lower()

    def value_bytes(self) -> bytes:
        """The unfolded value, without the name and colon, stripped."""
        first = self.lines[0].split(b":", 1)[1]
        return b"".join((first, *self.lines[1:])).strip()

    def value(self) -> str:
        """The unfolded value as text (ASCII; RFC 6532 UTF-8 where the field allows it)."""
        return self.value_bytes().decode("utf-8", errors="replace")

    def canonical(self) -> bytes:
        return b"".join(line + _CRLF for line in self.lines)


# -- line-level helpers -----------------------------------------------------------------------


def _canonical_lines(data: bytes) -> bytes:
    """CRLF and bare LF line endings as CRLF (bare CRs are left for the cleanliness check)."""
    return data.replace(_CRLF, b"\n").replace(b"\n", _CRLF)


def _seven_bit_clean(canonical: bytes) -> bool:
    """RFC 2045 7bit data: ASCII without NUL, CR only before LF, lines of at most 998 octets."""
    if not canonical.isascii() or b"\x00" in canonical:
        return False
    if canonical.count(b"\r") != canonical.count(_CRLF):
        return False
    return all(len(line) <= _MAX_LINE for line in canonical.split(_CRLF))


def _base64_body(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", _CRLF)


def _quoted_printable_body(canonical: bytes) -> bytes:
    """Quoted-printable of canonical text: its CRLFs stay hard line breaks (RFC 2045 6.7)."""
    return binascii.b2a_qp(canonical.replace(_CRLF, b"\n"), quotetabs=False, istext=True).replace(b"\n", _CRLF)


# -- header parsing ---------------------------------------------------------------------------


def _split_header(data: bytes, *, where: str, need_separator: bool) -> tuple[list[_Header], bytes]:
    """Header fields up to the first empty line, and the raw body after it."""
    headers: list[_Header] = []
    current: list[bytes] = []
    name = ""
    position = 0
    body: bytes | None = None
    while position < len(data):
        end = data.find(b"\n", position)
        if end < 0:
            line, position = data[position:], len(data)
        else:
            line, position = data[position:end], end + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            body = data[position:]
            break
        if b"\x00" in line or b"\r" in line:
            raise InvalidInputError(f"{where} contains control characters in its header.")
        if line[:1] in (b" ", b"\t"):
            if not current:
                raise InvalidInputError(f"{where} starts with a folded header line.")
            current.append(line)
            continue
        field_name, colon, _ = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(field_name):
            raise InvalidInputError(f"{where} has a header line that is not a 'Name: value' field.")
        if current:
            headers.append(_Header(name, tuple(current)))
        name, current = field_name.decode("ascii"), [line]
    if current:
        headers.append(_Header(name, tuple(current)))
    if body is None:
        if need_separator:
            raise InvalidInputError(f"{where} has no empty line between its header and its body.")
        body = b""
    return headers, body


def _content_fields(headers: Iterable[_Header]) -> email.message.Message:
    """The Content-* fields in a Message, only to read their parameters (never to write)."""
    fields = email.message.Message()
    for header in headers:
        if header.key.startswith("content-"):
            fields[header.name] = header.value()
    return fields


def _one(headers: list[_Header], key: str, where: str) -> _Header | None:
    found = [header for header in headers if header.key == key]
    if len(found) > 1:
        raise InvalidInputError(f"{where} has {len(found)} {found[0].name} headers; it may have at most one.")
    return found[0] if found else None


# -- canonical MIME entity --------------------------------------------------------------------


def _entity(headers: list[_Header], body: bytes, *, default_type: str, spec: SMIMESignatureSpec, depth: int) -> bytes:
    """The canonical, 7-bit form of one MIME entity: its header fields, an empty line, its body."""
    if depth > _MAX_DEPTH:
        raise InvalidInputError(f"The message nests MIME parts more than {_MAX_DEPTH} levels deep.")
    for header in headers:
        for line in header.lines:
            if not line.isascii():
                raise InvalidInputError(
                    f"The {header.name} header of the signed content has 8-bit characters; "
                    "encode it (RFC 2047 or RFC 2231) before signing."
                )
            if len(line) > _MAX_LINE:
                raise InvalidInputError(f"The {header.name} header of the signed content has a line over 998 octets.")
    where = "A MIME part"
    type_header = _one(headers, "content-type", where)
    encoding_header = _one(headers, "content-transfer-encoding", where)
    encoding = encoding_header.value().lower() if encoding_header else ""
    fields = _content_fields(headers)
    content_type = fields.get_content_type() if type_header is not None else default_type
    main_type = content_type.split("/", 1)[0]

    if main_type == "multipart" or content_type == "message/rfc822":
        if encoding not in _DIRECT_ENCODINGS:
            raise InvalidInputError(f"A {content_type} part may not have the {encoding} transfer encoding.")
        if main_type == "multipart":
            boundary = fields.get_boundary()
            if not boundary:
                raise InvalidInputError(f"A {content_type} part has no boundary parameter.")
            inner = _multipart(body, boundary, content_type, spec, depth)
        else:
            inner_headers, inner_body = _split_header(body, where="An attached message", need_separator=False)
            inner = _entity(inner_headers, inner_body, default_type="text/plain", spec=spec, depth=depth + 1)
        return _join(headers, inner)

    if encoding in _SEVEN_BIT_ENCODINGS or encoding not in _DIRECT_ENCODINGS:
        canonical = _canonical_lines(body)
        if not _seven_bit_clean(canonical):
            label = encoding_header.value() if encoding_header else encoding
            raise InvalidInputError(f"A part declared as {label} contains 8-bit bytes or overlong lines.")
        return _join(headers, canonical)

    if main_type == "text":
        canonical = _canonical_lines(body)
        if _seven_bit_clean(canonical):
            return _join(headers, canonical)
        bare_cr = canonical.count(b"\r") != canonical.count(_CRLF)
        if spec.text_transfer_encoding == "quoted-printable" and not bare_cr:
            return _join(_with_encoding(headers, "quoted-printable"), _quoted_printable_body(canonical))
        return _join(_with_encoding(headers, "base64"), _base64_body(canonical))

    if encoding != "binary":
        canonical = _canonical_lines(body)
        if _seven_bit_clean(canonical):
            return _join(headers, canonical)
    return _join(_with_encoding(headers, "base64"), _base64_body(body))


def _with_encoding(headers: list[_Header], encoding: str) -> list[_Header]:
    kept = [header for header in headers if header.key != "content-transfer-encoding"]
    line = f"Content-Transfer-Encoding: {encoding}".encode("ascii")
    return [*kept, _Header("Content-Transfer-Encoding", (line,))]


def _join(headers: list[_Header], body: bytes) -> bytes:
    return b"".join(header.canonical() for header in headers) + _CRLF + body


def _multipart(body: bytes, boundary: str, content_type: str, spec: SMIMESignatureSpec, depth: int) -> bytes:
    """A multipart body with each part canonical; preamble and epilogue kept only when 7-bit."""
    marker = boundary.encode("ascii", errors="replace")
    delimiter = re.compile(rb"(?:\A|\r?\n)--" + re.escape(marker) + rb"(--)?[ \t]*(?=\r?\n|\Z)")
    matches = list(delimiter.finditer(body))
    if not matches:
        raise InvalidInputError(f"A {content_type} part has no body part with its boundary.")
    default_type = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
    out: list[bytes] = []
    preamble = _canonical_lines(body[: matches[0].start()])
    if _seven_bit_clean(preamble):
        out.append(preamble)
        if matches[0].group(0)[:1] in (b"\r", b"\n"):
            out.append(_CRLF)
    closed = False
    for index, match in enumerate(matches):
        if match.group(1):
            closed = True
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        raw_part = body[match.end() : end]
        raw_part = raw_part[2:] if raw_part.startswith(_CRLF) else raw_part[1:] if raw_part[:1] == b"\n" else raw_part
        part_headers, part_body = _split_header(raw_part, where="A MIME part", need_separator=False)
        canonical = _entity(part_headers, part_body, default_type=default_type, spec=spec, depth=depth + 1)
        out.append(b"--" + marker + _CRLF + canonical + _CRLF)
    out.append(b"--" + marker + b"--" + _CRLF)
    if closed:
        close = next(match for match in matches if match.group(1))
        epilogue = body[close.end() :]
        epilogue = epilogue[2:] if epilogue.startswith(_CRLF) else epilogue[1:] if epilogue[:1] == b"\n" else epilogue
        epilogue = _canonical_lines(epilogue)
        if epilogue and _seven_bit_clean(epilogue):
            out.append(epilogue)
    return b"".join(out)


# -- From and the certificate -----------------------------------------------------------------


def _normalized(address: str) -> tuple[str, str]:
    """(local part, domain) with the domain as lower-case A-labels."""
    local, _, domain = address.rpartition("@")
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return local, domain.lower()


def _certificate_emails(certificate_der: bytes) -> list[str]:
    """rfc822Name entries of subjectAltName and emailAddress attributes of the subject."""
    try:
        certificate = asn1_x509.Certificate.load(certificate_der, strict=True)
        found: list[str] = []
        san = certificate.subject_alt_name_value
        if san is not None:
            for name in san:
                if name.name == "rfc822_name":
                    found.append(name.chosen.contents.decode("ascii", errors="replace"))
        for rdn in certificate.subject.chosen:
            for attribute in rdn:
                if attribute["type"].native == "email_address":
                    found.append(attribute["value"].contents.decode("ascii", errors="replace"))
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError("The signing certificate is not DER X.509.") from None
    return found


def _from_address(headers: list[_Header]) -> str:
    from_headers = [header for header in headers if header.key == "from"]
    if not from_headers:
        raise InvalidInputError("The message has no From header; a signed message needs its author's address.")
    if len(from_headers) > 1:
        raise InvalidInputError(f"The message has {len(from_headers)} From headers; it must have exactly one.")
    try:
        value = from_headers[0].value_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("The From header is neither ASCII nor UTF-8.") from None
    # Two parsers must read the same mailboxes: a header they disagree on could show a reader
    # another author than the one checked here (CVE-2023-27043).
    parsed = email.policy.default.header_factory("From", value)
    modern: list[str] = [str(address.addr_spec) for address in getattr(parsed, "addresses", ())]
    if len(modern) > 1:
        raise InvalidInputError(
            f"The From header names {len(modern)} mailboxes; a signed message must have exactly one author."
        )
    pairs = getaddresses([value])
    legacy = [address for _, address in pairs if address]
    if (
        any(isinstance(defect, InvalidHeaderDefect) for defect in parsed.defects)
        or len(pairs) != 1
        or legacy != modern
        or modern[0].count("@") != 1
        or modern[0].startswith("@")
        or modern[0].endswith("@")
    ):
        raise InvalidInputError("The From header does not name one mailbox (local@domain).")
    return modern[0]


def _check_author(address: str, certificate_der: bytes) -> None:
    emails = _certificate_emails(certificate_der)
    if not emails:
        raise PolicyViolationError("The signing certificate has no e-mail address, so it cannot sign e-mail.")
    wanted = _normalized(address)
    if not any(_normalized(candidate) == wanted for candidate in emails):
        raise PolicyViolationError(
            f"The From address {address} does not match the signing certificate's e-mail address."
        )


# -- the signer -------------------------------------------------------------------------------


def _boundary(entity: bytes) -> bytes:
    """A boundary that occurs nowhere in the entity ("=_" never appears in QP or base64 text)."""
    while True:
        boundary = b"----=_govsign_" + secrets.token_hex(16).encode("ascii")
        if boundary not in entity:
            return boundary


def canonical_entity(message: bytes, spec: SMIMESignatureSpec | None = None) -> tuple[list[bytes], bytes]:
    """The message's top-level header lines (CRLF-terminated, MIME fields left out) and the
    canonical MIME entity that :func:`sign_smime` signs; no From or certificate check."""
    headers, body = _parse_message(message)
    return [header.canonical() for header in _top_headers(headers)], _top_entity(
        headers, body, spec or SMIMESignatureSpec()
    )


def _parse_message(message: bytes) -> tuple[list[_Header], bytes]:
    if not isinstance(message, bytes | bytearray | memoryview):
        raise InvalidInputError("The message must be given as bytes.")
    message = bytes(message)
    if not message.strip():
        raise InvalidInputError("The message is empty.")
    headers, body = _split_header(message, where="The input is not an e-mail message: it", need_separator=True)
    if not headers:
        raise InvalidInputError("The input is not an e-mail message: it has no header fields.")
    for header in headers:
        try:
            header.value_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"The input is not an e-mail message: its {header.name} header is neither ASCII nor UTF-8."
            ) from None
    content_type = _one(headers, "content-type", "The message")
    if content_type is not None:
        fields = _content_fields(headers)
        media = fields.get_content_type()
        smime_type = str(fields.get_param("smime-type", "", header="content-type") or "").lower()
        if media == "multipart/signed" or (
            media in ("application/pkcs7-mime", "application/x-pkcs7-mime") and smime_type != "enveloped-data"
        ):
            raise InvalidInputError("The message is already signed; sign the original message instead.")
    return headers, body


def _is_mime_field(header: _Header) -> bool:
    return header.key.startswith("content-") or header.key == "mime-version"


def _top_headers(headers: list[_Header]) -> list[_Header]:
    return [header for header in headers if not _is_mime_field(header)]


def _top_entity(headers: list[_Header], body: bytes, spec: SMIMESignatureSpec) -> bytes:
    mime = [header for header in headers if header.key.startswith("content-")]
    if _one(mime, "content-type", "The message") is None:
        charset = "us-ascii"
        encoding_header = _one(mime, "content-transfer-encoding", "The message")
        encoding = encoding_header.value().lower() if encoding_header else ""
        if encoding in _DIRECT_ENCODINGS and not body.isascii():
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInputError(
                    "The message body has 8-bit bytes that are not UTF-8 and no Content-Type names their charset."
                ) from None
            charset = "utf-8"
        line = f"Content-Type: text/plain; charset={charset}".encode("ascii")
        mime = [_Header("Content-Type", (line,)), *mime]
    return _entity(mime, body, default_type="text/plain", spec=spec, depth=0)


def sign_smime(
    message: bytes,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: SMIMESignatureSpec | None = None,
) -> bytes:
    """The message as RFC 8551 ``multipart/signed`` (CRLF line endings), signed by the credential.

    InvalidInputError for input that is not a message, has no or several From mailboxes, or is
    already signed; PolicyViolationError when From is not an address of the signer's certificate.
    """
    spec = spec or SMIMESignatureSpec()
    micalg = MICALG.get(hash_algorithm(spec.cms.digest_algorithm))
    if micalg is None:
        raise InvalidInputError(f"S/MIME has no micalg name for the digest {spec.cms.digest_algorithm}.")
    headers, body = _parse_message(message)
    _check_author(_from_address(headers), credential.certificate_der)
    entity = _top_entity(headers, body, spec)
    signature = sign_detached(entity, credential, keystore, clock, spec.cms)
    boundary = _boundary(entity)
    content_type = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n'
        b" micalg=" + micalg.encode("ascii") + b'; boundary="' + boundary + b'"\r\n'
    )
    return b"".join(
        (
            *(header.canonical() for header in _top_headers(headers)),
            b"MIME-Version: 1.0\r\n",
            content_type,
            _CRLF,
            _PREAMBLE + _CRLF,
            _CRLF + b"--" + boundary + _CRLF,
            entity,
            _CRLF + b"--" + boundary + _CRLF,
            _SIGNATURE_HEADERS,
            _CRLF,
            _base64_body(signature),
            _CRLF + b"--" + boundary + b"--" + _CRLF,
        )
    )
