"""The PDF-Insecurity attacks on signed PDFs, built against documents govsign signs, each caught.

The attack classes are those of pdf-insecurity.org:

* Incremental Saving Attack (ISA), Signature Wrapping Attack (SWA) and Universal Signature
  Forgery (USF): Mladenov, Mainka, Meyer zu Selhausen, Grothe, Schwenk, "1 Trillion Dollar
  Refund - How To Spoof PDF Signatures", ACM CCS 2019;
* shadow attacks (hide, replace, hide-and-replace): Mainka, Mladenov, Rohlmann, Schwenk,
  "Shadow Attacks: Hiding and Replacing Content in Signed PDFs", NDSS 2021. The attacker
  prepares the document the victim signs (with content that is there but not shown, or shown
  but about to be taken away), then changes what is shown with an update after the signature.

Caught means: the signature is not TOTAL_PASSED and the document's conclusion is not ``valid``.
Each test also says which signal caught it (sub-indication, coverage, modifications after
signing), and checks that the attacked file really shows what the attacker wanted, so that a
test cannot pass on a broken attack. A forged file the validator cannot read at all must be
refused with InvalidInputError, never with another exception.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter, PageObject, PdfFileWriter

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.validation.pdf import PDFValidation, validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Conclusion, Indication, SignatureReport, conclude
from helpers.pdf import blank_pdf, signature_contents

A4 = (0, 0, 595, 842)
BENIGN = b"BT /F1 24 Tf 72 700 Td (Pay 100 EUR to Alice) Tj ET"
MALICIOUS = b"BT /F1 24 Tf 72 700 Td (Pay 100000 EUR to Mallory) Tj ET"
COVER = b"q 1 g 60 680 480 60 re f Q " + BENIGN
"""A white box over what is beneath it, with the benign text on top: the shadow documents' overlay."""


# -- signing and validating -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    """Signs with govsign (PAdES B-B, EC P-256) and validates as the verification service does."""

    services: Services
    hierarchy: HierarchyResult
    credential: SigningCredential
    store: KeyStore

    def sign(self, pdf: bytes) -> bytes:
        signed = sign_pdf(pdf, self.credential, self.store, PDFSignatureSpec(level="B-B"))
        assert signed is not None
        return signed

    def validate(self, pdf: bytes) -> PDFValidation:
        policy = ValidationPolicy(
            trust_anchors=(self.hierarchy.root.certificate_der,), fetch_revocation=False, fetch_timeout_seconds=1
        )
        status = self.services.verifications.status
        return validate_pdf(BytesIO(pdf), policy, now=self.services.clock.now(), status=status)

    def sign_valid(self, pdf: bytes) -> bytes:
        """``pdf`` signed, after checking that the signature passes before any attack."""
        signed = self.sign(pdf)
        result = self.validate(signed)
        assert [s.indication for s in result.signatures] == [Indication.TOTAL_PASSED], result.signatures
        return signed


@pytest.fixture
def bench(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> Bench:
    return Bench(initialized_services, hierarchy, credentials[KeyAlgorithm.EC_P256], store)


def assert_caught(
    result: PDFValidation,
    *,
    sub_indication: str,
    coverage: str,
    modified: str = "not-permitted",
) -> SignatureReport:
    """The attacked signature is not passed (TOTAL_FAILED), the document is not valid, and the
    signal is the one given."""
    assert len(result.signatures) == 1
    report = result.signatures[0]
    assert report.indication is not Indication.TOTAL_PASSED, report.messages
    assert conclude(result.signatures, result.timestamps) is not Conclusion.VALID
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, sub_indication), report.messages
    assert (report.coverage, report.modifications_after_signing) == (coverage, modified), report.modifications
    return report


# -- documents ------------------------------------------------------------------------------------


def _write(writer: BasePdfFileWriter) -> bytes:
    out = BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _font() -> generic.DictionaryObject:
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
        }
    )


def _numbers(*values: float) -> generic.ArrayObject:
    return generic.ArrayObject(generic.NumberObject(v) for v in values)


def _fonts(font: generic.IndirectObject) -> generic.DictionaryObject:
    return generic.DictionaryObject({pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})})


def _page(contents: list[generic.IndirectObject], font: generic.IndirectObject) -> PageObject:
    return PageObject(contents=contents, media_box=_numbers(*A4), resources=_fonts(font))  # type: ignore[no-untyped-call]


def _form_xobject(data: bytes, font: generic.IndirectObject) -> generic.StreamObject:
    """An appearance stream (form XObject) of 480 x 60 points drawing ``data``."""
    return generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): _numbers(0, 0, 480, 60),
            pdf_name("/Resources"): _fonts(font),
        },
        stream_data=data,
    )


def _annotation(font: generic.IndirectObject, appearance: generic.IndirectObject) -> generic.DictionaryObject:
    """A square annotation over the text line whose appearance is ``appearance``."""
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Square"),
            pdf_name("/Rect"): _numbers(60, 680, 540, 740),
            pdf_name("/F"): generic.NumberObject(4),
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
        }
    )


@dataclass(frozen=True)
class Shadow:
    """A document the attacker prepared for signing, and the object numbers the attack acts on."""

    pdf: bytes
    numbers: Mapping[str, int]


def _shadow(
    *streams: bytes,
    annotation: bytes | None = None,
    text_field: bytes | None = None,
    read_only: bool = False,
    hidden: Mapping[str, bytes] | None = None,
    hidden_catalog: bool = False,
    value: str | None = "100 EUR",
) -> Shadow:
    """One page drawing ``streams`` in turn (classic xref tables, like most producers); with an
    annotation whose appearance draws ``annotation``; a text field "Amount" (value "100 EUR",
    read-only with ``read_only``) whose appearance draws ``text_field``; unreferenced content
    streams ``hidden``; or, with ``hidden_catalog``, an unreferenced second catalog whose page
    tree shows MALICIOUS and which shares the real catalog's AcroForm."""
    writer = PdfFileWriter(stream_xrefs=False)  # type: ignore[no-untyped-call]
    numbers: dict[str, int] = {}
    font = writer.add_object(_font())
    numbers["font"] = font.idnum
    refs = [writer.add_object(generic.StreamObject(stream_data=data)) for data in streams]
    numbers.update({f"stream{index}": ref.idnum for index, ref in enumerate(refs)})
    page = _page(refs, font)
    page_ref = writer.insert_page(page)  # type: ignore[no-untyped-call]
    numbers["page"] = page_ref.idnum
    annots = generic.ArrayObject()
    if annotation is not None:
        annot = writer.add_object(_annotation(font, writer.add_object(_form_xobject(annotation, font))))
        annots.append(annot)
        numbers["annotation"] = annot.idnum
    if text_field is not None:
        appearance = writer.add_object(_form_xobject(text_field, font) if text_field else _empty_appearance())
        field = generic.DictionaryObject(
            {
                pdf_name("/FT"): pdf_name("/Tx"),
                pdf_name("/T"): generic.TextStringObject("Amount"),
                pdf_name("/DA"): generic.TextStringObject("/F1 24 Tf 0 g"),
                **_annotation(font, appearance),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/P"): page_ref,
            }
        )
        if value is not None:
            field[pdf_name("/V")] = generic.TextStringObject(value)
        if read_only:
            field[pdf_name("/Ff")] = generic.NumberObject(1)
        field_ref = writer.add_object(field)
        annots.append(field_ref)
        numbers["field"], numbers["field_appearance"] = field_ref.idnum, appearance.idnum
        writer.root["/AcroForm"] = generic.DictionaryObject(
            {
                pdf_name("/Fields"): generic.ArrayObject([field_ref]),
                pdf_name("/DA"): generic.TextStringObject("/F1 24 Tf 0 g"),
                pdf_name("/DR"): _fonts(font),
            }
        )
    if annots:
        page["/Annots"] = annots
    for name, data in (hidden or {}).items():
        numbers[name] = writer.add_object(generic.StreamObject(stream_data=data)).idnum
    if hidden_catalog:
        acroform = writer.add_object(generic.DictionaryObject({pdf_name("/Fields"): generic.ArrayObject()}))
        writer.root["/AcroForm"] = acroform
        pages = writer.add_object(
            generic.DictionaryObject(
                {pdf_name("/Type"): pdf_name("/Pages"), pdf_name("/Count"): generic.NumberObject(1)}
            )
        )
        hidden_page = _page([writer.add_object(generic.StreamObject(stream_data=MALICIOUS))], font)
        hidden_page["/Parent"] = pages
        pages.get_object()["/Kids"] = generic.ArrayObject([writer.add_object(hidden_page)])
        catalog = generic.DictionaryObject(
            {pdf_name("/Type"): pdf_name("/Catalog"), pdf_name("/Pages"): pages, pdf_name("/AcroForm"): acroform}
        )
        numbers["catalog"] = writer.add_object(catalog).idnum
    return Shadow(_write(writer), numbers)


def _empty_appearance() -> generic.StreamObject:
    """The appearance of an empty text field, as form producers write it."""
    stream = generic.StreamObject(stream_data=b"/Tx BMC EMC")
    stream[pdf_name("/Type")] = pdf_name("/XObject")
    stream[pdf_name("/Subtype")] = pdf_name("/Form")
    stream[pdf_name("/BBox")] = generic.ArrayObject(generic.NumberObject(n) for n in (0, 0, 300, 40))
    return stream


def _updated(pdf: bytes, number: int, change: Callable[[IncrementalPdfFileWriter, Any], None]) -> bytes:
    """``pdf`` with an incremental update (pyHanko's writer) that rewrites object ``number``."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    ref = generic.IndirectObject(number, 0, writer)
    change(writer, ref.get_object())
    writer.mark_update(ref)
    return _write(writer)


def _set_data(data: bytes) -> Callable[[IncrementalPdfFileWriter, Any], None]:
    def change(_writer: IncrementalPdfFileWriter, stream: generic.StreamObject) -> None:
        # pyHanko has no setter for a stream's data (nor lets add_object reuse a number)
        stream._data = data
        stream._encoded_data = None

    return change


def _page_ref(pdf: bytes) -> generic.IndirectObject:
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    ref = reader.root["/Pages"]["/Kids"].raw_get(0)
    assert isinstance(ref, generic.IndirectObject)
    return ref


def _content_number(pdf: bytes) -> int:
    contents = _page_ref(pdf).get_object().raw_get("/Contents")
    ref = contents.raw_get(0) if isinstance(contents, generic.ArrayObject) else contents
    return int(ref.idnum)


def _resolved(array: generic.ArrayObject) -> list[Any]:
    return [array[index] for index in range(len(array))]  # iterating gives the references


def _visible(pdf: bytes) -> bytes:
    """What the first page draws, as a reader that follows the last revision finds it: its content
    streams and the normal appearances of its annotations that are not hidden. (pyHanko's
    ``get`` and iteration give references; indexing resolves them.)"""
    page = _page_ref(pdf).get_object()
    contents = page["/Contents"]
    streams = _resolved(contents) if isinstance(contents, generic.ArrayObject) else [contents]
    shown = [stream.data for stream in streams if isinstance(stream, generic.StreamObject)]
    for annot in _resolved(page["/Annots"]) if "/Annots" in page else []:
        if isinstance(annot, generic.DictionaryObject) and "/AP" in annot and not int(annot.get("/F", 0)) & 2:
            appearance = annot["/AP"]["/N"]
            if isinstance(appearance, generic.StreamObject):
                shown.append(appearance.data)
    return b"\n".join(shown)


# -- raw file surgery (what pyHanko's writer will not produce) ------------------------------------

_OBJECT = re.compile(rb"(?m)^(\d+) 0 obj\b")
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")


def _definitions(pdf: bytes) -> dict[int, list[int]]:
    """The offsets of every definition ``N 0 obj`` of each object, in file order."""
    found: dict[int, list[int]] = {}
    for match in _OBJECT.finditer(pdf):
        found.setdefault(int(match.group(1)), []).append(match.start())
    return found


def _last_startxref(pdf: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", pdf)[-1])


def _byte_range(pdf: bytes) -> tuple[int, int, int, int]:
    match = _BYTE_RANGE.search(pdf)
    assert match is not None
    first, length1, start2, length2 = (int(value) for value in match.groups())
    return first, length1, start2, length2


def _stream_body(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def _xref(entries: Mapping[int, int], trailer: bytes) -> bytes:
    """A classic xref section with one subsection per object, and its trailer."""
    table = b"".join(b"%d 1\n%010d 00000 n \n" % (number, entries[number]) for number in sorted(entries))
    return b"xref\n" + table + b"trailer\n<< " + trailer + b" >>\n"


def _append(
    pdf: bytes,
    objects: Mapping[int, bytes] | None = None,
    *,
    repoint: Mapping[int, int] | None = None,
    free: Iterable[int] = (),
    root: bytes | None = None,
    with_xref: bool = True,
    chained: bool = True,
) -> bytes:
    """``pdf`` with ``objects`` (number -> body) appended by hand and, unless ``with_xref`` is
    false, a classic xref section and trailer for them, in which ``repoint`` maps objects to
    offsets already in the file, ``free`` marks objects free and ``root`` replaces /Root. Without
    ``chained`` the section has no /Prev and lists every object of the file at its last definition
    (a fresh xref that hides the revision history)."""
    trailer = PdfFileReader(BytesIO(pdf), strict=False).trailer
    out = bytearray(pdf if pdf.endswith(b"\n") else pdf + b"\n")
    entries: dict[int, bytes] = {}
    if not chained:
        entries.update({n: b"%010d 00000 n \n" % offsets[-1] for n, offsets in _definitions(pdf).items()})
    for number, body in (objects or {}).items():
        entries[number] = b"%010d 00000 n \n" % len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    if not with_xref:
        return bytes(out)
    entries.update({number: b"%010d 00000 n \n" % offset for number, offset in (repoint or {}).items()})
    entries.update({number: b"0000000000 00001 f \n" for number in free})
    size = max([int(trailer["/Size"]), *(number + 1 for number in entries)])
    xref_at = len(out)
    if chained:
        out += b"xref\n" + b"".join(b"%d 1\n" % number + entries[number] for number in sorted(entries))
    else:
        out += b"xref\n0 %d\n0000000000 65535 f \n" % size
        out += b"".join(entries.get(number, b"0000000000 00001 f \n") for number in range(1, size))
    root_ref = trailer.raw_get("/Root")
    out += b"trailer\n<< /Size %d /Root %s" % (size, root or b"%d 0 R" % root_ref.idnum)
    if chained:
        out += b" /Prev %d" % _last_startxref(pdf)
    out += b" >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


@dataclass(frozen=True)
class Layout:
    """Where the parts of a govsign-signed PDF are (its last revision is the signature's)."""

    first: bytes
    """The first signed part, up to the /Contents string."""
    contents: bytes
    """The /Contents string ``<hex>``: the gap of the /ByteRange."""
    second: bytes
    """The second signed part, to the end of the file."""
    prev: int
    """The offset of the xref section of the revision before the signature's."""
    revision: dict[int, int]
    """The objects of the signature's revision: number -> offset."""
    sig_number: int
    """The signature dictionary's object number."""
    sig_body: bytes
    """The signature dictionary as written, between ``obj`` and ``endobj``."""
    size: int
    """The trailer's /Size."""


def _layout(signed: bytes) -> Layout:
    _, length1, start2, length2 = _byte_range(signed)
    trailer = PdfFileReader(BytesIO(signed), strict=False).trailer
    prev = int(trailer["/Prev"])
    revision = {n: offsets[-1] for n, offsets in _definitions(signed).items() if offsets[-1] > prev}
    sig_number = max((n for n, offset in revision.items() if offset < length1), key=revision.__getitem__)
    sig_text = signed[revision[sig_number] : signed.index(b"endobj", start2)]
    return Layout(
        first=signed[:length1],
        contents=signed[length1:start2],
        second=signed[start2 : start2 + length2],
        prev=prev,
        revision=revision,
        sig_number=sig_number,
        sig_body=sig_text.split(b"obj", 1)[1],
        size=int(trailer["/Size"]),
    )


def _with_byte_range(sig_body: bytes, length1: int, start2: int, length2: int) -> bytes:
    new = b"/ByteRange [0 %d %010d %d]" % (length1, start2, length2)
    return _BYTE_RANGE.sub(new, sig_body, count=1)


def _page_overriding(signed: bytes, contents: int) -> tuple[int, bytes]:
    """The first page's number and a hand-written body for it that draws object ``contents``
    (same parent, font and annotations)."""
    page_ref = _page_ref(signed)
    page = page_ref.get_object()
    annots = b" ".join(b"%d 0 R" % annot.idnum for annot in page.raw_get("/Annots"))
    body = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] " % page.raw_get("/Parent").idnum
    body += b"/Resources << /Font << /F1 %d 0 R >> >> " % page["/Resources"]["/Font"].raw_get("/F1").idnum
    body += b"/Contents %d 0 R /Annots [%s] >>" % (contents, annots)
    return page_ref.idnum, body


def _size(pdf: bytes) -> int:
    return int(PdfFileReader(BytesIO(pdf), strict=False).trailer["/Size"])


# -- incremental saving attacks (ISA) ---------------------------------------------------------------


def test_isa_page_content_replaced(bench: Bench) -> None:
    """ISA: an incremental update after the signature points the page at a new content stream."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    page = writer.root["/Pages"]["/Kids"][0]
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=MALICIOUS))
    writer.update_container(page)
    attacked = _write(writer)
    assert MALICIOUS in _visible(attacked)
    assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="entire-revision")


def test_isa_content_stream_overwritten(bench: Bench) -> None:
    """ISA: an incremental update redefines the page's content stream object itself (same number)."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    attacked = _updated(signed, _content_number(signed), _set_data(MALICIOUS))
    assert _visible(attacked) == MALICIOUS
    assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="entire-revision")


def test_isa_page_added(bench: Bench) -> None:
    """ISA: an incremental update adds a page to the signed document."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    font = writer.add_object(_font())
    writer.insert_page(_page([writer.add_object(generic.StreamObject(stream_data=MALICIOUS))], font))  # type: ignore[no-untyped-call]
    attacked = _write(writer)
    assert PdfFileReader(BytesIO(attacked)).root["/Pages"]["/Count"] == 2
    assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="entire-revision")


def test_isa_objects_appended_without_xref(bench: Bench) -> None:
    """ISA (variant of the paper for viewers that repair files): the new page and content objects
    are appended after %%EOF with no xref section or trailer, so that only a viewer that
    reconstructs the cross-reference table sees them. The signature covers the last revision but
    not the file: the bytes after it belong to no revision."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    size = _size(signed)
    page_number, new_page = _page_overriding(signed, size)
    attacked = _append(signed, {size: _stream_body(MALICIOUS), page_number: new_page}, with_xref=False)
    assert attacked.startswith(signed) and len(attacked) > len(signed)
    assert _visible(attacked) == BENIGN  # for pyHanko, which does not repair; a repairing viewer shows MALICIOUS
    # caught because the difference analysis finds no revision after the signed one to review
    # (level NONE), which pdf._modifications does not count as permitted
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="entire-revision")
    assert report.integrity and report.modifications == ["none"]


def test_isa_fresh_xref_without_prev(bench: Bench) -> None:
    """ISA: new objects and a new xref table/trailer are appended that do not chain to the earlier
    ones (no /Prev) but list every object afresh, with the page overridden: the file then has a
    single revision, which the signature does not cover."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    size = _size(signed)
    page_number, new_page = _page_overriding(signed, size)
    attacked = _append(signed, {size: _stream_body(MALICIOUS), page_number: new_page}, chained=False)
    reader = PdfFileReader(BytesIO(attacked))
    assert reader.xrefs.total_revisions == 1 and MALICIOUS in _visible(attacked)
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="partial")
    assert report.integrity


# -- signature wrapping attacks (SWA) ---------------------------------------------------------------


def test_swa_second_signed_part_relocated(bench: Bench) -> None:
    """SWA as published: the second signed part is moved further down and the gap of the
    /ByteRange enlarged; in the gap the attacker puts, exactly at the offset the (signed)
    ``startxref`` names, a new xref section, then a copy of the signature dictionary with
    /ByteRange [0 a c' d] and a new content stream for the page. The bytes hashed are exactly
    the signed ones, so the signature value still verifies; what was signed is no longer what
    is shown."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    layout = _layout(signed)
    start2 = len(layout.first) + len(layout.contents)
    startxref = _last_startxref(signed)
    content_number = _content_number(signed)

    def wrapped(relocated: int) -> bytes:
        gap = bytearray(b"\n%")
        gap += b" " * (startxref - start2 - len(gap) - 1) + b"\n"
        entries = {
            n: offset if offset < start2 else offset - start2 + relocated for n, offset in layout.revision.items()
        }
        trailer = b"/Size %d /Root 1 0 R /Prev %010d" % (layout.size, layout.prev)
        objects_at = startxref + len(_xref({**entries, layout.sig_number: 0, content_number: 0}, trailer))
        new_sig = b"%d 0 obj" % layout.sig_number
        new_sig += _with_byte_range(layout.sig_body, len(layout.first), relocated, len(layout.second)) + b"endobj\n"
        entries[layout.sig_number] = objects_at
        entries[content_number] = objects_at + len(new_sig)
        gap += _xref(entries, trailer) + new_sig
        gap += b"%d 0 obj\n" % content_number + _stream_body(MALICIOUS) + b"\nendobj\n%"
        return layout.first + layout.contents + bytes(gap) + layout.second

    draft = wrapped(0)
    attacked = wrapped(len(draft) - len(layout.second))
    assert attacked.endswith(layout.second) and _last_startxref(attacked) == startxref
    assert _visible(attacked) == MALICIOUS
    _, length1, start2_new, length2 = _byte_range(attacked[attacked.index(b"%d 0 obj" % layout.sig_number, start2) :])
    assert (length1, start2_new + length2) == (len(layout.first), len(attacked))
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="partial")
    assert report.integrity  # the hash is intact: the coverage check catches it


def test_swa_byte_range_does_not_reach_the_end(bench: Bench) -> None:
    """SWA: as above, but the copied signature dictionary and the new content are in the enlarged
    gap and the attacker's xref section and trailer come after the relocated signed part, so the
    /ByteRange does not cover the end of the file."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    layout = _layout(signed)
    start2 = len(layout.first) + len(layout.contents)
    content_number = _content_number(signed)

    def wrapped(relocated: int) -> bytes:
        gap = b"\n%d 0 obj" % layout.sig_number
        gap += _with_byte_range(layout.sig_body, len(layout.first), relocated, len(layout.second)) + b"endobj\n"
        content_at = start2 + len(gap)
        gap += b"%d 0 obj\n" % content_number + _stream_body(MALICIOUS) + b"\nendobj\n"
        body = layout.first + layout.contents + gap + layout.second
        entries = {
            n: offset if offset < start2 else offset - start2 + relocated for n, offset in layout.revision.items()
        }
        entries[layout.sig_number], entries[content_number] = start2 + 1, content_at
        trailer = b"/Size %d /Root 1 0 R /Prev %d" % (layout.size, layout.prev)
        return body + b"\n" + _xref(entries, trailer) + b"startxref\n%d\n%%%%EOF\n" % (len(body) + 1)

    draft = wrapped(0)
    attacked = wrapped(draft.index(layout.second, start2))
    assert _visible(attacked) == MALICIOUS
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="partial")
    assert report.integrity


def test_swa_byte_range_shortened_in_place(bench: Bench) -> None:
    """SWA: the /ByteRange is edited in place (same length) so that it stops before the final
    trailer, which then is free to be pointed at an appended revision with new page content."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    first, length1, start2, _ = _byte_range(signed)
    old = _BYTE_RANGE.search(signed)
    assert old is not None
    tail = signed.rindex(b"startxref")
    new = (b"/ByteRange [%d %d %d %d]" % (first, length1, start2, tail - start2)).ljust(old.end() - old.start())
    edited = signed[: old.start()] + new + signed[old.end() :]
    attacked = _updated(edited, _content_number(edited), _set_data(MALICIOUS))
    assert _visible(attacked) == MALICIOUS
    report = assert_caught(bench.validate(attacked), sub_indication="HASH_FAILURE", coverage="partial")
    assert not report.integrity


def test_swa_signature_dictionary_redeclared(bench: Bench) -> None:
    """SWA: an update copies the signature dictionary unchanged (same /Contents and /ByteRange,
    so the same bytes are hashed) into a new revision that also replaces the page content: the
    signature then belongs to a revision it does not cover."""
    signed = bench.sign_valid(_shadow(BENIGN).pdf)
    layout = _layout(signed)
    attacked = _append(
        signed, {layout.sig_number: layout.sig_body.strip(), _content_number(signed): _stream_body(MALICIOUS)}
    )
    assert _visible(attacked) == MALICIOUS
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="partial")
    assert report.integrity


# -- universal signature forgery (USF) ----------------------------------------------------------------

_PLACEHOLDER = generic.ArrayObject(generic.NumberObject(n) for n in (0, 1111111111, 2222222222, 3333333333))
_PLACEHOLDER_TEXT = b"[ 0 1111111111 2222222222 3333333333 ]"

ByteRangeOf = Callable[[int, int, int], list[int]]
"""The /ByteRange of a forged signature from the /Contents string's start and end and the file length."""


def _proper(start: int, end: int, length: int) -> list[int]:
    return [0, start, end, length - end]


@dataclass(frozen=True)
class Material:
    """What a forger has: a document govsign signed, its CMS, the signer's certificate and a
    time-stamp token from govsign's TSA over other data."""

    signed: bytes
    cms: bytes
    certificate: bytes
    timestamp_token: bytes


def _forge(
    pdf: bytes,
    entries: Mapping[str, Any],
    byte_range: ByteRangeOf | None = _proper,
    *,
    field_name: str = "Signature1",
) -> bytes:
    """``pdf`` with a signature field (added to the form, or a new one) whose signature dictionary
    is written by hand: /Type /Sig, /Filter /Adobe.PPKLite, /SubFilter /ETSI.CAdES.detached and
    /M, then ``entries`` (values, or functions of the writer for indirect objects). With
    ``byte_range`` a /ByteRange placeholder in ``entries`` is filled in afterwards."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    dictionary = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Sig"),
            pdf_name("/Filter"): pdf_name("/Adobe.PPKLite"),
            pdf_name("/SubFilter"): pdf_name("/ETSI.CAdES.detached"),
            pdf_name("/M"): generic.TextStringObject("D:20261203090000Z"),
        }
    )
    for key, value in entries.items():
        dictionary[pdf_name(key)] = value(writer) if callable(value) else value
    widget = writer.add_object(
        generic.DictionaryObject(
            {
                pdf_name("/FT"): pdf_name("/Sig"),
                pdf_name("/T"): generic.TextStringObject(field_name),
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Widget"),
                pdf_name("/F"): generic.NumberObject(132),
                pdf_name("/Rect"): _numbers(0, 0, 0, 0),
                pdf_name("/P"): page_ref,
                pdf_name("/V"): writer.add_object(dictionary),
            }
        )
    )
    page = page_ref.get_object()
    if "/AcroForm" in writer.root:
        form = writer.root["/AcroForm"]
        form["/Fields"].append(widget)
        writer.update_container(form)
        page["/Annots"].append(widget)
    else:
        page["/Annots"] = generic.ArrayObject([widget])
        writer.root["/AcroForm"] = writer.add_object(
            generic.DictionaryObject(
                {pdf_name("/Fields"): generic.ArrayObject([widget]), pdf_name("/SigFlags"): generic.NumberObject(3)}
            )
        )
        writer.update_root()
    writer.update_container(page)
    forged = _write(writer)
    if _PLACEHOLDER_TEXT not in forged or byte_range is None:
        return forged
    at = forged.index(_PLACEHOLDER_TEXT)
    contents = forged.find(b"/Contents <", forged.rindex(b" obj", 0, at))
    start = contents + len(b"/Contents ") if contents != -1 else len(forged)
    end = forged.index(b">", start) + 1 if contents != -1 else len(forged)
    text = ("[" + " ".join(map(str, byte_range(start, end, len(forged)))) + "]").encode()
    assert len(text) <= len(_PLACEHOLDER_TEXT)
    return forged[:at] + text.ljust(len(_PLACEHOLDER_TEXT)) + forged[at + len(_PLACEHOLDER_TEXT) :]


def _without_certificates(der: bytes) -> bytes:
    info = cms.ContentInfo.load(der)
    info["content"]["certificates"] = cms.CertificateSet([])
    return bytes(info.dump(force=True))


def _on_malicious(entries: Callable[[Material], Mapping[str, Any]], byte_range: ByteRangeOf | None = _proper):
    """A forgery on an unsigned document with the attacker's content."""
    return lambda m: _forge(_shadow(MALICIOUS).pdf, entries(m), byte_range)


def _contents(value: Callable[[Material], Any]) -> Callable[[Material], Mapping[str, Any]]:
    return lambda m: {"/Contents": value(m), "/ByteRange": _PLACEHOLDER}


def _range(value: Any) -> Callable[[Material], Mapping[str, Any]]:
    return lambda m: {"/Contents": generic.ByteStringObject(m.cms), "/ByteRange": value}


def _zeroed_in_place(m: Material) -> bytes:
    _, length1, start2, _ = _byte_range(m.signed)
    return m.signed[: length1 + 1] + b"0" * (start2 - length1 - 2) + m.signed[start2 - 1 :]


def _x509_rsa_sha1(certificate: Callable[[Material], bytes]) -> Callable[[Material], Mapping[str, Any]]:
    return lambda m: {
        "/SubFilter": pdf_name("/adbe.x509.rsa_sha1"),
        "/Cert": generic.ByteStringObject(certificate(m)),
        "/Contents": generic.ByteStringObject(bytes(range(256))),
        "/ByteRange": _PLACEHOLDER,
    }


def _document_timestamp(contents: Callable[[Material], bytes]) -> Callable[[Material], bytes]:
    """A /DocTimeStamp appended to the govsign-signed document (a permitted-looking LTA update)."""
    entries = {
        "/Type": pdf_name("/DocTimeStamp"),
        "/SubFilter": pdf_name("/ETSI.RFC3161"),
        "/ByteRange": _PLACEHOLDER,
    }
    return lambda m: _forge(
        m.signed, {**entries, "/Contents": generic.ByteStringObject(contents(m))}, field_name="Timestamp1"
    )


UNREADABLE = "unreadable"
"""The validator refuses the file with InvalidInputError (a clear error, not a verdict)."""
NO_SIGNATURES = "no-signatures"
"""The forged dictionary is not taken for a signature: the document has none."""


USF_CASES = [
    # /Contents
    pytest.param(_on_malicious(lambda m: {"/ByteRange": _PLACEHOLDER}), UNREADABLE, id="contents-missing"),
    pytest.param(_on_malicious(_contents(lambda m: generic.ByteStringObject(b""))), UNREADABLE, id="contents-empty"),
    pytest.param(
        _on_malicious(_contents(lambda m: generic.ByteStringObject(bytes(len(m.cms))))),
        UNREADABLE,
        id="contents-zeroed",
    ),
    pytest.param(_zeroed_in_place, UNREADABLE, id="contents-zeroed-in-signed-document"),
    pytest.param(_on_malicious(_contents(lambda m: generic.NullObject())), UNREADABLE, id="contents-null"),
    pytest.param(_on_malicious(_contents(lambda m: pdf_name("/Signed"))), UNREADABLE, id="contents-name"),
    pytest.param(
        _on_malicious(_contents(lambda m: generic.ByteStringObject(bytes(range(256)) * 8))),
        UNREADABLE,
        id="contents-garbage",
    ),
    pytest.param(
        _on_malicious(_contents(lambda m: lambda writer: writer.add_object(generic.StreamObject(stream_data=m.cms)))),
        UNREADABLE,
        id="contents-indirect-stream",
    ),
    pytest.param(
        _on_malicious(_contents(lambda m: generic.ByteStringObject(m.cms))),
        ("HASH_FAILURE", "entire-document", "none"),
        id="contents-of-another-document",
    ),
    pytest.param(
        _on_malicious(_contents(lambda m: generic.ByteStringObject(_without_certificates(m.cms)))),
        None,
        id="contents-without-certificates",
    ),
    # /ByteRange
    pytest.param(
        _on_malicious(lambda m: {"/Contents": generic.ByteStringObject(m.cms)}, None),
        UNREADABLE,
        id="byte-range-missing",
    ),
    pytest.param(
        _on_malicious(_range(generic.NullObject()), None),
        None,
        id="byte-range-null",
    ),
    pytest.param(
        _on_malicious(_range(generic.ArrayObject()), None),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-empty",
    ),
    pytest.param(
        _on_malicious(_range(_PLACEHOLDER), lambda s, e, n: [0, 0, 0, 0]),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-zero",
    ),
    pytest.param(
        _on_malicious(_range(_PLACEHOLDER), lambda s, e, n: [0, s, e, 10**9]),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-outside-file",
    ),
    pytest.param(
        _on_malicious(_range(_PLACEHOLDER), lambda s, e, n: [0, s, n + 10, 5]),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-past-end",
    ),
    pytest.param(
        _on_malicious(_range(_PLACEHOLDER), lambda s, e, n: [0, s, e, -(n - e)]),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-negative",
    ),
    pytest.param(
        _on_malicious(_range(_PLACEHOLDER), lambda s, e, n: [0, 10**20, 0, 5]),
        ("HASH_FAILURE", "partial", "not-permitted"),
        id="byte-range-huge",
    ),
    pytest.param(
        _on_malicious(_range(_numbers(0, 0, 0)), None),
        ("FORMAT_FAILURE", "partial", "not-permitted"),
        id="byte-range-odd-length",
    ),
    pytest.param(
        _on_malicious(_range(generic.ArrayObject(pdf_name(n) for n in ("/a", "/b", "/c", "/d"))), None),
        None,
        id="byte-range-names",
    ),
    pytest.param(
        _on_malicious(_range(generic.ArrayObject([generic.FloatObject(0.5)] * 4)), None),
        None,
        id="byte-range-reals",
    ),
    pytest.param(
        _on_malicious(_range(lambda writer: writer.add_object(_numbers(0, 0, 0, 0))), None),
        None,
        id="byte-range-indirect",
    ),
    # /SubFilter, /Cert
    pytest.param(_on_malicious(_x509_rsa_sha1(lambda m: b"not a certificate")), NO_SIGNATURES, id="cert-nonsense"),
    pytest.param(
        _on_malicious(_x509_rsa_sha1(lambda m: m.certificate)), NO_SIGNATURES, id="cert-real-signature-nonsense"
    ),
    pytest.param(
        _on_malicious(
            lambda m: {**_contents(lambda m: generic.ByteStringObject(m.cms))(m), "/SubFilter": pdf_name("/X")}
        ),
        NO_SIGNATURES,
        id="subfilter-nonsense",
    ),
]


def _material(bench: Bench) -> Material:
    signed = bench.sign(blank_pdf())
    stamper = LocalTimeStamper(bench.services.timestamps.answer)
    token = asyncio.run(stamper.async_timestamp(secrets.token_bytes(32), "sha256"))  # type: ignore[no-untyped-call]
    return Material(
        signed=signed,
        cms=signature_contents(signed)[0],
        certificate=bench.credential.certificate_der,
        timestamp_token=bytes(token.dump()),
    )


@pytest.mark.parametrize(("forge", "expected"), USF_CASES)
def test_usf(forge: Callable[[Material], bytes], expected: Any, bench: Bench) -> None:
    """USF: a signature dictionary written by a forger who cannot sign, on a document with the
    attacker's content: /Contents missing, empty, zeroed, null, of the wrong type, garbage,
    another document's CMS or a CMS without certificates; /ByteRange missing, null, empty, zero,
    outside or past the file, negative, huge, of odd length or not numbers; an unsupported
    /SubFilter, with /Cert. None may pass: each is refused as unreadable (InvalidInputError), is
    not taken for a signature (no-signatures), or is reported not passed with the signal given
    (sub-indication, coverage, modifications after signing). Expected ``None``: any of those
    (any refusal)."""
    forged = forge(_material(bench))
    if expected == UNREADABLE:
        with pytest.raises(InvalidInputError, match="not a readable PDF"):
            bench.validate(forged)
        return
    try:
        result = bench.validate(forged)
    except InvalidInputError:
        assert expected is None
        return
    conclusion = conclude(result.signatures, result.timestamps)
    assert conclusion is not Conclusion.VALID
    if expected == NO_SIGNATURES:
        assert (result.signatures, conclusion) == ([], Conclusion.NO_SIGNATURES)
        return
    report = result.signatures[0]
    assert report.indication is not Indication.TOTAL_PASSED
    if expected is not None:
        assert (report.indication, report.sub_indication, report.coverage, report.modifications_after_signing) == (
            Indication.TOTAL_FAILED,
            *expected,
        ), report.messages


@pytest.mark.parametrize(
    ("forge", "expected"),
    [
        pytest.param(_document_timestamp(lambda m: m.timestamp_token), "SIG_CONSTRAINTS_FAILURE", id="over-other-data"),
        pytest.param(_document_timestamp(lambda m: bytes(range(256))), UNREADABLE, id="garbage"),
        pytest.param(
            _document_timestamp(lambda m: m.cms),
            None,
            id="not-a-timestamp",
        ),
    ],
)
def test_usf_document_timestamp(forge: Callable[[Material], bytes], expected: str | None, bench: Bench) -> None:
    """USF against document time-stamps: after a valid govsign signature, a /DocTimeStamp field
    is added (what a PAdES-LTA update looks like) whose /Contents is a genuine time-stamp token of
    govsign's TSA over other data, garbage, or a signature CMS that is no time-stamp. The forged
    time-stamp must not pass, nor make the document valid."""
    forged = forge(_material(bench))
    if expected == UNREADABLE:
        with pytest.raises(InvalidInputError, match="not a readable PDF"):
            bench.validate(forged)
        return
    result = bench.validate(forged)
    assert conclude(result.signatures, result.timestamps) is not Conclusion.VALID
    assert [t.indication for t in result.timestamps] == [Indication.TOTAL_FAILED]
    if expected is not None:
        report = result.signatures[0]
        assert (report.indication, report.sub_indication) == (Indication.INDETERMINATE, expected), report.messages


# -- shadow attacks: hide -------------------------------------------------------------------------


def _override_before_signing(pdf: bytes, number: int, data: bytes) -> bytes:
    """The attacker's own incremental update of the shadow document, before it is signed, that
    redefines stream ``number``: the earlier definition stays in the file, unused."""
    return _updated(pdf, number, _set_data(data))


def _caught_after_signing(bench: Bench, attacked: bytes) -> SignatureReport:
    """Caught by the difference analysis: a change after signing that the signature does not permit."""
    return assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="entire-revision")


def test_shadow_hide_overlay_removed(bench: Bench) -> None:
    """Shadow hide: the signed page draws the malicious text, then a white box with the benign
    text over it; after signing, an update drops the overlay stream from the page's /Contents."""
    shadow = _shadow(MALICIOUS, COVER)
    signed = bench.sign_valid(shadow.pdf)
    n = shadow.numbers
    attacked = _updated(
        signed,
        n["page"],
        lambda w, page: page.__setitem__(
            "/Contents", generic.ArrayObject([generic.IndirectObject(n["stream0"], 0, w)])
        ),
    )
    assert _visible(attacked) == MALICIOUS
    _caught_after_signing(bench, attacked)


def test_shadow_hide_overlay_freed(bench: Bench) -> None:
    """Shadow hide (xref only): as above, but the update adds no object at all, only an xref
    section marking the overlay stream free, so that it resolves to null."""
    shadow = _shadow(MALICIOUS, COVER)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _append(signed, free=[shadow.numbers["stream1"]])
    assert _visible(attacked) == MALICIOUS
    report = _caught_after_signing(bench, attacked)
    assert any("freed" in change for change in report.modifications)


def test_shadow_hide_overlay_repointed(bench: Bench) -> None:
    """Shadow hide (xref only): the shadow document defines the overlay stream twice, first empty
    and then, in the attacker's own update before signing, as the covering box; after signing an
    xref section alone points the overlay's number back at the empty definition."""
    first = _shadow(MALICIOUS, b"")
    number = first.numbers["stream1"]
    signed = bench.sign_valid(_override_before_signing(first.pdf, number, COVER))
    assert COVER in _visible(signed)
    attacked = _append(signed, repoint={number: _definitions(signed)[number][0]})
    assert COVER not in _visible(attacked) and MALICIOUS in _visible(attacked)
    _caught_after_signing(bench, attacked)


def test_shadow_hide_annotation_removed(bench: Bench) -> None:
    """Shadow hide: an annotation whose appearance covers the malicious text is on the signed
    page; after signing an update removes it from the page's /Annots."""
    shadow = _shadow(MALICIOUS, annotation=COVER)
    signed = bench.sign_valid(shadow.pdf)
    n = shadow.numbers

    def remove(_writer: IncrementalPdfFileWriter, page: generic.DictionaryObject) -> None:
        page["/Annots"] = generic.ArrayObject(a for a in page.raw_get("/Annots") if a.idnum != n["annotation"])

    attacked = _updated(signed, n["page"], remove)
    assert _visible(attacked) == MALICIOUS
    _caught_after_signing(bench, attacked)


def test_shadow_hide_annotation_flagged_hidden(bench: Bench) -> None:
    """Shadow hide: as above, but the update only sets the covering annotation's Hidden flag."""
    shadow = _shadow(MALICIOUS, annotation=COVER)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _updated(
        signed, shadow.numbers["annotation"], lambda _w, annot: annot.__setitem__("/F", generic.NumberObject(2))
    )
    assert _visible(attacked) == MALICIOUS
    _caught_after_signing(bench, attacked)


def test_shadow_hide_annotation_added(bench: Bench) -> None:
    """Shadow hide (the other way round): after signing, an update adds an annotation whose
    appearance covers the benign text with a white box and the malicious text."""
    shadow = _shadow(BENIGN)
    signed = bench.sign_valid(shadow.pdf)
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    font = generic.IndirectObject(shadow.numbers["font"], 0, writer)
    appearance = writer.add_object(_form_xobject(b"q 1 g 0 0 480 60 re f Q " + MALICIOUS, font))
    writer.register_annotation(  # type: ignore[no-untyped-call]
        generic.IndirectObject(shadow.numbers["page"], 0, writer), writer.add_object(_annotation(font, appearance))
    )
    attacked = _write(writer)
    assert MALICIOUS in _visible(attacked)
    _caught_after_signing(bench, attacked)


# -- shadow attacks: replace ----------------------------------------------------------------------


def _refill(value: str | None) -> Callable[[bytes, Shadow], bytes]:
    """After signing: the text field gets a new appearance showing MALICIOUS (a new stream in
    /AP /N), and with ``value`` a new /V."""

    def attack(signed: bytes, shadow: Shadow) -> bytes:
        writer = IncrementalPdfFileWriter(BytesIO(signed))
        field_ref = generic.IndirectObject(shadow.numbers["field"], 0, writer)
        field = field_ref.get_object()
        if value is not None:
            field["/V"] = generic.TextStringObject(value)
        font = generic.IndirectObject(shadow.numbers["font"], 0, writer)
        field["/AP"] = generic.DictionaryObject({pdf_name("/N"): writer.add_object(_form_xobject(MALICIOUS, font))})
        writer.mark_update(field_ref)
        return _write(writer)

    return attack


def test_shadow_replace_font(bench: Bench) -> None:
    """Shadow replace (replace via overwrite): after signing, an update redefines the page's font
    with an /Encoding whose /Differences draw the glyph "nine" for the code of "1": the signed
    "Pay 100 EUR" now reads "Pay 900 EUR"."""
    shadow = _shadow(BENIGN)
    signed = bench.sign_valid(shadow.pdf)

    def change(_writer: IncrementalPdfFileWriter, font: generic.DictionaryObject) -> None:
        font["/Encoding"] = generic.DictionaryObject(
            {pdf_name("/Type"): pdf_name("/Encoding"), pdf_name("/Differences"): _differences()}
        )

    attacked = _updated(signed, shadow.numbers["font"], change)
    font = _page_ref(attacked).get_object()["/Resources"]["/Font"]["/F1"]
    assert font["/Encoding"]["/Differences"] == _differences()
    _caught_after_signing(bench, attacked)


def _shows(attacked: bytes, text: bytes) -> None:
    """The attack was built (not an assertion, so that an xfail on the verdict cannot hide a broken attack)."""
    if text not in _visible(attacked):
        raise RuntimeError("the attacked document does not show the attacker's content")


def _differences() -> generic.ArrayObject:
    return generic.ArrayObject([generic.NumberObject(ord("1")), pdf_name("/nine")])


def test_shadow_replace_form_field_value(bench: Bench) -> None:
    """Shadow replace (replace via overlay): the signed page has a text field over the text line,
    filled in ("100 EUR") with an appearance showing the benign text; after signing, an update
    gives it a new value and an appearance showing the malicious text. The field was already
    filled when signed: this is not filling in a form but changing what the signer saw."""
    shadow = _shadow(b"", text_field=BENIGN)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _refill("100000 EUR")(signed, shadow)
    _shows(attacked, MALICIOUS)
    _caught_after_signing(bench, attacked)


def test_shadow_replace_form_field_appearance(bench: Bench) -> None:
    """Shadow replace (replace via overlay): as above, but the field's value stays "100 EUR"; only
    its appearance is replaced by a new stream showing the malicious text."""
    shadow = _shadow(b"", text_field=BENIGN)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _refill(None)(signed, shadow)
    _shows(attacked, MALICIOUS)
    _caught_after_signing(bench, attacked)


def test_shadow_replace_form_field_appearance_stream(bench: Bench) -> None:
    """Shadow replace (replace via overwrite): the field's signed appearance stream object itself
    is redefined by the update to draw the malicious text; neither /V nor /AP changes."""
    shadow = _shadow(b"", text_field=BENIGN)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _updated(signed, shadow.numbers["field_appearance"], _set_data(MALICIOUS))
    _shows(attacked, MALICIOUS)
    _caught_after_signing(bench, attacked)


def test_shadow_replace_read_only_form_field(bench: Bench) -> None:
    """Shadow replace: as the value replacement above, on a field flagged read-only (/Ff 1), which
    no one may fill in."""
    shadow = _shadow(b"", text_field=BENIGN, read_only=True)
    signed = bench.sign_valid(shadow.pdf)
    attacked = _refill("100000 EUR")(signed, shadow)
    _shows(attacked, MALICIOUS)
    _caught_after_signing(bench, attacked)


# -- shadow attacks: hide-and-replace -------------------------------------------------------------


def test_shadow_hide_and_replace_xref_to_hidden_object(bench: Bench) -> None:
    """Shadow hide-and-replace as published: the signed document carries an unreferenced content
    stream with the malicious text; after signing, an update of an xref section and trailer only
    points the page's content stream number at the offset of that hidden object. (The header
    there names another object: pyHanko refuses to read it, viewers that ignore headers show it.)"""
    shadow = _shadow(BENIGN, hidden={"evil": MALICIOUS})
    signed = bench.sign_valid(shadow.pdf)
    attacked = _append(signed, repoint={shadow.numbers["stream0"]: _definitions(signed)[shadow.numbers["evil"]][0]})
    assert attacked.startswith(signed)
    report = assert_caught(bench.validate(attacked), sub_indication="FORMAT_FAILURE", coverage="partial")
    assert any(m.code == "signature.format" for m in report.messages)


def test_shadow_hide_and_replace_xref_to_earlier_definition(bench: Bench) -> None:
    """Shadow hide-and-replace (xref only, with consistent object headers): the shadow document
    defines the page's content stream with the malicious text, then redefines it with the benign
    text in the attacker's update before signing; after signing, an xref section alone points the
    number back at the malicious definition."""
    first = _shadow(MALICIOUS)
    number = first.numbers["stream0"]
    signed = bench.sign_valid(_override_before_signing(first.pdf, number, BENIGN))
    assert _visible(signed) == BENIGN
    attacked = _append(signed, repoint={number: _definitions(signed)[number][0]})
    assert _visible(attacked) == MALICIOUS
    _caught_after_signing(bench, attacked)


def test_shadow_hide_and_replace_catalog_swapped(bench: Bench) -> None:
    """Shadow hide-and-replace of the whole document: the shadow document carries a second,
    unreferenced catalog with its own page tree showing the malicious text, sharing the real
    catalog's AcroForm (so the signature field is still found); after signing, an update of an
    xref section (with a no-op entry) and a trailer whose /Root names the hidden catalog."""
    shadow = _shadow(BENIGN, hidden_catalog=True)
    signed = bench.sign_valid(shadow.pdf)
    catalog = shadow.numbers["catalog"]
    attacked = _append(signed, root=b"%d 0 R" % catalog, repoint={catalog: _definitions(signed)[catalog][-1]})
    assert _visible(attacked) == MALICIOUS
    report = _caught_after_signing(bench, attacked)
    assert any("/Pages" in change for change in report.modifications)


def test_filling_in_a_field_that_was_empty_when_signed_is_permitted(bench: Bench) -> None:
    """Not an attack: the control. A text field that was empty (no value, an empty appearance)
    when the document was signed is filled in afterwards, which ISO 32000 permits after an
    approval signature: the signature stays valid and the change is reported as permitted."""
    form = _shadow(BENIGN, text_field=b"", value=None)
    signed = bench.sign_valid(form.pdf)
    filled = _refill("100 EUR")(signed, form)
    result = bench.validate(filled)
    report = result.signatures[0]
    assert (report.indication, report.modifications_after_signing) == (Indication.TOTAL_PASSED, "permitted"), (
        report.messages
    )
    assert conclude(result.signatures, result.timestamps) is Conclusion.VALID
