"""Where a visible signature goes on the page: the page's own text, its margins, other signatures.

Decree 30/2020/ND-CP, Appendix I places each visible signature relative to what the document
already shows: the person's signature image between the signer's title line (e.g. "PHÓ CHỦ
TỊCH") and name line; the agency's seal over the left third of that image; the attachment and
copy stamps in the top right corner of the first page. This module finds those places:

* :func:`page_text` reads the text layer of one page (pdfminer.six, which decodes simple and
  Type0/CID fonts through their ToUnicode maps) into :class:`TextLine` runs whose glyph boxes are
  computed as poppler's ``pdftotext -bbox`` computes them (the font descriptor's ascent and
  descent, and poppler's defaults 0.95 / -0.35 em when a producer writes zeros, as LibreOffice
  does), so a caller can check a placement against that tool;
* :func:`find_line` finds a text as a whole run of a line (Unicode NFC, diacritics and case
  exact, blanks collapsed): a text that is not on the page is an :class:`InvalidInputError`, never
  a guess;
* :func:`signature_block_centre` is the point between a title line and the name line below it;
* :func:`top_right_block` is the top-right corner of a page for a block of text, inside the page
  by at least 5 mm and above the page's own content where there is room;
* :func:`signature_widgets` lists the visible signatures a document already has, with the box of
  the image a govsign stamp drew in each (see :data:`STAMP_MARKER`).

Everything here reads; nothing changes the document. Coordinates are PDF user space in points
(origin at the lower left of the page's coordinate system), boxes are ``(x1, y1, x2, y2)``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.rw_common import PdfHandler
from pyhanko.sign import fields

from govsign.errors import InvalidInputError

__all__ = [
    "MIN_EDGE_INSET",
    "MM",
    "STAMP_MARKER",
    "Box",
    "GlyphBox",
    "PageText",
    "SignatureWidget",
    "TextLine",
    "find_line",
    "page_box",
    "page_count",
    "page_text",
    "resolve_page_index",
    "signature_block_centre",
    "signature_widgets",
    "top_right_block",
]

Box = tuple[float, float, float, float]
"""A rectangle ``(x1, y1, x2, y2)`` in PDF points: lower-left corner, then upper-right."""

#: One millimetre in PDF points.
MM = 72.0 / 25.4
#: The least distance between a stamp placed by an anchor and the edges of the page (5 mm).
MIN_EDGE_INSET = 5 * MM
#: Where text stamps end on the right when the page has no text to align with: 15 mm, the least
#: right margin of Decree 30/2020 (Appendix I, I.5: 15-20 mm).
DEFAULT_RIGHT_MARGIN = 15 * MM
#: Name of the entry a govsign stamp writes into its appearance stream's dictionary:
#: ``<< /Profile /person /Image [x1 y1 x2 y2] >>`` (the image's box in the stream's own
#: coordinates), so that a later seal finds the person signature and the image it overlaps.
STAMP_MARKER = "/GovsignStamp"
#: Space kept between a text stamp and the page content below it, in points.
_CONTENT_GAP = 4.0
#: poppler's ascent and descent for a font whose descriptor gives none (GfxFont.cc).
_DEFAULT_ASCENT, _DEFAULT_DESCENT = 0.95, -0.35
#: Glyphs of one run are at most this many ems apart (a word space is about 0.25 em); wider gaps
#: (tab stops, table columns) start a new run.
_RUN_GAP_EM = 1.0
#: Baselines closer than this fraction of the font size belong to the same line.
_BASELINE_TOLERANCE = 0.2
#: Pages read at most when a text is searched in the whole document (from the last page back).
MAX_PAGES_SEARCHED = 200


@dataclass(frozen=True, kw_only=True)
class GlyphBox:
    """One glyph of the text layer."""

    text: str
    """The text it stands for (through the font's ToUnicode map), NFC."""
    box: Box
    """Its advance width by the font's ascent and descent, as ``pdftotext -bbox`` boxes glyphs."""
    word_start: bool
    """Whether a word begins with it (the first glyph of a run, or one after a blank or a gap)."""


@dataclass(frozen=True, kw_only=True)
class TextLine:
    """A run of glyphs on one baseline, as the page's text layer shows it."""

    text: str
    """The run's text, NFC, with runs of blanks collapsed to one space."""
    box: Box
    """Union of the glyph boxes (advance width by ascent-descent, as ``pdftotext -bbox``)."""
    glyphs: tuple[GlyphBox, ...]
    """The run's glyphs in reading order, blanks omitted."""

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of :attr:`box`."""
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2, (y1 + y2) / 2


@dataclass(frozen=True, kw_only=True)
class PageText:
    """What one page shows, as far as placement needs it."""

    index: int
    """0-based page index."""
    lines: tuple[TextLine, ...]
    """The text runs, in content-stream order."""
    images: tuple[Box, ...]
    """Boxes of the images drawn on the page."""


@dataclass(frozen=True, kw_only=True)
class SignatureWidget:
    """A visible signature field of the document."""

    field_name: str
    """Fully qualified field name."""
    page: int
    """0-based index of the page the widget is on."""
    rect: Box
    """The widget's /Rect, normalised."""
    signed: bool
    """Whether the field holds a signature."""
    signed_until: int
    """End of the signature's byte range (later signatures cover more); 0 when not signed."""
    profile: str | None
    """The govsign stamp profile drawn in it (``person``, ``seal``...), None for other software's."""
    image_box: Box | None
    """The page box of the image a govsign person or seal stamp drew, None when not known."""


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def page_count(handler: PdfHandler) -> int:
    """Number of pages of the document."""
    count = handler.root["/Pages"]["/Count"]
    return int(count)


def resolve_page_index(page: int, count: int) -> int:
    """The 0-based index of ``page`` (negative counts from the end) in a document of ``count`` pages."""
    if isinstance(page, bool) or not isinstance(page, int):
        raise InvalidInputError("The stamp page must be an integer page index.")
    index = page + count if page < 0 else page
    if not 0 <= index < count:
        raise InvalidInputError(f"The stamp is placed on page {page}, but the document has {count} page(s).")
    return index


def _page_object(handler: PdfHandler, index: int) -> tuple[generic.DictionaryObject, generic.Reference]:
    page_ref, _ = handler.find_page_for_modification(index)  # type: ignore[no-untyped-call]
    return page_ref.get_object(), page_ref.reference


def _inherited(page: generic.DictionaryObject, key: str) -> Any:
    node: Any = page
    for _ in range(64):  # the page tree is shallow; a loop would be a damaged file
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        if parent is None:
            return None
        node = parent.get_object()
    return None


def _rect(value: Any) -> Box | None:
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def page_box(handler: PdfHandler, index: int) -> tuple[Box, int]:
    """The visible area of a page (its CropBox within the MediaBox) and its /Rotate (0, 90, 180, 270)."""
    page, _ = _page_object(handler, index)
    media = _rect(_inherited(page, "/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _rect(_inherited(page, "/CropBox")) or media
    visible = (max(media[0], crop[0]), max(media[1], crop[1]), min(media[2], crop[2]), min(media[3], crop[3]))
    if visible[2] <= visible[0] or visible[3] <= visible[1]:
        visible = media
    rotate = _inherited(page, "/Rotate")
    try:
        rotation = int(rotate) % 360 if rotate is not None else 0
    except (TypeError, ValueError):
        rotation = 0
    return visible, rotation


# -- the text layer ------------------------------------------------------------------------------


def _font_metrics(font: Any) -> tuple[float, float]:
    """Ascent and descent in ems as poppler takes them from a font descriptor."""
    descriptor = getattr(font, "descriptor", None) or {}
    from pdfminer.pdftypes import resolve1

    def number(key: str) -> float | None:
        value = resolve1(descriptor.get(key)) if hasattr(descriptor, "get") else None
        return float(value) / 1000 if isinstance(value, int | float) else None

    ascent, descent = _DEFAULT_ASCENT, _DEFAULT_DESCENT
    value = number("Ascent")
    if value is not None and value != 0 and abs(value) < 3:
        ascent = abs(value)
    value = number("Descent")
    if value is not None and value != 0 and abs(value) < 3:
        descent = -abs(value)
    return ascent, descent


@dataclass(frozen=True)
class _Glyph:
    text: str
    x1: float
    x2: float
    baseline: float
    size: float
    ascent: float
    descent: float


def _read_page(stream: BinaryIO, index: int, password: str | None) -> tuple[list[_Glyph], list[Box]]:
    """The upright glyphs and the image boxes of page ``index``, in user space."""
    from pdfminer.converter import PDFLayoutAnalyzer
    from pdfminer.pdfdocument import PDFDocument, PDFPasswordIncorrect
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import PDFException
    from pdfminer.psparser import PSException
    from pdfminer.utils import apply_matrix_pt

    glyphs: list[_Glyph] = []
    images: list[Box] = []

    class Collector(PDFLayoutAnalyzer):
        """Records glyphs and images; draws nothing and analyses no layout."""

        def render_char(self, matrix: Any, font: Any, fontsize: float, scaling: float, rise: float, cid: int,
                        ncs: Any, graphicstate: Any) -> float:  # fmt: skip
            try:
                text = font.to_unichr(cid)
            except Exception:  # noqa: BLE001 - a glyph without Unicode mapping is not text we can match
                text = ""
            width = font.char_width(cid) * fontsize * scaling
            a, b, c, d, _, _ = matrix
            if not font.is_vertical() and b == 0 and c == 0 and a > 0 and d > 0 and isinstance(text, str):
                x, y = apply_matrix_pt(matrix, (0, rise))
                ascent, descent = _font_metrics(font)
                size = fontsize * d
                glyphs.append(_Glyph(text, x, x + width * a, y, size, ascent, descent))
            return float(width)

        def render_image(self, name: str, stream: Any) -> None:
            item = self.cur_item
            images.append((item.x0, item.y0, item.x1, item.y1))

        def paint_path(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        stream.seek(0)
        parser = PDFParser(stream)
        document = PDFDocument(parser, password=password or "")
        page = next((p for i, p in enumerate(PDFPage.create_pages(document)) if i == index), None)
        if page is None:
            raise InvalidInputError(f"The document's text layer has no page {index}.")
        page.rotate = 0  # user space, not the turned view: placement draws in user space
        manager = PDFResourceManager(caching=True)
        device = Collector(manager)
        PDFPageInterpreter(manager, device).process_page(page)
    except PDFPasswordIncorrect:
        raise InvalidInputError("The text of the PDF file cannot be read without its password.") from None
    except InvalidInputError:
        raise
    except (PDFException, PSException, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise InvalidInputError("The text of the PDF page cannot be read.") from error
    finally:
        stream.seek(0)
    # pdfminer moves the page so that its MediaBox starts at (0, 0); give user space back
    x0, y0 = float(page.mediabox[0]), float(page.mediabox[1])
    if x0 or y0:
        glyphs = [_Glyph(g.text, g.x1 + x0, g.x2 + x0, g.baseline + y0, g.size, g.ascent, g.descent) for g in glyphs]
        images = [(a + x0, b + y0, c + x0, d + y0) for a, b, c, d in images]
    return glyphs, images


def _runs(glyphs: Sequence[_Glyph]) -> Iterator[list[_Glyph]]:
    """Glyphs grouped into runs: the same baseline and no gap wider than about a tab."""
    run: list[_Glyph] = []
    for glyph in glyphs:
        if run:
            last = run[-1]
            same_line = abs(glyph.baseline - last.baseline) <= _BASELINE_TOLERANCE * max(last.size, glyph.size)
            gap = glyph.x1 - last.x2
            if not same_line or gap > _RUN_GAP_EM * max(last.size, glyph.size) or gap < -0.5 * last.size:
                yield run
                run = []
        run.append(glyph)
    if run:
        yield run


def _line(run: Sequence[_Glyph]) -> TextLine | None:
    pieces: list[str] = []
    glyphs: list[GlyphBox] = []
    previous: _Glyph | None = None
    word_start = True
    for glyph in run:
        if previous is not None and glyph.x1 - previous.x2 > 0.15 * glyph.size:
            word_start = True  # a word gap made by positioning, not by a space glyph
            pieces.append(" ")
        previous = glyph
        if not glyph.text.strip():
            word_start = True
            pieces.append(" ")
            continue
        box = (glyph.x1, glyph.baseline + glyph.descent * glyph.size, glyph.x2,
               glyph.baseline + glyph.ascent * glyph.size)  # fmt: skip
        pieces.append(glyph.text)
        glyphs.append(GlyphBox(text=unicodedata.normalize("NFC", glyph.text), box=box, word_start=word_start))
        word_start = False
    if not glyphs:
        return None
    return TextLine(text=_normalise("".join(pieces)), box=_union([g.box for g in glyphs]), glyphs=tuple(glyphs))


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def page_text(stream: BinaryIO, index: int, *, password: str | None = None) -> PageText:
    """The text runs and image boxes of page ``index`` of the PDF in ``stream`` (read, then rewound).

    ``password`` opens an encrypted document (its user or owner password; None: the empty one).
    """
    glyphs, images = _read_page(stream, index, password)
    lines = tuple(line for run in _runs(glyphs) if (line := _line(run)) is not None)
    return PageText(index=index, lines=lines, images=tuple(images))


def find_line(page: PageText, text: str) -> list[TextLine]:
    """The runs of the page that show exactly ``text``: Unicode-equivalent (NFC), case and
    diacritics exact, blanks ignored, beginning and ending at word boundaries (so "CHỦ TỊCH" is
    found in "KT. CHỦ TỊCH" but "An" is not in "Ấn" nor in "Anh"). Each match comes back as a
    line of its own glyphs only, with their box."""
    wanted = _normalise(text)
    if not wanted:
        raise InvalidInputError("The text to place the stamp by is empty.")
    # canonical decomposition: equal for NFC-equal texts, whichever way a producer mapped the glyphs
    target = unicodedata.normalize("NFD", wanted.replace(" ", ""))
    found: list[TextLine] = []
    for line in page.lines:
        letters: list[str] = []
        owners: list[int] = []
        boundaries: set[int] = set()
        for number, glyph in enumerate(line.glyphs):
            if glyph.word_start:
                boundaries.add(len(letters))
            decomposed = unicodedata.normalize("NFD", glyph.text)
            letters.extend(decomposed)
            owners.extend([number] * len(decomposed))
        boundaries.add(len(letters))
        joined = "".join(letters)
        start = joined.find(target)
        while start >= 0:
            end = start + len(target)
            # a match must cover whole glyphs and whole words
            if start in boundaries and end in boundaries:
                chosen = line.glyphs[owners[start] : owners[end - 1] + 1]
                box = _union([g.box for g in chosen])
                found.append(TextLine(text=wanted, box=box, glyphs=tuple(chosen)))
            start = joined.find(target, start + 1)
    return found


def signature_block_centre(
    stream: BinaryIO,
    handler: PdfHandler,
    *,
    title_text: str,
    name_text: str,
    page: int | None = None,
    password: str | None = None,
) -> tuple[int, tuple[float, float], TextLine, TextLine]:
    """Where the person's signature image goes: the page, and the point horizontally on the centre
    of the name line and vertically halfway between the centres of the title line and the name
    line (the nearest name line below a title line, overlapping it horizontally); with the two
    lines found. Without ``page`` the pages are searched from the last one back."""
    count = page_count(handler)
    if page is not None:
        candidates = [resolve_page_index(page, count)]
    else:
        candidates = list(range(count - 1, max(-1, count - 1 - MAX_PAGES_SEARCHED), -1))
    seen_title = seen_name = False
    for index in candidates:
        if page_box(handler, index)[1]:
            if page is not None or len(candidates) == 1:
                raise InvalidInputError(
                    "The stamp cannot be placed by the page's text on a page turned by /Rotate; "
                    "give the page and box instead."
                )
            continue
        text = page_text(stream, index, password=password)
        titles, names = find_line(text, title_text), find_line(text, name_text)
        seen_title, seen_name = seen_title or bool(titles), seen_name or bool(names)
        pairs = [
            (title.box[1] - name.box[3], title, name)
            for title in titles
            for name in names
            if name.centre[1] < title.box[1] and _overlap(title.box, name.box)
        ]
        if pairs:
            _, title, name = min(pairs, key=lambda pair: pair[0])
            centre = (name.centre[0], (title.centre[1] + name.centre[1]) / 2)
            return index, centre, title, name
    where = f"on page {candidates[0]}" if page is not None else "in the document"
    if not seen_title and not seen_name:
        raise InvalidInputError(f"Neither the title {title_text!r} nor the name {name_text!r} is found {where}.")
    if not seen_title:
        raise InvalidInputError(f"The title {title_text!r} is not found {where}.")
    if not seen_name:
        raise InvalidInputError(f"The name {name_text!r} is not found {where}.")
    raise InvalidInputError(f"The name {name_text!r} is not found below the title {title_text!r} {where}.")


def _overlap(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0])


def top_right_block(
    stream: BinaryIO,
    handler: PdfHandler,
    size: tuple[float, float],
    *,
    page: int = 0,
    password: str | None = None,
    avoid: Sequence[Box] = (),
) -> tuple[int, Box]:
    """The box of a block of ``size`` (width, height) in the top right corner of a page: at least
    5 mm inside its edges, its right side on the right margin of the page's text (between 5 and
    25 mm from the edge; 15 mm on a page without text), and its top 5 mm below the top of the
    page, which puts it in the top margin above the page's own text and images where there is
    room (a page whose content reaches higher gets it at 5 mm all the same). Boxes in ``avoid``
    (stamps already there, such as an earlier copy's) push it down below them."""
    count = page_count(handler)
    index = resolve_page_index(page, count)
    (px1, py1, px2, py2), rotation = page_box(handler, index)
    if rotation:
        raise InvalidInputError(
            "The stamp cannot be placed by anchor on a page turned by /Rotate; give the page and box instead."
        )
    width, height = size
    if width + 2 * MIN_EDGE_INSET > px2 - px1 or height + 2 * MIN_EDGE_INSET > py2 - py1:
        raise InvalidInputError("The page is too small for the stamp.")
    content = page_text(stream, index, password=password)
    text_right = max((line.box[2] for line in content.lines), default=None)
    right = px2 - DEFAULT_RIGHT_MARGIN if text_right is None else text_right
    right = min(max(right, px2 - 25 * MM, px1 + MIN_EDGE_INSET + width), px2 - MIN_EDGE_INSET)
    top = py2 - MIN_EDGE_INSET
    moved = True
    while moved:
        moved = False
        for other in avoid:
            block = (right - width, top - height, right, top)
            if _overlap(block, other) and min(block[3], other[3]) > max(block[1], other[1]):
                top, moved = other[1] - 2.0, True
    if top - height < py1 + MIN_EDGE_INSET:
        raise InvalidInputError("The top right of the first page has no room left for the stamp.")
    return index, (right - width, top - height, right, top)


# -- signatures already on the document ----------------------------------------------------------


def _widget(field: generic.DictionaryObject) -> generic.DictionaryObject | None:
    kids = field.get("/Kids")
    if kids is None:
        return field
    try:
        (only,) = kids
    except (TypeError, ValueError):
        return None
    widget = only.get_object()
    return widget if isinstance(widget, generic.DictionaryObject) else None


def _annotation_pages(handler: PdfHandler, count: int) -> dict[generic.Reference, int]:
    """Which page each annotation (by reference) is on, from the pages' /Annots."""
    pages: dict[generic.Reference, int] = {}
    for index in range(count):
        page, _ = _page_object(handler, index)
        annots = page.get("/Annots")
        if annots is None:
            continue
        for annot in annots.get_object():
            if isinstance(annot, generic.IndirectObject):
                pages.setdefault(annot.reference, index)
    return pages


def _marker(widget: generic.DictionaryObject, rect: Box) -> tuple[str | None, Box | None]:
    try:
        appearance = widget["/AP"]["/N"].get_object()
        marker = appearance[STAMP_MARKER]
    except (KeyError, TypeError, AttributeError):
        return None, None
    profile = str(marker.get("/Profile", ""))[1:] or None
    bbox = _rect(appearance.get("/BBox")) or (0.0, 0.0, rect[2] - rect[0], rect[3] - rect[1])
    inner = _rect(marker.get("/Image"))
    if inner is None:
        return profile, None
    dx, dy = rect[0] - bbox[0], rect[1] - bbox[1]
    return profile, (inner[0] + dx, inner[1] + dy, inner[2] + dx, inner[3] + dy)


def signature_widgets(handler: PdfHandler) -> list[SignatureWidget]:
    """The visible signature fields of the document (a widget with a non-empty /Rect on a page)."""
    count = page_count(handler)
    found: list[SignatureWidget] = []
    annotation_pages: dict[generic.Reference, int] | None = None
    for name, value, field_ref in fields.enumerate_sig_fields(handler):
        field = field_ref.get_object()
        widget = _widget(field)
        if widget is None:
            continue
        rect = _rect(widget.get("/Rect"))
        if rect is None or rect[2] - rect[0] < 1 or rect[3] - rect[1] < 1:
            continue
        kids = field.get("/Kids")
        widget_ref = kids[0].reference if kids is not None else field_ref.reference
        if annotation_pages is None:
            annotation_pages = _annotation_pages(handler, count)
        page = annotation_pages.get(widget_ref)
        if page is None:
            continue
        signed_until = 0
        if value is not None:
            try:
                byte_range = value.get_object()["/ByteRange"]
                signed_until = int(byte_range[2]) + int(byte_range[3])
            except (KeyError, TypeError, ValueError, IndexError):
                signed_until = 0
        profile, image_box = _marker(widget, rect)
        found.append(
            SignatureWidget(
                field_name=name,
                page=page,
                rect=rect,
                signed=value is not None,
                signed_until=signed_until,
                profile=profile,
                image_box=image_box,
            )
        )
    return found
