"""S/MIME multipart/signed messages signed with keys on the shared SoftHSM2 token, checked by
``openssl smime -verify`` against the root and by Python's e-mail parser."""

from __future__ import annotations

import base64
import email
import email.policy
import secrets
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from govsign.clock import FixedClock, SystemClock
from govsign.errors import InvalidInputError, PolicyViolationError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import CMSSignatureSpec, SigningCredential
from govsign.signing.smime import SMIMESignatureSpec, canonical_entity, sign_smime
from helpers.credentials import signing_credential
from helpers.pdf import require_tool

ACTOR = "test:smime"
ADDRESS = "can.bo@example.gov.vn"
KEYS = [pytest.param(KeyAlgorithm.EC_P256, id="ec-p256"), pytest.param(KeyAlgorithm.RSA2048, id="rsa2048")]
HEADERS = (
    f"From: Nguyen Van A <{ADDRESS}>\n"
    "To: Tran Thi B <b@example.gov.vn>, c@example.vn\n"
    "Cc: d@example.vn\n"
    "Subject: =?utf-8?q?C=C3=B4ng_v=C4=83n?= 123\n"
    "Date: Mon, 2 Jun 2025 09:00:00 +0700\n"
    "Message-ID: <1234@example.gov.vn>\n"
)
VIETNAMESE = "Kính gửi các đồng chí,\nCông văn số 123 về việc triển khai chữ ký số.\nTrân trọng.\n"
ATTACHMENT = bytes(range(256)) + b"\r\n\n\r\x00" + secrets.token_bytes(4096)


def _credential(
    services: Services, hierarchy: HierarchyResult, algorithm: KeyAlgorithm, email_address: str | None
) -> SigningCredential:
    subject = f"CN=S/MIME signer {algorithm.value} {secrets.token_hex(4)},C=VN"
    return signing_credential(services, hierarchy, subject=subject, email=email_address, algorithm=algorithm)


@pytest.fixture(scope="module")
def credentials(initialized_services: Services, hierarchy: HierarchyResult) -> dict[KeyAlgorithm, SigningCredential]:
    """An individual certificate with ADDRESS in its subjectAltName, per key algorithm."""
    return {
        algorithm: _credential(initialized_services, hierarchy, algorithm, ADDRESS)
        for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048)
    }


@pytest.fixture(scope="module")
def credential(credentials: dict[KeyAlgorithm, SigningCredential]) -> SigningCredential:
    return credentials[KeyAlgorithm.EC_P256]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(SystemClock().now())


@pytest.fixture
def root_pem(tmp_path: Path, hierarchy: HierarchyResult) -> Path:
    path = tmp_path / "root.pem"
    certificate = x509.load_der_x509_certificate(hierarchy.root.certificate_der)
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def _openssl_verify(signed: bytes, root_pem: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], bytes]:
    openssl = require_tool("openssl")
    (tmp_path / "signed.eml").write_bytes(signed)
    out = tmp_path / "content.out"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [openssl, "smime", "-verify", "-in", str(tmp_path / "signed.eml"), "-CAfile", str(root_pem),
         "-out", str(out)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    return result, out.read_bytes() if out.exists() else b""


def _lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def _verified(signed: bytes, root_pem: Path, tmp_path: Path) -> EmailMessage:
    """Checks the signature with openssl and the structure with Python; the signed content."""
    result, content = _openssl_verify(signed, root_pem, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification successful" in result.stdout + result.stderr
    assert b"\n" not in signed.replace(b"\r\n", b"")  # CRLF only

    parsed = email.message_from_bytes(signed, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/signed"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_param("protocol") == "application/pkcs7-signature"
    assert parsed.get_param("micalg") == "sha-256"
    parts = parsed.get_payload()
    assert isinstance(parts, list)
    assert len(parts) == 2
    signed_part, signature_part = parts
    assert isinstance(signed_part, EmailMessage)
    assert isinstance(signature_part, EmailMessage)
    assert signature_part.get_content_type() == "application/pkcs7-signature"
    assert signature_part.get_filename() == "smime.p7s"
    assert signature_part["Content-Transfer-Encoding"] == "base64"
    assert signature_part.get_content_disposition() == "attachment"

    # What openssl printed is the signed MIME entity, byte for byte the one between the boundaries.
    boundary = parsed.get_boundary()
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.encode("ascii") + b"\r\n"
    between = signed.split(delimiter)[1]
    assert _lf(content) == _lf(between)
    # Every line of the signed entity is 7-bit and at most 998 octets (RFC 8551 3.1.2).
    assert between.isascii()
    assert all(len(line) <= 998 for line in between.split(b"\r\n"))
    # The signature covers exactly those bytes, with no line-ending translation by the verifier.
    signature = signature_part.get_content()
    assert isinstance(signature, bytes)
    (tmp_path / "entity.bin").write_bytes(between)
    (tmp_path / "smime.p7s").write_bytes(signature)
    binary = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "smime.p7s"),
         "-content", str(tmp_path / "entity.bin"), "-CAfile", str(root_pem), "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert binary.returncode == 0, binary.stdout + binary.stderr
    return signed_part


def _text(part: object) -> str:
    """A text part's decoded content with the CRLF line endings of the wire read as newlines."""
    assert isinstance(part, EmailMessage)
    text = part.get_content()
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def _message(*lines: str, body: bytes, crlf: bool = True) -> bytes:
    header = (HEADERS + "".join(line + "\n" for line in lines)).encode("utf-8")
    data = header + b"\n" + body
    return data.replace(b"\n", b"\r\n") if crlf else data


@pytest.mark.parametrize("algorithm", KEYS)
def test_plain_ascii_message_verifies_and_keeps_its_headers(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    root_pem: Path,
    tmp_path: Path,
) -> None:
    text = "Dear colleagues,\n\nThe meeting is at 9:00.\n-- \nOffice\n"
    message = _message(body=text.encode("ascii"))
    signed = sign_smime(message, credentials[algorithm], store, clock)
    content = _verified(signed, root_pem, tmp_path)
    assert content.get_content_type() == "text/plain"
    assert content.get_content_charset() == "us-ascii"
    assert _text(content) == text
    parsed = email.message_from_bytes(signed, policy=email.policy.default)
    assert parsed["Subject"] == "Công văn 123"
    assert parsed["Message-ID"] == "<1234@example.gov.vn>"
    assert parsed["Cc"] == "d@example.vn"
    assert parsed["Date"] == "Mon, 02 Jun 2025 09:00:00 +0700"
    assert signed.startswith(HEADERS.replace("\n", "\r\n").encode("ascii"))
    assert str(parsed["From"]) == f"Nguyen Van A <{ADDRESS}>"


def test_a_changed_content_byte_fails_verification(
    credential: SigningCredential, store: KeyStore, clock: FixedClock, root_pem: Path, tmp_path: Path
) -> None:
    signed = sign_smime(_message(body=b"Pay 100 VND.\n"), credential, store, clock)
    _verified(signed, root_pem, tmp_path)
    result, _ = _openssl_verify(signed.replace(b"Pay 100 VND.", b"Pay 900 VND."), root_pem, tmp_path)
    assert result.returncode != 0
    assert "Verification successful" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("lines", "charset"),
    [
        pytest.param(
            ("MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"),
            "utf-8",
            id="declared-8bit",
        ),
        pytest.param((), "utf-8", id="no-mime-headers"),
    ],
)
@pytest.mark.parametrize("crlf", [True, False], ids=["crlf", "lf"])
@pytest.mark.parametrize("encoding", ["quoted-printable", "base64"])
def test_utf8_text_is_re_encoded_to_7bit_before_signing(
    lines: tuple[str, ...],
    charset: str,
    crlf: bool,
    encoding: str,
    credential: SigningCredential,
    store: KeyStore,
    clock: FixedClock,
    root_pem: Path,
    tmp_path: Path,
) -> None:
    message = _message(*lines, body=VIETNAMESE.encode("utf-8"), crlf=crlf)
    spec = SMIMESignatureSpec(text_transfer_encoding=encoding)  # type: ignore[arg-type]
    signed = sign_smime(message, credential, store, clock, spec)
    content = _verified(signed, root_pem, tmp_path)
    assert content["Content-Transfer-Encoding"] == encoding
    assert content.get_content_charset() == charset
    assert _text(content) == VIETNAMESE


@pytest.mark.parametrize("crlf", [True, False], ids=["crlf", "lf"])
def test_long_lines_are_re_encoded(
    crlf: bool, credential: SigningCredential, store: KeyStore, clock: FixedClock, root_pem: Path, tmp_path: Path
) -> None:
    text = "short line\n" + "x" * 5000 + "\n" + "trailing space   \n" + "tab\tend\t\n"
    signed = sign_smime(_message(body=text.encode("ascii"), crlf=crlf), credential, store, clock)
    content = _verified(signed, root_pem, tmp_path)
    assert content["Content-Transfer-Encoding"] == "quoted-printable"
    assert _text(content) == text


def test_lf_only_message_verifies(
    credential: SigningCredential, store: KeyStore, clock: FixedClock, root_pem: Path, tmp_path: Path
) -> None:
    text = "Line one.\nLine two.\n\nLine four after a blank line.\n"
    message = _message(body=text.encode("ascii"), crlf=False)
    assert b"\r" not in message
    signed = sign_smime(message, credential, store, clock)
    content = _verified(signed, root_pem, tmp_path)
    assert _text(content) == text
    headers, entity = canonical_entity(message)
    assert entity == b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + text.replace("\n", "\r\n").encode()
    assert b"".join(headers) == HEADERS.replace("\n", "\r\n").encode("ascii")


def _multipart_message(*, crlf: bool) -> bytes:
    html = "<p>" + VIETNAMESE + "</p>"
    inner = (
        "From: other@example.vn\nSubject: forwarded\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\nTin nhắn được chuyển tiếp.\n"
    ).encode()
    text_parts = (
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="outer-b"\n'
        b"\n"
        b"This is a multi-part message in MIME format.\n"
        b"--outer-b\n"
        b'Content-Type: multipart/alternative; boundary="alt-b"\n'
        b"\n"
        b"--alt-b\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n" + VIETNAMESE.encode() + b"\n"
        b"--alt-b\n"
        b"Content-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n" + html.encode() + b"\n"
        b"--alt-b--\n"
        b"--outer-b\n"
        b'Content-Type: application/pdf; name="cong-van.pdf"\n'
        b"Content-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="cong-van.pdf"\n'
        b"\n" + base64.encodebytes(b"%PDF-1.7 fake") + b"\n"
        b"--outer-b\n"
        b"Content-Type: message/rfc822\n"
        b"\n" + inner + b"\n"
        b"--outer-b\n"
        b"Content-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: binary\n"
        b'Content-Disposition: attachment; filename="data.bin"\n'
        b"\n"
    )
    header = HEADERS.encode()
    if crlf:
        header, text_parts = header.replace(b"\n", b"\r\n"), text_parts.replace(b"\n", b"\r\n")
        close = b"\r\n--outer-b--\r\n"
    else:
        close = b"\n--outer-b--\n"
    return header + text_parts + ATTACHMENT + close


@pytest.mark.parametrize("crlf", [True, False], ids=["crlf", "lf"])
def test_multipart_message_with_binary_attachment_verifies(
    crlf: bool, credential: SigningCredential, store: KeyStore, clock: FixedClock, root_pem: Path, tmp_path: Path
) -> None:
    signed = sign_smime(_multipart_message(crlf=crlf), credential, store, clock)
    content = _verified(signed, root_pem, tmp_path)
    assert content.get_content_type() == "multipart/mixed"
    alternative, pdf, forwarded, binary = content.iter_parts()
    plain, html = alternative.iter_parts()  # type: ignore[attr-defined]
    assert _text(plain) == VIETNAMESE
    assert html.get_content_type() == "text/html"
    assert "triển khai" in _text(html)
    assert pdf.get_filename() == "cong-van.pdf"
    assert pdf.get_content() == b"%PDF-1.7 fake"
    assert forwarded.get_content_type() == "message/rfc822"
    inner = forwarded.get_content()
    assert isinstance(inner, EmailMessage)
    assert inner["Subject"] == "forwarded"
    assert _text(inner) == "Tin nhắn được chuyển tiếp.\n"
    assert binary.get_filename() == "data.bin"
    assert binary["Content-Transfer-Encoding"] == "base64"
    assert binary.get_content() == ATTACHMENT


def test_from_domain_compares_case_insensitively_but_local_part_exactly(
    credential: SigningCredential, store: KeyStore, clock: FixedClock, root_pem: Path, tmp_path: Path
) -> None:
    message = b"From: CAN.BO <can.bo@Example.GOV.vn>\r\nSubject: x\r\n\r\nhello\r\n"
    _verified(sign_smime(message, credential, store, clock), root_pem, tmp_path)
    with pytest.raises(PolicyViolationError, match="does not match the signing certificate's e-mail address"):
        sign_smime(message.replace(b"can.bo@", b"Can.Bo@"), credential, store, clock)


def test_sha384_names_its_micalg(credential: SigningCredential, store: KeyStore, clock: FixedClock) -> None:
    spec = SMIMESignatureSpec(cms=CMSSignatureSpec(digest_algorithm="sha384"))
    signed = sign_smime(_message(body=b"hello\n"), credential, store, clock, spec)
    parsed = email.message_from_bytes(signed, policy=email.policy.default)
    assert parsed.get_param("micalg") == "sha-384"


@pytest.mark.parametrize(
    ("message", "error", "match"),
    [
        pytest.param(
            b"From: someone@example.vn\r\nSubject: x\r\n\r\nhi\r\n",
            PolicyViolationError,
            r"^The From address someone@example.vn does not match the signing certificate's e-mail address\.$",
            id="from-mismatch",
        ),
        pytest.param(
            b"To: a@example.vn\r\nSubject: x\r\n\r\nhi\r\n", InvalidInputError, "no From header", id="no-from"
        ),
        pytest.param(
            f"From: {ADDRESS}, other@example.vn\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "names 2 mailboxes",
            id="two-mailboxes",
        ),
        pytest.param(
            f"From: {ADDRESS}\r\nFrom: {ADDRESS}\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "2 From headers",
            id="two-from-headers",
        ),
        pytest.param(b"From: \r\n\r\nhi\r\n", InvalidInputError, "does not name one mailbox", id="empty-from"),
        pytest.param(
            f"From: x@evil.example({ADDRESS})\r\n\r\nhi\r\n".encode(),
            PolicyViolationError,
            "The From address x@evil.example does not match",
            id="address-in-comment",
        ),
        pytest.param(
            f"From: {ADDRESS} x@evil.example\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "does not name one mailbox",
            id="ambiguous-from",
        ),
        pytest.param(
            f"From: <{ADDRESS}> x@evil.example\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "does not name one mailbox",
            id="trailing-address",
        ),
        pytest.param(
            f"From: Group: {ADDRESS}, x@evil.example;\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "names 2 mailboxes",
            id="group",
        ),
        pytest.param(b"", InvalidInputError, "^The message is empty", id="empty"),
        pytest.param(b" \r\n\r\n", InvalidInputError, "^The message is empty", id="blank"),
        pytest.param(b"hello world, this is not a message\n", InvalidInputError, "not an e-mail message", id="text"),
        pytest.param(
            f"From: {ADDRESS}\r\nSubject: headers only".encode(),
            InvalidInputError,
            "no empty line between its header and its body",
            id="no-separator",
        ),
        pytest.param(b"\r\nbody without headers\r\n", InvalidInputError, "no header fields", id="no-headers"),
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" + bytes(range(256)) + b"\n\n",
            InvalidInputError,
            "not an e-mail message",
            id="binary",
        ),
        pytest.param(
            f"From: {ADDRESS}\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n\r\nhi\r\n".encode(),
            InvalidInputError,
            "2 Content-Type headers",
            id="two-content-types",
        ),
        pytest.param(
            f'From: {ADDRESS}\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\nno parts\r\n'.encode(),
            InvalidInputError,
            "no body part with its boundary",
            id="multipart-without-parts",
        ),
        pytest.param(
            f"From: {ADDRESS}\r\nContent-Transfer-Encoding: base64\r\n\r\n\xff\xfe\r\n".encode("latin-1"),
            InvalidInputError,
            "declared as base64 contains 8-bit bytes",
            id="8bit-in-base64",
        ),
        pytest.param(
            f"From: {ADDRESS}\r\n\r\n".encode() + "Xin chào".encode("cp1258", errors="replace") + b"\xff\r\n",
            InvalidInputError,
            "not UTF-8 and no Content-Type names their charset",
            id="unknown-charset",
        ),
    ],
)
def test_refusals(
    message: bytes,
    error: type[Exception],
    match: str,
    credential: SigningCredential,
    store: KeyStore,
    clock: FixedClock,
) -> None:
    with pytest.raises(error, match=match):
        sign_smime(message, credential, store, clock)


def test_already_signed_message_is_refused(credential: SigningCredential, store: KeyStore, clock: FixedClock) -> None:
    signed = sign_smime(_message(body=b"hello\n"), credential, store, clock)
    with pytest.raises(InvalidInputError, match="already signed"):
        sign_smime(signed, credential, store, clock)
    opaque = f"From: {ADDRESS}\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n\r\nMIAG\r\n"
    with pytest.raises(InvalidInputError, match="already signed"):
        sign_smime(opaque.encode(), credential, store, clock)


def test_certificate_without_email_is_refused(
    initialized_services: Services, hierarchy: HierarchyResult, store: KeyStore, clock: FixedClock
) -> None:
    no_email = _credential(initialized_services, hierarchy, KeyAlgorithm.EC_P256, None)
    with pytest.raises(PolicyViolationError, match="no e-mail address"):
        sign_smime(_message(body=b"hello\n"), no_email, store, clock)


def test_internationalized_from_domain_matches_its_a_label_in_the_certificate(
    initialized_services: Services,
    hierarchy: HierarchyResult,
    store: KeyStore,
    clock: FixedClock,
    root_pem: Path,
    tmp_path: Path,
) -> None:
    idna = _credential(initialized_services, hierarchy, KeyAlgorithm.EC_P256, "thu.ky@xn--b-8xm.vn")
    message = "From: Thư ký <thu.ky@Bộ.vn>\r\nSubject: IDNA\r\n\r\nhello\r\n".encode()
    content = _verified(sign_smime(message, idna, store, clock), root_pem, tmp_path)
    assert _text(content) == "hello\n"
    with pytest.raises(PolicyViolationError, match="does not match"):
        sign_smime(message.replace("Bộ".encode(), b"Bo"), idna, store, clock)
