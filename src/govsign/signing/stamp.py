"""Visible signatures as Decree 30/2020/ND-CP, Appendix I draws them (Vietnamese state documents).

Four stamp profiles, each one signature's widget:

* ``person`` (item 7(c)/(d), the competent signer): the image of the signer's handwritten
  signature (blue, PNG with a transparent background) at its physical size, centred between the
  signer's title line (e.g. "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH") and name line already printed on the
  page;
* ``seal`` (item 8(a), the agency on the main document): the image of the agency's seal (red,
  PNG with a transparent background) at the seal's physical size, covering about the left third
  of the person's signature image;
* ``attachment`` (item 8(b), the agency on an attachment in a separate file): no image; at the
  top right of the first page, the document's number and symbol (``123/QĐ-UBND``) and the signing
  time (ISO 8601, ``2026-11-25T09:15:30+07:00``) in Times New Roman metrics, upright, 10 pt, black;
* ``copy`` (Part II, an electronic copy): no image; at the top right of the first page, the copy
  form (``SAO Y``, ``SAO LỤC``, ``TRÍCH SAO``), the copying agency's name and the signing time, in
  the same font.

No frame lines are drawn, ever. Person and seal stamps may carry a verification line (a QR code
and a short reference that the verification page resolves) and, on request, a few small
details lines; both sit beside the image and never over it. Text is drawn in an embedded subset
of Liberation Serif (Times metrics, every Vietnamese letter; Debian's fonts-liberation2) with a
ToUnicode map, so that it extracts exactly as it was given (NFC); never a standard-14 font.

This module is a pure core: :class:`VisibleStamp` says what to draw and where;
:func:`build_stamp_appearance` resolves the placement against the document (with
:mod:`govsign.signing.placement`) and returns what pyHanko's ``PdfSigner`` needs to draw it. The
signing time of the signature dictionary (``/M``, ``+07'00'``) is set by
:class:`govsign.signing.signing_time.VietnamTimePdfSigner`.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.sign.fields import SigFieldSpec
from pyhanko.stamp import BaseStamp, BaseStampStyle

from govsign.errors import ConfigurationError, InvalidInputError
from govsign.signing import placement as place
from govsign.signing.placement import MM, Box
from govsign.signing.signing_time import VIETNAM_TZ

if TYPE_CHECKING:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.writer import BasePdfFileWriter

__all__ = [
    "COPY_FORMS",
    "FONT_CANDIDATES",
    "MAX_PAGE_COORDINATE",
    "STAMP_FONT_CANDIDATES",
    "STAMP_PROFILES",
    "TOP_RIGHT_FIRST_PAGE",
    "VIETNAM_TZ",
    "AnchorPlacement",
    "BoxPlacement",
    "CopyForm",
    "Placement",
    "SealOverPersonPlacement",
    "StampAppearance",
    "StampImage",
    "StampProfile",
    "TextPlacement",
    "VerificationLine",
    "VisibleStamp",
    "build_stamp_appearance",
    "check_png",
    "find_font",
    "find_stamp_font",
    "load_font",
]

StampProfile = Literal["person", "seal", "attachment", "copy"]
"""The four visible signatures of Decree 30/2020 Appendix I."""
STAMP_PROFILES: tuple[StampProfile, ...] = ("person", "seal", "attachment", "copy")
CopyForm = Literal["SAO Y", "SAO LỤC", "TRÍCH SAO"]
"""Forms of an electronic copy (Decree 30/2020, Part II): a true copy, a transcript, an extract."""
COPY_FORMS: tuple[CopyForm, ...] = ("SAO Y", "SAO LỤC", "TRÍCH SAO")
#: The named anchor of the text profiles: the top-right corner of the first page.
TOP_RIGHT_FIRST_PAGE: Literal["top-right-first-page"] = "top-right-first-page"

#: Largest page coordinate accepted, in points: ISO 32000 limits pages to 14,400 units (200 in).
MAX_PAGE_COORDINATE = 14_400.0
#: Smallest width and height of an explicit stamp box, in points (about 7 mm).
MIN_BOX_SIDE = 20.0
#: Liberation Serif 2 (Times New Roman metrics, every Vietnamese letter), tried in this order.
STAMP_FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",  # Debian/Ubuntu fonts-liberation2
    "/usr/share/fonts/liberation-serif/LiberationSerif-Regular.ttf",  # Fedora liberation-serif-fonts
    "/usr/share/fonts/liberation/LiberationSerif-Regular.ttf",  # Arch ttf-liberation
    "/usr/share/fonts/TTF/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",  # fonts-liberation 1.x: no Vietnamese
)
#: Sans-serif TrueType fonts with Vietnamese, for the verification report PDFs (:func:`find_font`).
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian/Ubuntu fonts-dejavu-core
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # older Fedora/RHEL, Alpine
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",  # Debian fonts-noto-core
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  # Debian fonts-liberation
)
#: Every letter of Vietnamese: a stamp font must have them all.
VIETNAMESE_LETTERS = "aàảãáạăằẳẵắặâầẩẫấậbcdđeèẻẽéẹêềểễếệghiìỉĩíịklmnoòỏõóọôồổỗốộơờởỡớợpqrstuùủũúụưừửữứựvxyỳỷỹýỵ"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_IMAGE_BYTES = 2 * 1024 * 1024
_MAX_IMAGE_PIXELS = 4096 * 4096
#: Text of the attachment and copy stamps: 10 pt (Appendix I), lines 12 pt apart.
TEXT_SIZE = 10.0
#: Widest line of a text stamp (attachment, copy) placed by anchor, in points (85 mm): a longer
#: copying agency's name wraps at word boundaries, so the stamp stays in the top-right corner
#: instead of running across the page's heading.
TEXT_STAMP_MAX_WIDTH = 85 * MM
_LEADING = 1.2
#: Liberation Serif's ascent and descent (hhea), in ems.
_ASCENT, _DESCENT = 0.891, 0.216
#: Verification line: the QR code's side, its text, the gap to the image.
QR_SIDE = 11 * MM
_SMALL_TEXT = 5.5
_PANEL_GAP = 2 * MM
#: Physical sizes accepted for images (the visible part, its wider side), in millimetres.
_MIN_IMAGE_MM, _MAX_IMAGE_MM = 5.0, 150.0
#: A person's signature image that gives no physical size is fitted into this box (mm).
FALLBACK_SIGNATURE_MM = (35.0, 20.0)
_MAX_TEXT_CHARS = 200
_MAX_REFERENCE_CHARS = 40
_MAX_URL_CHARS = 512
_ALPHA_VISIBLE = 16


# -- what to draw, and where --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StampImage:
    """The image a person or seal stamp shows."""

    png: bytes
    """PNG with a transparent background: the person's handwritten signature (blue) or the
    agency's seal (red). Transparent borders are trimmed; the rest is drawn at its physical size."""
    width_mm: float | None = None
    """Physical width of the visible image in millimetres (for a round seal: its diameter; the
    request's ``seal_diameter_mm``, else the size registered with the image); None: from the
    PNG's resolution (pHYs)."""

    def __post_init__(self) -> None:
        _decode_png(self.png)
        if self.width_mm is not None:
            _check_mm(self.width_mm, "image width")


@dataclass(frozen=True, kw_only=True)
class BoxPlacement:
    """An explicit page and rectangle."""

    page: int = 0
    """Page index, 0-based; negative counts from the end (-1 = last)."""
    box: Box
    """Rectangle (x1, y1, x2, y2) in PDF points: person and seal images are centred in it (shrunk
    only when larger than it); text stamps are aligned to its top right and must fit in it."""

    def __post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int):
            raise InvalidInputError("The stamp page must be an integer page index.")
        _check_box(self.box)


@dataclass(frozen=True, kw_only=True)
class AnchorPlacement:
    """A named place on the document (text profiles only)."""

    anchor: Literal["top-right-first-page"] = TOP_RIGHT_FIRST_PAGE
    """``top-right-first-page``: the top-right corner of page 1, at least 5 mm inside the page
    edges, in the top margin above the page's own text where there is room."""

    def __post_init__(self) -> None:
        if self.anchor != TOP_RIGHT_FIRST_PAGE:
            raise InvalidInputError(f'The only stamp anchor is "{TOP_RIGHT_FIRST_PAGE}".')


@dataclass(frozen=True, kw_only=True)
class TextPlacement:
    """The person's image centred between the title line and the name line of the page's text."""

    title_text: str
    """The signer's title line as printed, e.g. "PHÓ CHỦ TỊCH" (matched NFC, diacritics exact)."""
    name_text: str
    """The signer's name line as printed below it, e.g. "Nguyễn Văn An"."""
    page: int | None = None
    """Page to look on (0-based, negative from the end); None: the last page that has both."""

    def __post_init__(self) -> None:
        for label, value in (("title", self.title_text), ("name", self.name_text)):
            object.__setattr__(self, f"{label}_text", _one_line(value, f"The {label} text"))
        if self.page is not None and (isinstance(self.page, bool) or not isinstance(self.page, int)):
            raise InvalidInputError("The stamp page must be an integer page index.")


@dataclass(frozen=True, kw_only=True)
class SealOverPersonPlacement:
    """The seal over the left third of a person's signature image already on the document."""

    person_field: str | None = None
    """The person signature's field; None: the most recent signature drawn by a govsign person
    stamp (else, for documents signed elsewhere, the most recent visible signature)."""


Placement = BoxPlacement | AnchorPlacement | TextPlacement | SealOverPersonPlacement
"""Where a stamp goes."""


@dataclass(frozen=True, kw_only=True)
class VerificationLine:
    """A QR code and a short reference beside a person or seal image, for the verification page."""

    reference: str
    """The short reference printed under the QR code (printable, at most 40 characters)."""
    url: str | None = None
    """What the QR code holds (an http(s) URL); None: the reference itself."""

    def __post_init__(self) -> None:
        reference = _one_line(self.reference, "The verification reference")
        if len(reference) > _MAX_REFERENCE_CHARS:
            raise InvalidInputError(f"The verification reference is longer than {_MAX_REFERENCE_CHARS} characters.")
        object.__setattr__(self, "reference", reference)
        if self.url is not None and (
            not isinstance(self.url, str)
            or not self.url.startswith(("https://", "http://"))
            or len(self.url) > _MAX_URL_CHARS
            or not self.url.isascii()
            or any(c.isspace() or not c.isprintable() for c in self.url)
        ):
            raise InvalidInputError(
                f"The verification URL must be an http(s) URL of at most {_MAX_URL_CHARS} ASCII characters."
            )


@dataclass(frozen=True, kw_only=True)
class VisibleStamp:
    """One visible signature per Decree 30/2020/ND-CP, Appendix I."""

    profile: StampProfile
    """``person``, ``seal``, ``attachment`` or ``copy`` (see the module documentation)."""
    placement: Placement | None = None
    """Where it goes; None: the profile's default (attachment and copy: the top-right anchor;
    seal: over the person's signature; person: none, it needs a placement)."""
    image: StampImage | None = None
    """person: the handwritten signature; seal: the seal. Required for these two, refused otherwise."""
    document_number: str | None = None
    """attachment: the number and symbol of the document ("số và ký hiệu"), e.g. ``123/QĐ-UBND``."""
    copy_form: CopyForm | None = None
    """copy: ``SAO Y``, ``SAO LỤC`` or ``TRÍCH SAO``."""
    copy_agency: str | None = None
    """copy: the name of the agency making the copy, as it is to be printed."""
    verification: VerificationLine | None = None
    """person and seal: the verification line beside the image; None for none."""
    details: bool = False
    """person and seal: also print the signer (person) or the agency (seal) and the signing time
    in small text beside the image."""

    def __post_init__(self) -> None:
        if self.profile not in STAMP_PROFILES:
            raise InvalidInputError('The stamp profile must be "person", "seal", "attachment" or "copy".')
        imaged = self.profile in ("person", "seal")
        if imaged and self.image is None:
            what = "handwritten-signature" if self.profile == "person" else "seal"
            raise InvalidInputError(
                f"A {self.profile} stamp shows the {what} image, and none is registered for this certificate; "
                "register the image (a PNG with a transparent background) first."
            )
        if not imaged and self.image is not None:
            raise InvalidInputError(f"A {self.profile} stamp shows no image (Decree 30/2020, Appendix I).")
        if not imaged and (self.verification is not None or self.details):
            raise InvalidInputError(f"A {self.profile} stamp shows only its Appendix I text.")
        if self.profile == "attachment":
            if self.document_number is None:
                raise InvalidInputError("An attachment stamp needs the document's number and symbol.")
            object.__setattr__(self, "document_number", _one_line(self.document_number, "The document number"))
        elif self.document_number is not None:
            raise InvalidInputError("Only an attachment stamp shows a document number.")
        if self.profile == "copy":
            form = unicodedata.normalize("NFC", self.copy_form or "").strip()
            if form not in COPY_FORMS:
                raise InvalidInputError('The copy form must be "SAO Y", "SAO LỤC" or "TRÍCH SAO".')
            if self.copy_agency is None:
                raise InvalidInputError("A copy stamp needs the name of the copying agency.")
            object.__setattr__(self, "copy_form", form)
            object.__setattr__(self, "copy_agency", _one_line(self.copy_agency, "The copying agency"))
        elif self.copy_form is not None or self.copy_agency is not None:
            raise InvalidInputError("Only a copy stamp shows a copy form and a copying agency.")
        allowed: dict[str, tuple[type, ...]] = {
            "person": (BoxPlacement, TextPlacement),
            "seal": (BoxPlacement, SealOverPersonPlacement),
            "attachment": (BoxPlacement, AnchorPlacement),
            "copy": (BoxPlacement, AnchorPlacement),
        }
        if self.placement is None:
            if self.profile == "person":
                raise InvalidInputError(
                    "A person stamp is placed by the title and name lines it goes between, or by a page and box."
                )
        elif not isinstance(self.placement, allowed[self.profile]):
            raise InvalidInputError(
                {
                    "person": "A person stamp is placed by the title and name lines, or by a page and box.",
                    "seal": "A seal is placed over the person's signature, or by a page and box.",
                    "attachment": "An attachment stamp is placed at the top right of the first page, or by a page and box.",
                    "copy": "A copy stamp is placed at the top right of the first page, or by a page and box.",
                }[self.profile]
            )


@dataclass(frozen=True, kw_only=True)
class StampAppearance:
    """What pyHanko's ``PdfSigner`` and its ``sign_pdf`` need to draw one :class:`VisibleStamp`."""

    new_field_spec: SigFieldSpec
    """``PdfSigner(new_field_spec=...)``: the new signature field, its page and rectangle."""
    stamp_style: Decree30StampStyle
    """``PdfSigner(stamp_style=...)``: what is drawn in the widget."""
    appearance_text_params: dict[str, str]
    """``PdfSigner.sign_pdf(appearance_text_params=...)``: the values shown (also for logs)."""
    lines: tuple[str, ...]
    """The text lines drawn, top to bottom (NFC)."""
    page: int
    """0-based page of the widget."""
    widget_box: tuple[int, int, int, int]
    """The widget's rectangle on the page (whole points)."""
    image_box: Box | None
    """Where the image is drawn on the page (person, seal), None for the text profiles."""
    text_box: Box | None
    """The glyph box of the text block on the page (attachment, copy), None for the others."""


# -- checks ------------------------------------------------------------------------------------


def _one_line(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be text.")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text or len(text) > _MAX_TEXT_CHARS or any(unicodedata.category(c)[0] == "C" for c in text):
        raise InvalidInputError(f"{what} must be one line of 1 to {_MAX_TEXT_CHARS} printable characters.")
    return text


def _check_mm(value: object, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"The {what} must be a number of millimetres.")
    if not _MIN_IMAGE_MM <= value <= _MAX_IMAGE_MM:
        raise InvalidInputError(f"The {what} must be between {_MIN_IMAGE_MM:g} and {_MAX_IMAGE_MM:g} mm.")


def _check_box(box: object) -> None:
    if not isinstance(box, tuple) or len(box) != 4:
        raise InvalidInputError("The stamp box must be four numbers: x1, y1, x2, y2.")
    for value in box:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError("The stamp box must be four finite numbers: x1, y1, x2, y2.")
        if not 0 <= value <= MAX_PAGE_COORDINATE:
            raise InvalidInputError(f"The stamp box coordinates must lie between 0 and {MAX_PAGE_COORDINATE:g} points.")
    x1, y1, x2, y2 = box
    if x2 - x1 < MIN_BOX_SIDE or y2 - y1 < MIN_BOX_SIDE:
        raise InvalidInputError(
            f"The stamp box must have x1 < x2 and y1 < y2, and be at least {MIN_BOX_SIDE:g} points wide and high."
        )


def _decode_png(data: bytes) -> Any:
    """The image as a Pillow RGBA image, after checking it is a PNG with transparency."""
    if not isinstance(data, bytes | bytearray) or not bytes(data[:8]) == _PNG_SIGNATURE:
        raise InvalidInputError("The stamp image is not a PNG file.")
    if len(data) > _MAX_IMAGE_BYTES:
        raise InvalidInputError(f"The stamp image is larger than {_MAX_IMAGE_BYTES // 1024} KiB.")
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("Stamp images need Pillow: install pyHanko with its image-support extra.") from None
    try:
        with Image.open(BytesIO(bytes(data))) as probe:
            if probe.format != "PNG":
                raise InvalidInputError("The stamp image is not a PNG file.")
            if probe.width * probe.height > _MAX_IMAGE_PIXELS:
                raise InvalidInputError("The stamp image has more than 4096 x 4096 pixels.")
            probe.verify()
        image = Image.open(BytesIO(bytes(data)))
        image.load()
    except InvalidInputError:
        raise
    except Exception:  # noqa: BLE001 - any decoder failure means a broken file
        raise InvalidInputError("The stamp image is a damaged PNG file.") from None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        raise InvalidInputError("The stamp image must be a PNG with a transparent background.")
    rgba = image.convert("RGBA")
    rgba.info = dict(image.info)
    return rgba


def check_png(data: bytes) -> None:
    """InvalidInputError unless data is a PNG with a transparent background that a stamp can show."""
    image = _decode_png(data)
    if _visible_bounds(image) is None:
        raise InvalidInputError("The stamp image is fully transparent.")


def _visible_bounds(image: Any) -> tuple[int, int, int, int] | None:
    alpha = image.getchannel("A").point(lambda a: 255 if a >= _ALPHA_VISIBLE else 0)
    bounds = alpha.getbbox()
    return tuple(bounds) if bounds else None


@dataclass(frozen=True)
class _Picture:
    png: bytes
    """The visible part of the image (transparent borders trimmed), re-encoded."""
    size: tuple[float, float]
    """Its physical size in points."""


def _picture(image: StampImage, profile: str) -> _Picture:
    """The image trimmed to its visible part, with its physical size: its ``width_mm``, else its
    PNG resolution; a person's image with neither is fitted into 35 x 20 mm, a seal without
    either is refused."""
    decoded = _decode_png(image.png)
    bounds = _visible_bounds(decoded)
    if bounds is None:
        raise InvalidInputError("The stamp image is fully transparent.")
    trimmed = decoded.crop(bounds)
    pixels_w, pixels_h = trimmed.size
    if image.width_mm is not None:
        mm_w = float(image.width_mm)
        mm_h = mm_w * pixels_h / pixels_w
    else:
        dpi = decoded.info.get("dpi")
        if isinstance(dpi, tuple) and len(dpi) == 2 and float(dpi[0]) >= 1 and float(dpi[1]) >= 1:
            mm_w, mm_h = pixels_w * 25.4 / float(dpi[0]), pixels_h * 25.4 / float(dpi[1])
            if not _MIN_IMAGE_MM <= max(mm_w, mm_h) <= _MAX_IMAGE_MM:
                raise InvalidInputError(
                    f"The stamp image's resolution makes it {mm_w:.0f} x {mm_h:.0f} mm; register its size in millimetres."
                )
        elif profile == "seal":
            raise InvalidInputError(
                "The seal image does not say its physical size (no PNG resolution); give the seal's diameter "
                "in millimetres, or register the image with it."
            )
        else:
            fit = min(FALLBACK_SIGNATURE_MM[0] / pixels_w, FALLBACK_SIGNATURE_MM[1] / pixels_h)
            mm_w, mm_h = pixels_w * fit, pixels_h * fit
    output = BytesIO()
    trimmed.save(output, format="PNG")
    return _Picture(png=output.getvalue(), size=(mm_w * MM, mm_h * MM))


# -- fonts --------------------------------------------------------------------------------------


def find_font(font_path: str | Path | None = None) -> Path:
    """A sans-serif TrueType font with Vietnamese (the verification reports'): ``font_path`` if
    given, else the first of :data:`FONT_CANDIDATES` present."""
    return _find(font_path, FONT_CANDIDATES, "install fonts-dejavu-core")


def find_stamp_font(font_path: str | Path | None = None) -> Path:
    """The stamps' font: ``font_path`` if given, else the first of :data:`STAMP_FONT_CANDIDATES`
    present that has every Vietnamese letter (Liberation Serif 2)."""
    if font_path is not None:
        return _find(font_path, (), "")
    for candidate in STAMP_FONT_CANDIDATES:
        if Path(candidate).is_file() and not _missing(_load_font(str(Path(candidate).resolve())), VIETNAMESE_LETTERS):
            return Path(candidate)
    raise ConfigurationError(
        "No Times-metric font with Vietnamese letters was found for stamps; install fonts-liberation2 "
        "(fonts-liberation 1.x lacks Vietnamese) or give a TrueType font path."
    )


def _find(font_path: str | Path | None, candidates: Sequence[str], hint: str) -> Path:
    if font_path is not None:
        path = Path(font_path)
        if not path.is_file():
            raise ConfigurationError(f"The stamp font {path} does not exist.")
        return path
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigurationError(f"No font for Vietnamese text was found; {hint} or give a TrueType font path.")


@dataclass(frozen=True)
class _LoadedFont:
    path: str
    """The font file."""
    factory: GlyphAccumulatorFactory
    """Makes pyHanko's font engine for the font file."""
    codepoints: frozenset[int]
    """The characters the font has glyphs for."""
    hb_font: Any
    """A HarfBuzz font at 1000 units per em, to measure text before drawing it."""


@functools.lru_cache(maxsize=8)
def _load_font(path: str) -> _LoadedFont:
    try:
        import uharfbuzz as hb  # type: ignore[import-untyped]
        from fontTools.ttLib import TTFont, TTLibError  # type: ignore[import-untyped]
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("Stamp fonts need fontTools: install pyHanko with its opentype extra.") from None
    try:
        with TTFont(path, lazy=True) as font:
            codepoints = frozenset(font.getBestCmap() or {})
        data = Path(path).read_bytes()
        hb_font = hb.Font(hb.Face(data))
        hb_font.scale = (1000, 1000)
    except (OSError, TTLibError, AssertionError, KeyError, ValueError, TypeError):
        raise ConfigurationError(f"The stamp font {path} is not a readable TrueType/OpenType font.") from None
    factory = _em_normalising_factory(GlyphAccumulatorFactory)(path, font_size=int(TEXT_SIZE))
    return _LoadedFont(path, factory, codepoints, hb_font)


def _missing(font: _LoadedFont, text: str) -> str:
    return "".join(sorted({c for c in text if ord(c) not in font.codepoints and not c.isspace()}))


def _em_normalising_factory(base: type[GlyphAccumulatorFactory]) -> type[GlyphAccumulatorFactory]:
    """pyHanko's factory, fixed for fonts whose units per em are not 1000 (Liberation: 2048).

    pyHanko 0.38 writes glyph widths (/W), TJ adjustments and the font descriptor's metrics
    (/Ascent, /Descent, /CapHeight, /FontBBox) in font units, but PDF wants thousandths of an em:
    with a 2048-unit font every glyph was spaced about twice too wide and text extraction boxes
    were twice too tall. Here HarfBuzz is asked for 1000-unit positions and the widths and the
    descriptor are scaled the same way.
    """

    class _Factory(base):  # type: ignore[misc,valid-type]
        def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: Any = None) -> Any:
            engine = super().create_font_engine(writer, obj_stream)
            units = int(engine.units_per_em)
            if units != 1000:
                raw = engine._get_cid_and_width
                scaled: dict[int, tuple[int, int]] = {}

                def cid_and_width(glyph_id: int) -> tuple[int, int]:
                    if glyph_id not in scaled:
                        cid, width = raw(glyph_id)
                        scaled[glyph_id] = (cid, round(width * 1000 / units))
                        engine._glyphs[glyph_id] = scaled[glyph_id]
                    return scaled[glyph_id]

                engine._get_cid_and_width = cid_and_width
                engine.hb_font.scale = (1000, 1000)
                engine.units_per_em = 1000
                descriptor = engine.cidfont_obj._font_descriptor
                for key in ("/Ascent", "/Descent", "/CapHeight"):
                    if key in descriptor:
                        descriptor[key] = generic.NumberObject(round(int(descriptor[key]) * 1000 / units))  # type: ignore[no-untyped-call]
                if "/FontBBox" in descriptor:
                    descriptor["/FontBBox"] = generic.ArrayObject(
                        generic.NumberObject(round(int(v) * 1000 / units))  # type: ignore[no-untyped-call]
                        for v in descriptor["/FontBBox"]
                    )
            return engine

    return _Factory


def load_font(font_path: str | Path | None = None) -> GlyphAccumulatorFactory:
    """A pyHanko font factory that embeds a subset (with ToUnicode) of the stamp font; cached per path."""
    return _load_font(str(find_stamp_font(font_path).resolve())).factory


def _text_width(font: _LoadedFont, text: str, size: float) -> float:
    import uharfbuzz as hb  # type: ignore[import-untyped]

    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    hb.shape(font.hb_font, buffer)
    return float(sum(position.x_advance for position in buffer.glyph_positions)) / 1000 * size


# -- the drawing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    x: float
    baseline: float
    text: str
    size: float


@dataclass(frozen=True)
class _Image:
    box: Box
    png: bytes


@dataclass(frozen=True)
class _QR:
    box: Box
    modules: tuple[tuple[bool, ...], ...]


_Item = _Text | _Image | _QR


@dataclass(frozen=True)
class Decree30StampStyle(BaseStampStyle):
    """A pyHanko stamp style that draws a laid-out Decree 30 stamp: images, black text lines and a
    QR code at fixed places in the widget, no border, no background."""

    items: tuple[_Item, ...] = ()
    """What is drawn, in widget coordinates (origin at the widget's lower left)."""
    size: tuple[float, float] = (0.0, 0.0)
    """The widget size the items were laid out for; another box gets them scaled down to fit."""
    font: GlyphAccumulatorFactory | None = None
    """The font of the text items."""
    profile: str = ""
    """Recorded in the appearance stream (``/GovsignStamp``), with the image's box."""
    image_box: Box | None = None
    """The image's box in widget coordinates, recorded the same way."""
    border_width: int = 0
    background: Any = None

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict[str, Any]
    ) -> Decree30Stamp:
        """The stamp pyHanko renders into the widget's appearance stream."""
        return Decree30Stamp(writer=writer, style=self, box=box)


class Decree30Stamp(BaseStamp):
    """Renders a :class:`Decree30StampStyle`."""

    style: Decree30StampStyle

    def _fit(self) -> tuple[float, float, float]:
        """Scale and offset that put the laid-out items into this widget's box (1, 0, 0 normally)."""
        width, height = float(self.box.width), float(self.box.height)
        planned_w, planned_h = self.style.size
        if planned_w <= 0 or planned_h <= 0 or (abs(width - planned_w) < 0.01 and abs(height - planned_h) < 0.01):
            return 1.0, 0.0, 0.0
        scale = min(1.0, width / planned_w, height / planned_h)
        return scale, (width - planned_w * scale) / 2, (height - planned_h * scale) / 2

    def _render_inner_content(self) -> list[bytes]:
        scale, dx, dy = self._fit()
        out = [b"q %g 0 0 %g %g %g cm" % (scale, scale, dx, dy)]
        engine = None
        for number, item in enumerate(self.style.items):
            if isinstance(item, _Image):
                out.append(self._image(item, number))
            elif isinstance(item, _QR):
                out.append(_qr_commands(item))
            else:
                if engine is None:
                    assert self.style.font is not None
                    engine = self.style.font.create_font_engine(self._ensure_writer)
                    self.set_resource(ResourceType.FONT, pdf_name("/F1"), engine.as_resource())
                engine.font_size = item.size  # type: ignore[assignment]  # a float size works
                shaped = engine.shape(item.text)
                out.append(
                    b"BT /F1 %g Tf 0 0 0 rg %g %g Td %s ET" % (item.size, item.x, item.baseline, shaped.graphics_ops)
                )
        out.append(b"Q")
        return out

    def _image(self, item: _Image, number: int) -> bytes:
        from PIL import Image
        from pyhanko.pdf_utils.images import pil_image

        with Image.open(BytesIO(item.png)) as picture:
            picture.load()
            reference = pil_image(picture.convert("RGBA"), self._ensure_writer)
        name = pdf_name(f"/Im{number}")
        self.set_resource(ResourceType.XOBJECT, name, reference)
        x1, y1, x2, y2 = item.box
        return b"q %g 0 0 %g %g %g cm %s Do Q" % (x2 - x1, y2 - y1, x1, y1, name.encode("ascii"))

    def as_form_xobject(self) -> generic.StreamObject:
        """The appearance stream, with the ``/GovsignStamp`` marker a later seal is placed by."""
        stream = super().as_form_xobject()
        marker = generic.DictionaryObject({pdf_name("/Profile"): pdf_name(f"/{self.style.profile}")})  # type: ignore[no-untyped-call]
        if self.style.image_box is not None:
            scale, dx, dy = self._fit()
            x1, y1, x2, y2 = self.style.image_box
            marker[pdf_name("/Image")] = generic.ArrayObject(
                generic.FloatObject(round(value, 3))  # type: ignore[no-untyped-call]
                for value in (x1 * scale + dx, y1 * scale + dy, x2 * scale + dx, y2 * scale + dy)
            )
        stream[pdf_name(place.STAMP_MARKER)] = marker
        return stream


def _qr_commands(item: _QR) -> bytes:
    """The dark modules as filled rectangles (one per horizontal run), black, in the item's box."""
    x1, y1, x2, _ = item.box
    count = len(item.modules)
    module = (x2 - x1) / count
    rects: list[bytes] = []
    for row, cells in enumerate(item.modules):
        column = 0
        while column < count:
            if not cells[column]:
                column += 1
                continue
            start = column
            while column < count and cells[column]:
                column += 1
            rects.append(b"%d %d %d 1 re" % (start, count - 1 - row, column - start))
    return b"q 0 0 0 rg %g 0 0 %g %g %g cm %s f Q" % (module, module, x1, y1, b" ".join(rects))


def _qr_modules(data: str) -> tuple[tuple[bool, ...], ...]:
    try:
        import qrcode  # type: ignore[import-untyped]
        from qrcode.constants import ERROR_CORRECT_M  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("Verification QR codes need qrcode: install pyHanko with its qr extra.") from None
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=0, box_size=1)
    code.add_data(data)
    code.make(fit=True)
    return tuple(tuple(bool(cell) for cell in row) for row in code.get_matrix())


# -- layout ----------------------------------------------------------------------------------


def _subject_value(certificate: asn1_x509.Certificate, key: str) -> str | None:
    value = certificate.subject.native.get(key)
    if isinstance(value, list):
        value = value[-1] if value else None
    if not isinstance(value, str):
        return None
    value = " ".join(unicodedata.normalize("NFC", value).split())
    return value or None


def _signer_names(certificate_der: bytes) -> tuple[str | None, str | None]:
    try:
        certificate = asn1_x509.Certificate.load(bytes(certificate_der), strict=True)
        return _subject_value(certificate, "common_name"), _subject_value(certificate, "organization_name")
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError("The signer certificate is not DER X.509.") from None


@dataclass
class _Layout:
    """Items in page coordinates, before they are moved into the widget."""

    page: int
    items: list[_Item] = field(default_factory=list)
    bounds: list[Box] = field(default_factory=list)
    image_box: Box | None = None
    text_box: Box | None = None
    lines: tuple[str, ...] = ()


def _text_block(font: _LoadedFont, lines: Sequence[str], size: float) -> tuple[float, float, list[float]]:
    """Width and height of left-aligned lines (from the first line's ascent to the last one's
    descent), and each line's width."""
    widths = [_text_width(font, line, size) for line in lines]
    height = (len(lines) - 1) * _LEADING * size + (_ASCENT + _DESCENT) * size
    return max(widths), height, widths


def _place_text(result: _Layout, font: _LoadedFont, lines: Sequence[str], size: float, box: Box) -> None:
    """Left-aligned lines whose block's glyph box is ``box``'s top-left corner of that size."""
    x1, _, _, y2 = box
    width, height, _ = _text_block(font, lines, size)
    for number, line in enumerate(lines):
        result.items.append(_Text(x1, y2 - _ASCENT * size - number * _LEADING * size, line, size))
    result.bounds.append((x1, y2 - height, x1 + width, y2))


def _centred(centre: tuple[float, float], size: tuple[float, float]) -> Box:
    (cx, cy), (w, h) = centre, size
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _fit_in(size: tuple[float, float], box: Box) -> Box:
    """``size`` centred in ``box``, shrunk (keeping its proportions) only when larger than it."""
    x1, y1, x2, y2 = box
    scale = min(1.0, (x2 - x1) / size[0], (y2 - y1) / size[1])
    return _centred(((x1 + x2) / 2, (y1 + y2) / 2), (size[0] * scale, size[1] * scale))


def _panel(
    result: _Layout,
    font: _LoadedFont,
    stamp: VisibleStamp,
    detail_lines: Sequence[str],
    visible: Box,
) -> None:
    """The verification line (QR code, reference) and details beside the image: right of a
    person's, left of a seal (whose right part lies over the person's image); on the other side
    or below when the page has no room there."""
    assert result.image_box is not None
    texts = ([stamp.verification.reference] if stamp.verification is not None else []) + list(detail_lines)
    if stamp.verification is None and not texts:
        return
    qr_side = QR_SIDE if stamp.verification is not None else 0.0
    text_w, text_h, _ = _text_block(font, texts, _SMALL_TEXT) if texts else (0.0, 0.0, [])
    gap = 0.8 * MM if qr_side and texts else 0.0
    width, height = max(qr_side, text_w), qr_side + gap + text_h
    ix1, iy1, ix2, iy2 = result.image_box
    middle = (iy1 + iy2) / 2
    beside_right = (ix2 + _PANEL_GAP, middle - height / 2)
    beside_left = (ix1 - _PANEL_GAP - width, middle - height / 2)
    below = ((ix1 + ix2) / 2 - width / 2, iy1 - _PANEL_GAP - height)
    order = [beside_right, beside_left, below] if stamp.profile == "person" else [beside_left, below, beside_right]
    vx1, vy1, vx2, vy2 = visible

    def inside(corner: tuple[float, float]) -> bool:
        x, y = corner
        return x >= vx1 and y >= vy1 and x + width <= vx2 and y + height <= vy2

    x, y = next((corner for corner in order if inside(corner)), order[0])
    top = y + height
    if stamp.verification is not None:
        modules = _qr_modules(stamp.verification.url or stamp.verification.reference)
        qr_box = (x, top - qr_side, x + qr_side, top)
        result.items.append(_QR(qr_box, modules))
        result.bounds.append(qr_box)
        top -= qr_side + gap
    if texts:
        _place_text(result, font, texts, _SMALL_TEXT, (x, top - text_h, x + text_w, top))


def _person_under_seal(document: IncrementalPdfFileWriter, person_field: str | None) -> tuple[int, Box]:
    """The page and image box of the person signature a seal goes over."""
    widgets = [widget for widget in place.signature_widgets(document) if widget.signed]
    if person_field is not None:
        named = [widget for widget in widgets if widget.field_name == person_field]
        if not named:
            raise InvalidInputError(f"The document has no visible, signed signature field {person_field!r}.")
        chosen = named[0]
    else:
        persons = [widget for widget in widgets if widget.profile == "person"]
        others = [widget for widget in widgets if widget.profile is None]
        candidates = persons or others
        if not candidates:
            raise InvalidInputError(
                "A seal goes over the person's signature image, and the document shows no person signature; "
                "have the person sign first, or give the page and box of the seal."
            )
        chosen = max(candidates, key=lambda widget: widget.signed_until)
    return chosen.page, chosen.image_box or chosen.rect


def _lay_out(
    stamp: VisibleStamp,
    document: IncrementalPdfFileWriter,
    font: _LoadedFont,
    lines: Sequence[str],
    detail_lines: Sequence[str],
    *,
    password: str | None,
) -> _Layout:
    stream = document.prev.stream
    count = place.page_count(document)
    target = stamp.placement
    if stamp.profile in ("attachment", "copy"):
        if stamp.profile == "copy" and not isinstance(target, BoxPlacement):
            lines = _copy_lines_above_the_text(stamp, document, font, lines, password=password)
        width, height, _ = _text_block(font, lines, TEXT_SIZE)
        if isinstance(target, BoxPlacement):
            page = place.resolve_page_index(target.page, count)
            x1, y1, x2, y2 = target.box
            if width > x2 - x1 + 0.01 or height > y2 - y1 + 0.01:
                raise InvalidInputError(
                    f"The stamp box is too small for its {TEXT_SIZE:g} pt text, which needs "
                    f"{math.ceil(width)} x {math.ceil(height)} points."
                )
            block = (x2 - width, y2 - height, x2, y2)
        else:
            taken = [widget.rect for widget in place.signature_widgets(document) if widget.page == 0]
            page, block = place.top_right_block(
                stream, document, (width, height), page=0, password=password, avoid=taken
            )
        result = _Layout(page=page, lines=tuple(lines))
        _place_text(result, font, lines, TEXT_SIZE, block)
        result.text_box = result.bounds[-1]
        return result

    assert stamp.image is not None
    picture = _picture(stamp.image, stamp.profile)
    if isinstance(target, BoxPlacement):
        page = place.resolve_page_index(target.page, count)
        image_box = _fit_in(picture.size, target.box)
    elif isinstance(target, TextPlacement):
        page, centre, _, _ = place.signature_block_centre(
            stream, document, title_text=target.title_text, name_text=target.name_text, page=target.page,
            password=password,
        )  # fmt: skip
        image_box = _centred(centre, picture.size)
    else:
        person_field = target.person_field if isinstance(target, SealOverPersonPlacement) else None
        page, (px1, py1, px2, py2) = _person_under_seal(document, person_field)
        # the seal's right side on the end of the left third of the person's image, centred on it
        right = px1 + (px2 - px1) / 3
        width, height = picture.size
        image_box = (right - width, (py1 + py2) / 2 - height / 2, right, (py1 + py2) / 2 + height / 2)
    result = _Layout(page=page, image_box=image_box)
    result.items.append(_Image(image_box, picture.png))
    result.bounds.append(image_box)
    visible, _ = place.page_box(document, page)
    _panel(result, font, stamp, detail_lines, visible)
    return result


def build_stamp_appearance(
    stamp: VisibleStamp,
    *,
    document: IncrementalPdfFileWriter,
    field_name: str,
    certificate_der: bytes,
    signing_time: datetime,
    font_path: str | Path | None = None,
    password: str | None = None,
) -> StampAppearance:
    """The field, style and values that make pyHanko draw ``stamp`` on ``document``.

    ``document`` is the writer the signature is appended with (its page text, page boxes and
    signatures place the stamp; nothing is written here); ``password`` opens its text layer when
    it is encrypted. ``signing_time`` is shown in ``+07:00`` (ISO 8601, seconds) and should be the
    time given to :class:`~govsign.signing.signing_time.VietnamTimePdfSigner`, so that the stamp
    and ``/M`` agree.
    """
    if not isinstance(field_name, str) or not field_name or "." in field_name:
        raise InvalidInputError("The signature field name must be a non-empty name without dots.")
    if not isinstance(signing_time, datetime) or signing_time.utcoffset() is None:
        raise InvalidInputError("The signing time must be a timezone-aware datetime.")
    local = signing_time.astimezone(VIETNAM_TZ).replace(microsecond=0)
    iso = local.isoformat(timespec="seconds")
    common_name, organization = _signer_names(certificate_der)
    params = {"signing_time": iso, "signer": common_name or organization or "", "agency": organization or ""}
    if stamp.profile == "attachment":
        assert stamp.document_number is not None
        lines: tuple[str, ...] = (stamp.document_number, iso)
        params["document_number"] = stamp.document_number
    elif stamp.profile == "copy":
        assert stamp.copy_form is not None and stamp.copy_agency is not None
        lines = (stamp.copy_form, *_agency_lines(stamp, font_path, TEXT_STAMP_MAX_WIDTH), iso)
        params.update(copy_form=stamp.copy_form, copy_agency=stamp.copy_agency)
    else:
        lines = ()
    details: list[str] = []
    if stamp.details:
        who = common_name if stamp.profile == "person" else (organization or common_name)
        if who is None:
            raise InvalidInputError("The signer certificate names no common name (CN) or organization (O).")
        details = [f"Ký bởi: {who}" if stamp.profile == "person" else who, f"Ký lúc: {iso}"]
    if stamp.verification is not None:
        params["verification_reference"] = stamp.verification.reference

    path = str(find_stamp_font(font_path).resolve())
    font = _load_font(path)
    if missing := _missing(font, VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper()):
        raise ConfigurationError(f"The stamp font {path} has no glyph for the Vietnamese letters {missing!r}.")
    shown = [*lines, *details, *([stamp.verification.reference] if stamp.verification else [])]
    if missing := _missing(font, "".join(shown)):
        raise InvalidInputError(f"The stamp text has characters the stamp font cannot show: {missing!r}.")

    result = _lay_out(stamp, document, font, lines, details, password=password)
    lines = result.lines or lines
    x1, y1 = math.floor(min(b[0] for b in result.bounds)), math.floor(min(b[1] for b in result.bounds))
    x2, y2 = math.ceil(max(b[2] for b in result.bounds)), math.ceil(max(b[3] for b in result.bounds))
    widget = (x1, y1, x2, y2)
    style = Decree30StampStyle(
        items=tuple(_moved(item, -x1, -y1) for item in result.items),
        size=(float(x2 - x1), float(y2 - y1)),
        font=font.factory,
        profile=stamp.profile,
        image_box=None if result.image_box is None else _shift(result.image_box, -x1, -y1),
    )
    spec = SigFieldSpec(sig_field_name=field_name, on_page=result.page, box=widget)
    return StampAppearance(
        new_field_spec=spec,
        stamp_style=style,
        appearance_text_params=params,
        lines=(*lines, *([stamp.verification.reference] if stamp.verification else []), *details),
        page=result.page,
        widget_box=widget,
        image_box=result.image_box,
        text_box=result.text_box,
    )


def _agency_lines(stamp: VisibleStamp, font_path: str | Path | None, limit: float) -> tuple[str, ...]:
    """The copying agency's name in lines no wider than the explicit box, else than ``limit``."""
    assert stamp.copy_agency is not None
    font = _load_font(str(find_stamp_font(font_path).resolve()))
    target = stamp.placement
    if isinstance(target, BoxPlacement):
        limit = target.box[2] - target.box[0]
    return wrap_words(stamp.copy_agency, lambda text: _text_width(font, text, TEXT_SIZE), limit)


def _copy_lines_above_the_text(
    stamp: VisibleStamp,
    document: IncrementalPdfFileWriter,
    font: _LoadedFont,
    lines: Sequence[str],
    *,
    password: str | None,
) -> Sequence[str]:
    """The copy stamp's lines, the agency's name wrapped at :data:`TEXT_STAMP_MAX_WIDTH` when the
    block still fits in the top margin above the first page's text and images, else wrapped wider
    (up to the page's width) so that fewer lines fit there; when nothing fits, the fewest lines."""
    assert stamp.copy_form is not None and lines
    (px1, _, px2, py2), _ = place.page_box(document, 0)
    content = place.page_text(document.prev.stream, 0, password=password)
    tops = [line.box[3] for line in content.lines] + [box[3] for box in content.images]
    room = py2 - place.MIN_EDGE_INSET - max(tops, default=-math.inf) - 1.0
    widest = px2 - px1 - 2 * place.MIN_EDGE_INSET
    candidate = tuple(lines)
    for limit in (TEXT_STAMP_MAX_WIDTH, 120 * MM, widest):
        candidate = (stamp.copy_form, *_agency_lines(stamp, font.path, min(limit, widest)), lines[-1])
        if _text_block(font, candidate, TEXT_SIZE)[1] <= room:
            return candidate
    return candidate


def wrap_words(text: str, width_of: Callable[[str], float], limit: float) -> tuple[str, ...]:
    """``text`` broken at spaces into lines whose ``width_of`` is at most ``limit`` (greedy; a
    single word wider than the limit keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and width_of(f"{lines[-1]} {word}") <= limit + 0.01:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return tuple(lines) or (text,)


def _shift(box: Box, dx: float, dy: float) -> Box:
    return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy


def _moved(item: _Item, dx: float, dy: float) -> _Item:
    if isinstance(item, _Text):
        return _Text(item.x + dx, item.baseline + dy, item.text, item.size)
    if isinstance(item, _Image):
        return _Image(_shift(item.box, dx, dy), item.png)
    return _QR(_shift(item.box, dx, dy), item.modules)
