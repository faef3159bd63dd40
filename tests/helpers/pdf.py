"""PDFs for tests, and the outside checks of signed ones (pyHanko validation, qpdf, openssl cms)."""

from __future__ import annotations

import re
import shutil
import subprocess
import zlib
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign import fields
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from govsign.pki.hierarchy import HierarchyResult

A4 = (0, 0, 595, 842)


def blank_pdf(
    pages: int = 1,
    *,
    password: str | None = None,
    encrypt: dict[str, Any] | None = None,
    media_box: tuple[int, int, int, int] = A4,
) -> bytes:
    """A PDF of empty pages; with ``password`` encrypted for that user password (owner password
    ``owner-<password>``), or with ``encrypt`` as pyHanko's ``PdfFileWriter.encrypt`` arguments."""
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    for _ in range(pages):
        writer.insert_page(  # type: ignore[no-untyped-call]
            PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, media_box)))  # type: ignore[no-untyped-call]
        )
    if password is not None:
        writer.encrypt(owner_pass=b"owner-" + password.encode(), user_pass=password.encode())  # type: ignore[no-untyped-call]
    elif encrypt is not None:
        writer.encrypt(**encrypt)  # type: ignore[no-untyped-call]
    output = BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    return output.getvalue()


def validation_context(chain_der: Sequence[bytes], *, revocation_mode: str = "soft-fail") -> ValidationContext:
    """pyHanko's validation context for a chain (leaf or issuing CA first, root last)."""
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(chain_der[-1])],
        other_certs=[asn1_x509.Certificate.load(der) for der in chain_der[:-1]],
        allow_fetching=False,
        revocation_mode=revocation_mode,
    )


def chain_context(chain: Sequence[x509.Certificate], *, revocation_mode: str = "soft-fail") -> ValidationContext:
    """pyHanko's validation context for a chain of certificates (root last)."""
    return validation_context(
        [certificate.public_bytes(serialization.Encoding.DER) for certificate in chain], revocation_mode=revocation_mode
    )


def hierarchy_context(hierarchy: HierarchyResult) -> ValidationContext:
    return validation_context((hierarchy.issuing.certificate_der, hierarchy.root.certificate_der))


def assert_valid(pdf: bytes, hierarchy: HierarchyResult, count: int) -> None:
    """Every one of ``count`` signatures is intact, valid and trusted for pyHanko, PAdES."""
    reader = PdfFileReader(BytesIO(pdf))
    assert len(reader.embedded_signatures) == count
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, hierarchy_context(hierarchy))
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
        assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


def qpdf_check(pdf: bytes, tmp_path: Path) -> None:
    """``qpdf --check`` finds nothing wrong."""
    qpdf = shutil.which("qpdf")
    assert qpdf is not None, "qpdf is not installed (scripts/bootstrap.sh installs it)"
    path = tmp_path / "signed.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([qpdf, "--check", str(path)], capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def signature_contents(pdf: bytes) -> tuple[bytes, bytes]:
    """The CMS of the first signature (exactly its DER, without the placeholder's padding) and the
    bytes its ByteRange covers."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    start1, length1, start2, length2 = (int(value) for value in match.groups())
    padded = bytes.fromhex(pdf[start1 + length1 + 1 : start2 - 1].decode())
    return padded[: _der_length(padded)], pdf[start1 : start1 + length1] + pdf[start2 : start2 + length2]


def _der_length(der: bytes) -> int:
    """The length of the DER element at the start of ``der`` (tag, length octets and content)."""
    first = der[1]
    if first < 0x80:
        return 2 + first
    size = first & 0x7F
    return 2 + size + int.from_bytes(der[2 : 2 + size], "big")


def openssl_verify_pdf(pdf: bytes, hierarchy: HierarchyResult, tmp_path: Path) -> None:
    """``openssl cms -verify`` accepts the first signature over its byte ranges."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is not installed"
    signature, content = signature_contents(pdf)
    (tmp_path / "sig.p7s").write_bytes(signature)
    (tmp_path / "content.bin").write_bytes(content)
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


def require_tool(name: str) -> str:
    """The path of a tool the suite needs; a failure (not a skip) when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; scripts/bootstrap.sh installs what the suite needs.")
    return path


def word_style_pdf() -> bytes:
    """A one-page PDF laid out as Word's "Save as PDF" writes it: a hybrid-reference file. Its
    first section is a classic xref table whose entries for the structure tree are free
    placeholders; an update with an empty table then points (``/XRefStm``) to an xref stream
    that finds those objects in an object stream."""
    out = bytearray(b"%PDF-1.7\r\n%\xb5\xb5\xb5\xb5\r\n")
    offsets: dict[int, int] = {}
    file_id = b"/ID[<0123456789ABCDEF0123456789ABCDEF><0123456789ABCDEF0123456789ABCDEF>]"

    def add(number: int, body: bytes) -> None:
        offsets[number] = len(out)
        out.extend(b"%d 0 obj\r\n%s\r\nendobj\r\n" % (number, body))

    def stream(dictionary: bytes, data: bytes) -> bytes:
        packed = zlib.compress(data)
        return b"<<%s/Filter/FlateDecode/Length %d>>\r\nstream\r\n%s\r\nendstream" % (dictionary, len(packed), packed)

    add(1, b"<</Type/Catalog/Pages 2 0 R/Lang(vi-VN) /StructTreeRoot 8 0 R/MarkInfo<</Marked true>>>>")
    add(2, b"<</Type/Pages/Count 1/Kids[ 3 0 R] >>")
    add(
        3,
        b"<</Type/Page/Parent 2 0 R/Resources<</Font<</F1 5 0 R>>/ProcSet[/PDF/Text]>>/MediaBox[ 0 0 595.32 841.92]"
        b" /Contents 4 0 R/Group<</Type/Group/S/Transparency/CS/DeviceRGB>>/Tabs/S/StructParents 0>>",
    )
    add(4, stream(b"", b"BT /F1 12 Tf 72 720 Td (Quyet dinh so 123/QD-UBND) Tj ET"))
    add(5, b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica/Encoding/WinAnsiEncoding>>")
    add(6, b"<</Creator(Microsoft\\256 Word 2016) /Producer(Microsoft\\256 Word 2016) >>")
    members = b"<</Type/StructTreeRoot/K 9 0 R>> <</S/Document/P 8 0 R>>"
    index = b"8 0 9 %d " % members.index(b"<</S/")
    add(7, stream(b"/Type/ObjStm/N 2/First %d" % len(index), index + members))
    table_at = len(out)
    out.extend(b"xref\r\n0 10\r\n0000000008 65535 f\r\n")
    out.extend(b"".join(b"%010d 00000 n\r\n" % offsets[number] for number in range(1, 8)))
    out.extend(b"0000000009 65535 f\r\n0000000000 65535 f\r\n")
    out.extend(
        b"trailer\r\n<</Size 10/Root 1 0 R/Info 6 0 R%s>>\r\nstartxref\r\n%d\r\n%%%%EOF\r\n" % (file_id, table_at)
    )
    xref_stream_at = len(out)
    rows = b"".join(bytes([2]) + (7).to_bytes(4, "big") + bytes([0, number - 8]) for number in (8, 9))
    rows += bytes([1]) + xref_stream_at.to_bytes(4, "big") + bytes([0, 0])
    out.extend(
        b"10 0 obj\r\n%s\r\nendobj\r\n" % stream(b"/Type/XRef/Size 11/Index[8 3]/W[ 1 4 2] /Root 1 0 R" + file_id, rows)
    )
    update_at = len(out)
    out.extend(
        b"xref\r\n0 0\r\ntrailer\r\n<</Size 11/Root 1 0 R/Info 6 0 R%s /Prev %d/XRefStm %d>>\r\nstartxref\r\n%d\r\n%%%%EOF\r\n"
        % (file_id, table_at, xref_stream_at, update_at)
    )
    return bytes(out)


def pdf_with_empty_signature_field(name: str = "ChuKyLanhDao", *, encrypt: dict[str, Any] | None = None) -> bytes:
    """A one-page PDF with one empty, visible signature field; with ``encrypt`` (pyHanko's
    ``PdfFileWriter.encrypt`` arguments) encrypted."""
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    writer.insert_page(  # type: ignore[no-untyped-call]
        PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, A4)))  # type: ignore[no-untyped-call]
    )
    fields.append_signature_field(writer, fields.SigFieldSpec(sig_field_name=name, box=(330, 60, 565, 150)))
    if encrypt is not None:
        writer.encrypt(**encrypt)  # type: ignore[no-untyped-call]
    output = BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    return output.getvalue()


def pdfsig(pdf: bytes, root_der: bytes, tmp_path: Path, *, password: str | None = None) -> str:
    """What poppler's pdfsig says of the document's signatures, with an NSS database trusting
    ``root_der`` and without its online OCSP check (no test answers the AIA URL; pdfsig always
    exits 0, so its words are the verdict)."""
    tool = require_tool("pdfsig")
    certutil = require_tool("certutil")
    nss = tmp_path / "nss"
    if not nss.exists():
        nss.mkdir()
        (tmp_path / "root.pem").write_bytes(
            x509.load_der_x509_certificate(root_der).public_bytes(serialization.Encoding.PEM)
        )
        subprocess.run([certutil, "-N", "-d", str(nss), "--empty-password"], check=True, capture_output=True)
        subprocess.run(
            [certutil, "-A", "-d", str(nss), "-n", "root", "-t", "CT,C,C", "-i", str(tmp_path / "root.pem")],
            check=True,
            capture_output=True,
        )
    path = tmp_path / "checked.pdf"
    path.write_bytes(pdf)
    command = [tool, "-nssdir", str(nss), "-no-ocsp", *(["-upw", password] if password else []), str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    return result.stdout + result.stderr
