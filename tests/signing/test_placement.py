"""Placement by the page's own text: pdfminer.six's reading of the text layer (Type0/CID fonts as
Word and fpdf2 write them, simple TrueType subsets as LibreOffice writes them) against poppler's
``pdftotext -bbox``, exact matching of Vietnamese text, the signature block's centre, and the
top-right anchor."""

from __future__ import annotations

import html
import re
import subprocess
import unicodedata
from io import BytesIO
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from govsign.errors import InvalidInputError
from govsign.signing.placement import (
    MIN_EDGE_INSET,
    Box,
    find_line,
    page_text,
    signature_block_centre,
    top_right_block,
)
from helpers.pdf import require_tool
from signing.decree30_pages import NAME, NUMBER, decision_pdf, libreoffice_decision_pdf

DOCUMENTS = {"fpdf2-type0": decision_pdf, "libreoffice-truetype": libreoffice_decision_pdf}
LINES = ("PHÓ CHỦ TỊCH", "KT. CHỦ TỊCH", NAME, f"Số: {NUMBER}", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Nơi nhận:")


def pdftotext_words(pdf: bytes, tmp_path: Path) -> list[tuple[Box, str]]:
    """``pdftotext -bbox`` words of page 1, boxes turned into PDF user space (origin lower left)."""
    path = tmp_path / "words.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(
        [require_tool("pdftotext"), "-bbox", "-f", "1", "-l", "1", str(path), "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    match = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', out)
    assert match is not None
    height = float(match.group(2))
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out)
    return [
        ((float(x1), height - float(y2), float(x2), height - float(y1)), html.unescape(text))
        for x1, y1, x2, y2, text in words
    ]


def line_box(words: list[tuple[Box, str]], text: str) -> Box:
    """The union of the consecutive words that spell ``text`` (on one baseline)."""
    wanted = text.split()
    for start in range(len(words) - len(wanted) + 1):
        chosen = words[start : start + len(wanted)]
        if [w for _, w in chosen] == wanted and len({round(b[1], 1) for b, _ in chosen}) == 1:
            boxes = [b for b, _ in chosen]
            return (min(b[0] for b in boxes), min(b[1] for b in boxes),
                    max(b[2] for b in boxes), max(b[3] for b in boxes))  # fmt: skip
    raise AssertionError(f"{text!r} not in pdftotext's words")


@pytest.mark.parametrize("producer", DOCUMENTS)
def test_glyph_boxes_match_pdftotext_within_a_point(producer: str, tmp_path: Path) -> None:
    pdf = DOCUMENTS[producer]()
    text = page_text(BytesIO(pdf), 0)
    words = pdftotext_words(pdf, tmp_path)
    for wanted in LINES:
        (found,) = find_line(text, wanted)
        expected = line_box(words, wanted)
        assert all(abs(a - b) <= 1.0 for a, b in zip(found.box, expected, strict=True)), (wanted, found.box, expected)
    # every line of the page reads as poppler reads it (NFC, Vietnamese diacritics intact)
    poppler = " ".join(w for _, w in words)
    ours = " ".join(line.text for line in text.lines)
    assert unicodedata.normalize("NFC", poppler).split() == ours.split()


def test_text_is_matched_exactly_and_whole_words_only() -> None:
    text = page_text(BytesIO(decision_pdf()), 0)
    assert len(find_line(text, unicodedata.normalize("NFD", "PHÓ  CHỦ TỊCH"))) == 1  # NFD input, blanks
    assert len(find_line(text, "CHỦ TỊCH")) == 3  # in "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "CHỦ TỊCH ỦY BAN..."
    for absent in ("PHO CHU TICH", "Phó Chủ Tịch", "Nguyễn Văn A", "guyễn Văn An", "Nguyên Văn An"):
        assert find_line(text, absent) == [], absent
    with pytest.raises(InvalidInputError, match="empty"):
        find_line(text, "  ")


@pytest.mark.parametrize("producer", DOCUMENTS)
def test_signature_block_centre_is_between_title_and_name(producer: str, tmp_path: Path) -> None:
    pdf = DOCUMENTS[producer]()
    words = pdftotext_words(pdf, tmp_path)
    title, name = line_box(words, "PHÓ CHỦ TỊCH"), line_box(words, NAME)
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page, (x, y), _, _ = signature_block_centre(writer.prev.stream, writer, title_text="PHÓ CHỦ TỊCH", name_text=NAME)
    assert page == 0
    assert abs(x - (name[0] + name[2]) / 2) <= 1.0
    assert abs(y - ((title[1] + title[3]) / 2 + (name[1] + name[3]) / 2) / 2) <= 1.0


def test_text_that_is_not_there_is_an_error_not_a_guess() -> None:
    writer = IncrementalPdfFileWriter(BytesIO(decision_pdf()))
    stream = writer.prev.stream
    cases = [
        ({"title_text": "GIÁM ĐỐC", "name_text": NAME}, "title 'GIÁM ĐỐC' is not found"),
        ({"title_text": "PHÓ CHỦ TỊCH", "name_text": "Trần Thị Bình"}, "name 'Trần Thị Bình' is not found"),
        ({"title_text": "GIÁM ĐỐC", "name_text": "Trần Thị Bình"}, "Neither"),
        ({"title_text": NAME, "name_text": "PHÓ CHỦ TỊCH"}, "not found below the title"),
        ({"title_text": "PHÓ CHỦ TỊCH", "name_text": NAME, "page": 1}, "page 1, but the document has 1"),
    ]
    for arguments, message in cases:
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            signature_block_centre(stream, writer, **arguments)  # type: ignore[arg-type]


def test_top_right_block_is_inside_the_page_and_above_its_text() -> None:
    pdf = decision_pdf()
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page, (x1, y1, x2, y2) = top_right_block(writer.prev.stream, writer, (150.0, 36.0))
    text = page_text(BytesIO(pdf), 0)
    assert page == 0 and (x2 - x1, y2 - y1) == pytest.approx((150.0, 36.0))
    assert x2 <= 595.28 - MIN_EDGE_INSET and y2 <= 841.89 - MIN_EDGE_INSET
    assert x2 == pytest.approx(max(line.box[2] for line in text.lines))  # on the text's right margin
    assert y1 > max(line.box[3] for line in text.lines)  # above the page's own text


def test_anchor_on_a_turned_page_is_refused() -> None:
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    page = PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))  # type: ignore[no-untyped-call]
    page["/Rotate"] = generic.NumberObject(90)  # type: ignore[no-untyped-call]
    writer.insert_page(page)  # type: ignore[no-untyped-call]
    output = BytesIO()
    writer.write(output)  # type: ignore[no-untyped-call]
    incremental = IncrementalPdfFileWriter(BytesIO(output.getvalue()))
    with pytest.raises(InvalidInputError, match="/Rotate"):
        top_right_block(incremental.prev.stream, incremental, (100.0, 30.0))
    with pytest.raises(InvalidInputError, match="/Rotate"):
        signature_block_centre(incremental.prev.stream, incremental, title_text="A", name_text="B")
