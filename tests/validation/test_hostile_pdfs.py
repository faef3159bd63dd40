"""Hostile PDFs (issue 11): a deep or huge file gets a clear problem (InvalidInputError, which
the API answers with a 422 problem document), quickly and in bounded memory, never a
RecursionError, a stuck worker or a 500; chains are bounded in depth and path building in
work; a whole verification is bounded in time and what is not validated in time is
INDETERMINATE, saying that the time bound was reached.

The files are built by hand, small on disk: compressed cross-reference streams and
decompression bombs declare or expand to far more than they take."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Mapping
from io import BytesIO

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore

from govsign.errors import ErrorKind, InvalidInputError
from govsign.validation.pdf import PDFValidation, validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Conclusion, Indication, conclude
from helpers.pdf import blank_pdf

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DER = serialization.Encoding.DER
#: What a verification of one of these files may take (they are refused in well under a second).
QUICK = 3.0
#: The memory a refusal may take, over what the file itself takes.
SMALL = 32 * 1024 * 1024

HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"


def _pdf(objects: Mapping[int, bytes], *, trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (number -> body) with a classic cross-reference table."""
    out = bytearray(HEADER)
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, objects[number])
    size = max(objects) + 1
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%d\n%%%%EOF\n" % (size, trailer, xref_at)
    return bytes(out)


def _simple(catalog: bytes = CATALOG, **more: bytes) -> bytes:
    return _pdf({1: catalog, 2: PAGES, 3: PAGE, **{int(k[1:]): v for k, v in more.items()}})


def _last_startxref(pdf: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", pdf)[-1])


def _update(pdf: bytes, objects: Mapping[int, bytes]) -> bytes:
    """``pdf`` with an incremental update (classic cross-reference section) redefining or
    adding ``objects``."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    size = max(int(reader.trailer["/Size"]), max(objects) + 1)
    root = reader.trailer.raw_get("/Root")
    out = bytearray(pdf)
    offsets = {}
    for number, body in sorted(objects.items()):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n" + b"".join(b"%d 1\n%010d 00000 n \n" % (n, offsets[n]) for n in sorted(offsets))
    out += b"trailer\n<< /Size %d /Root %d 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        root.idnum,
        _last_startxref(pdf),
        xref_at,
    )
    return bytes(out)


def _deflated_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(1)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.compress(bytes(size & ((1 << 20) - 1))) + compressor.flush()


def _xref_stream_pdf(size: int, widths: tuple[int, int, int] = (1, 4, 2)) -> bytes:
    """A PDF whose cross-reference stream declares ``size`` objects: the three real ones, then
    free entries, compressed (a few kilobytes on disk for millions of entries)."""
    out = bytearray(HEADER)
    offsets = {}
    for number, body in ((1, CATALOG), (2, PAGES), (3, PAGE)):
        offsets[number] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    row = sum(widths)
    head = bytearray(row * 5)
    for number, offset in (*offsets.items(), (4, xref_at)):
        if row:
            head[row * number : row * (number + 1)] = b"\x01" + offset.to_bytes(widths[1], "big") + bytes(widths[2])
    compressor = zlib.compressobj(9)
    data = compressor.compress(bytes(head))
    remaining = max(0, row * size - len(head))
    while remaining:
        step = min(remaining, 1 << 20)
        data += compressor.compress(bytes(step))
        remaining -= step
    data += compressor.flush()
    out += (
        b"4 0 obj\n<< /Type /XRef /Size %d /W [%d %d %d] /Root 1 0 R /Filter /FlateDecode /Length %d >>\nstream\n"
        % (
            size,
            *widths,
            len(data),
        )
    )
    out += data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


# -- the verifications -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quiet_engine() -> Iterator[None]:
    """pyHanko logs what it finds wrong with a file or a path, with tracebacks."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _policy(**bounds: object) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(), fetch_revocation=False, **bounds)  # type: ignore[arg-type]


def _verify(pdf: bytes, policy: ValidationPolicy | None = None) -> PDFValidation:
    return validate_pdf(BytesIO(pdf), policy or _policy(), now=NOW)


def _refused(pdf: bytes, policy: ValidationPolicy | None = None, *, memory: bool = True) -> str:
    """The sentence the verification refuses ``pdf`` with, checking that it comes quickly and
    (with ``memory``) in little memory."""
    if memory:
        tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InvalidInputError) as refused:
            _verify(pdf, policy)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] if memory else 0
    finally:
        if memory:
            tracemalloc.stop()
    assert elapsed < QUICK, f"refusing took {elapsed:.1f} s"
    assert peak < SMALL, f"refusing took {peak / 1e6:.0f} MB"
    assert refused.value.kind is ErrorKind.INVALID_INPUT  # the API answers 422
    sentence = str(refused.value)
    assert sentence.endswith(".") and "Traceback" not in sentence and "recursion" not in sentence.lower()
    return sentence


@pytest.mark.parametrize(
    "nested",
    [b"[" * 100_000 + b"]" * 100_000, b"<< /A " * 100_000 + b"null" + b" >>" * 100_000],
    ids=["arrays", "dictionaries"],
)
def test_objects_nested_100000_deep(nested: bytes) -> None:
    pdf = _simple(b"<< /Type /Catalog /Pages 2 0 R /Deep " + nested + b" >>")
    assert "nests its objects too deeply" in _refused(pdf)


def test_objects_nested_deep_in_an_update_after_a_signature(signed: bytes) -> None:
    """The reader parses it only in the difference analysis, while the signature is validated."""
    reader = PdfFileReader(BytesIO(signed), strict=False)
    page = reader.root["/Pages"]["/Kids"].raw_get(0)
    page_dict = page.get_object()
    media_box = b" ".join(str(int(v)).encode() for v in page_dict["/MediaBox"])
    parent = page_dict.raw_get("/Parent").idnum
    deep = b"[" * 100_000 + b"]" * 100_000
    pdf = _update(
        signed,
        {
            page.idnum: b"<< /Type /Page /Parent %d 0 R /MediaBox [%s] /Annots [900 0 R] >>" % (parent, media_box),
            900: b"<< /Type /Annot /Subtype /Text /Rect [0 0 1 1] /Deep " + deep + b" >>",
        },
    )
    assert "nests its objects too deeply" in _refused(pdf, memory=False)


def test_a_cross_reference_stream_declaring_millions_of_objects() -> None:
    pdf = _xref_stream_pdf(5_000_000)
    assert len(pdf) < 64 * 1024  # 28 s and 850 MB for pyHanko's reader alone
    assert f"declare more than {ValidationPolicy(trust_anchors=()).max_pdf_objects} objects" in _refused(pdf)


def test_a_cross_reference_stream_of_empty_rows() -> None:
    """/W [0 0 0]: a billion entries in no bytes at all (each takes the default values)."""
    pdf = _xref_stream_pdf(1_000_000_000, widths=(0, 0, 0))
    assert f"declare more than {ValidationPolicy(trust_anchors=()).max_pdf_objects} objects" in _refused(pdf)


def test_a_cross_reference_table_longer_than_the_bound() -> None:
    pdf = _simple(**{"o5000": b"null"})  # a classic table of 5001 rows
    assert "declare more than 1000 objects" in _refused(pdf, _policy(max_pdf_objects=1000))
    assert conclude(_verify(pdf).signatures, []) is Conclusion.NO_SIGNATURES  # within the default bound


def test_a_prev_loop_in_the_cross_reference_chain() -> None:
    pdf = _simple()
    loop_at = len(pdf)
    pdf += b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
        loop_at,
        loop_at,
    )
    assert "/Prev loop" in _refused(pdf)


def test_many_revisions() -> None:
    """1001 incremental updates of a few bytes each (pyHanko's reader took 5 s for 20000)."""
    out = bytearray(_simple())
    xref_at = _last_startxref(bytes(out))
    for _ in range(1_001):
        prev, body_at = xref_at, len(out)
        out += b"3 0 obj\n" + PAGE + b"\nendobj\n"
        xref_at = len(out)
        out += b"xref\n3 1\n%010d 00000 n \ntrailer\n<< /Size 4 /Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (
            body_at,
            prev,
            xref_at,
        )
    assert "more than 1000 revisions" in _refused(bytes(out))


def test_a_signature_contents_too_large() -> None:
    """An 8 MB hex string (a 4 MB /Contents) took pyHanko's reader 25 s and 750 MB."""
    signature = (
        b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /ByteRange [0 10 20 30] "
        b"/Contents <" + b"30" * 4_000_000 + b"> >>"
    )
    pdf = _simple(
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] /SigFlags 3 >> >>",
        o4=b"<< /FT /Sig /T (Signature1) /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /P 3 0 R /V 5 0 R >>",
        o5=signature,
    )
    assert "longer than the largest signature accepted" in _refused(pdf)


def test_an_array_of_a_million_numbers() -> None:
    """Every token the reader parses costs some 250 bytes of memory: the parsing is bounded."""
    pdf = _simple(b"<< /Type /Catalog /Pages 2 0 R /Wide [" + b"1 " * 1_000_000 + b"] >>")
    assert "MB of objects to parse" in _refused(pdf, _policy(max_pdf_parse_bytes=512 * 1024), memory=False)


def test_a_revocation_stream_that_decodes_to_too_much() -> None:
    """A CRL in the document security store: 8 KB on disk, 8 MB decoded (pyHanko's bound for
    CRLs is 50 times their encoded size)."""
    bomb = _deflated_zeros(8 * 1024 * 1024)
    pdf = _simple(
        b"<< /Type /Catalog /Pages 2 0 R /DSS << /CRLs [4 0 R] >> >>",
        o4=b"<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(bomb), bomb),
    )
    assert "decodes to more data than a verification accepts" in _refused(pdf)


def test_a_page_content_bomb_costs_nothing() -> None:
    """Verification never decodes page content: a content stream decoding past every bound is
    not even opened."""
    bomb = _deflated_zeros(80 * 1024 * 1024)
    pdf = _simple(
        o3=b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        o4=b"<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(bomb), bomb),
    )
    started = time.monotonic()
    result = _verify(pdf)
    assert time.monotonic() - started < QUICK
    assert conclude(result.signatures, result.timestamps) is Conclusion.NO_SIGNATURES


# -- signatures from a hostile PKI ----------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey, key: ec.EllipticCurvePrivateKey, *, ca: bool) -> x509.Certificate:  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(key, hashes.SHA256())


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _root(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    return _certificate(common_name, common_name, key.public_key(), key, ca=True), key


def _asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(DER))


def _sign(
    pdf: bytes, leaf: x509.Certificate, key: ec.EllipticCurvePrivateKey, embedded: list[x509.Certificate], field: str
) -> bytes:
    private = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out = BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf), strict=False),
        signers.PdfSignatureMetadata(field_name=field, subfilter=SigSeedSubFilter.PADES),
        signer=signers.SimpleSigner(
            signing_cert=_asn1(leaf),
            signing_key=private,
            cert_registry=SimpleCertificateStore.from_certs([_asn1(c) for c in embedded]),
        ),
        output=out,
    )
    return out.getvalue()


@pytest.fixture(scope="module")
def signed() -> bytes:
    root, root_key = _root("Root")
    key = _key()
    return _sign(blank_pdf(), _certificate("Signer", "Root", key.public_key(), root_key, ca=False), key, [root], "A")


@pytest.fixture(scope="module")
def tangle() -> Callable[[bytes, str], bytes]:
    """Signs with a certificate whose issuer is named like 30 CA certificates the signature
    embeds, each of which names the same issuer: path building would try every ordering of
    them (30! paths), never reaching a trust anchor."""
    ca_key = _key()
    cas = [_certificate("Evil CA", "Evil CA", ca_key.public_key(), ca_key, ca=True) for _ in range(30)]
    key = _key()
    leaf = _certificate("Signer", "Evil CA", key.public_key(), ca_key, ca=False)
    return lambda pdf, field: _sign(pdf, leaf, key, cas, field)


def _trusting_another_root() -> ValidationPolicy:
    root, _ = _root("Some Root")
    return ValidationPolicy(trust_anchors=(root.public_bytes(DER),), fetch_revocation=False)


def test_path_building_is_bounded(tangle: Callable[[bytes, str], bytes]) -> None:
    pdf = tangle(blank_pdf(), "A")
    started = time.monotonic()
    report = _verify(pdf, _trusting_another_root()).signatures[0]
    assert time.monotonic() - started < QUICK
    assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")
    assert report.messages[0].code == "signature.path-building-bounded"


def test_the_whole_verification_is_bounded_in_time(tangle: Callable[[bytes, str], bytes]) -> None:
    """With path building unbounded, the time bound stops it (CPU-bound work included) and
    covers the whole document: the signature after it is not validated either."""
    root, root_key = _root("Root")
    key = _key()
    pdf = _sign(
        tangle(blank_pdf(), "A"), _certificate("Signer", "Root", key.public_key(), root_key, ca=False), key, [root], "B"
    )
    policy = ValidationPolicy(
        trust_anchors=(root.public_bytes(DER),),
        fetch_revocation=False,
        timeout_seconds=1.5,
        max_path_building_steps=10**9,
    )
    started = time.monotonic()
    result = _verify(pdf, policy)
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 1.5 + QUICK, f"{elapsed:.1f} s"
    assert [(r.indication, r.sub_indication) for r in result.signatures] == [
        (Indication.INDETERMINATE, "TRY_LATER")
    ] * 2
    for report in result.signatures:
        assert report.messages[0].code == "document.timed-out"
        assert "time bound of 1.5 seconds" in report.messages[0].en and "1.5 giây" in report.messages[0].vi
    assert [m.code for m in result.messages] == ["document.time-bound-reached"]
    assert conclude(result.signatures, result.timestamps) is Conclusion.INDETERMINATE


def test_chains_are_bounded_in_depth() -> None:
    """Root, eight intermediates, the signer: ten certificates, each CA's CRL at hand."""
    keys = [_key() for _ in range(9)]
    chain = [_certificate("CA 0", "CA 0", keys[0].public_key(), keys[0], ca=True)]
    chain += [_certificate(f"CA {i}", f"CA {i - 1}", keys[i].public_key(), keys[i - 1], ca=True) for i in range(1, 9)]
    key = _key()
    signer = _certificate("Signer", "CA 8", key.public_key(), keys[8], ca=False)
    crls = [
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(f"CA {i}"))
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=1))
        .sign(keys[i], hashes.SHA256())
        .public_bytes(DER)
        for i in range(9)
    ]
    out = BytesIO(_sign(blank_pdf(), signer, key, chain[1:], "A"))
    DocumentSecurityStore.add_dss(out, sig_contents=None, crls=[asn1_crl.CertificateList.load(c) for c in crls])
    anchor = (chain[0].public_bytes(DER),)

    bounded = _verify(out.getvalue(), ValidationPolicy(trust_anchors=anchor, fetch_revocation=False)).signatures[0]
    assert (bounded.indication, bounded.sub_indication) == (Indication.INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE")
    assert bounded.messages[0].code == "signature.chain-too-long"
    assert "10 certificates, more than the 8" in bounded.messages[0].en

    policy = ValidationPolicy(trust_anchors=anchor, fetch_revocation=False, max_chain_length=10)
    allowed = _verify(out.getvalue(), policy).signatures[0]
    assert (allowed.indication, len(allowed.chain)) == (Indication.TOTAL_PASSED, 10), allowed.messages


def test_a_signature_embedding_too_many_certificates() -> None:
    root, root_key = _root("Root")
    key = _key()
    extra = [_root(f"Filler {i}")[0] for i in range(120)]
    pdf = _sign(
        blank_pdf(), _certificate("Signer", "Root", key.public_key(), root_key, ca=False), key, [root, *extra], "A"
    )
    assert "embeds 122 certificates, more than the 100 accepted" in _refused(pdf, memory=False)
