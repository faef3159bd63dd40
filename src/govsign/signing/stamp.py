"""Visible signature appearances per Decree 30/2020/ND-CP, Appendix I (Vietnamese state documents).

Appendix I describes two visible digital signatures on an electronic document:

* the competent person's ("chữ ký số của người có thẩm quyền"): the image of the person's
  handwritten signature, blue, PNG with a transparent background, centred between the signer's
  title (chức vụ) and name;
* the agency's ("chữ ký số của cơ quan, tổ chức"): the image of the agency's seal, red, at the
  seal's actual size, PNG with a transparent background, overlapping about one third of the
  person's signature image on its left, with the agency's name and the signing time (day month
  year; hour minute second; Vietnam time zone per ISO 8601, i.e. ``+07:00``).

This module is a pure core: :class:`VisibleStamp` says where and what to draw,
:func:`build_stamp_appearance` turns it, the signer's certificate and the signing time into the
three things pyHanko's :class:`~pyhanko.sign.signers.PdfSigner` needs (``new_field_spec``,
``stamp_style`` and the ``appearance_text_params`` of ``sign_pdf``). Text is drawn with an embedded
TrueType subset (with a ToUnicode map) so Vietnamese diacritics render and extract correctly; the
font is looked up among known system paths (Debian: ``fonts-dejavu-core``) unless one is given.

Where the two appearances go relative to each other (the seal over the left third of the
person's signature) is the caller's choice of boxes: each signature has its own widget.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.text import TextBox, TextBoxStyle
from pyhanko.sign.fields import SigFieldSpec
from pyhanko.stamp import TextStamp, TextStampStyle

from govsign.errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.writer import BasePdfFileWriter

__all__ = [
    "BLUE",
    "FONT_CANDIDATES",
    "MAX_PAGE_COORDINATE",
    "RED",
    "VIETNAM_TZ",
    "StampAppearance",
    "StampKind",
    "VisibleStamp",
    "build_stamp_appearance",
    "find_font",
    "load_font",
    "resolve_page",
]

StampKind = Literal["organization", "individual"]

#: Vietnam time (ICT), the zone Decree 30 asks the signing time to be shown in.
VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")
#: Red of the agency's seal appearance (text and border), RGB in 0..1.
RED = (0.8, 0.0, 0.0)
#: Blue of the competent person's appearance (text and border), RGB in 0..1.
BLUE = (0.0, 0.2, 0.75)
#: Largest page coordinate accepted, in points: ISO 32000 limits pages to 14,400 units (200 in).
MAX_PAGE_COORDINATE = 14_400.0
#: Smallest width and height of a stamp box, in points (about 7 mm).
MIN_BOX_SIDE = 20.0
#: TrueType fonts with full Vietnamese coverage, tried in this order when no font is given.
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian/Ubuntu fonts-dejavu-core
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",  # older Fedora/RHEL, Alpine
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",  # Debian fonts-noto-core
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  # Debian fonts-liberation
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_IMAGE_BYTES = 2 * 1024 * 1024
_MAX_IMAGE_PIXELS = 4096 * 4096
_MAX_TITLE_CHARS = 200
_MARGIN = 3
_FONT_SIZE = 10
_LEADING = 12
_BORDER_WIDTH = 1
#: Resolution assumed for a PNG without a pHYs chunk, in dots per inch.
_DEFAULT_DPI = 96.0


@dataclass(frozen=True, kw_only=True)
class VisibleStamp:
    """Where and what to draw for one visible signature (Decree 30/2020/ND-CP, Appendix I)."""

    page: int = 0
    """Page of the signature widget, 0-based; negative numbers count from the end (-1 = last)."""
    box: tuple[float, float, float, float]
    """Widget rectangle (x1, y1, x2, y2) in PDF points, lower-left then upper-right corner."""
    kind: StampKind
    """``organization`` (the agency's seal, red) or ``individual`` (the person's signature, blue)."""
    image_png: bytes | None = None
    """Seal (organization) or handwritten signature (individual) image: PNG, transparent background."""
    title: str | None = None
    """Title (chức vụ) of an individual signer, drawn above the signature image, e.g. "Chủ tịch"."""

    def __post_init__(self) -> None:
        if self.kind not in ("organization", "individual"):
            raise InvalidInputError('The stamp kind must be "organization" or "individual".')
        if isinstance(self.page, bool) or not isinstance(self.page, int):
            raise InvalidInputError("The stamp page must be an integer page index.")
        _check_box(self.box)
        if self.image_png is not None:
            _decode_png(self.image_png)
        if self.title is not None:
            if self.kind != "individual":
                raise InvalidInputError("Only an individual's stamp can show a title.")
            title = unicodedata.normalize("NFC", self.title).strip()
            if not title or len(title) > _MAX_TITLE_CHARS or any(unicodedata.category(c)[0] == "C" for c in title):
                raise InvalidInputError(
                    f"The stamp title must be one line of 1 to {_MAX_TITLE_CHARS} printable characters."
                )
            object.__setattr__(self, "title", title)

    @property
    def width(self) -> float:
        """Width of the box in points."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Height of the box in points."""
        return self.box[3] - self.box[1]


@dataclass(frozen=True, kw_only=True)
class StampAppearance:
    """What pyHanko's ``PdfSigner`` and its ``sign_pdf`` need to draw one :class:`VisibleStamp`."""

    new_field_spec: SigFieldSpec
    """``PdfSigner(new_field_spec=...)``: the new signature field, its page and rectangle."""
    stamp_style: TextStampStyle
    """``PdfSigner(stamp_style=...)``: colours, font, image and text templates."""
    appearance_text_params: dict[str, str]
    """``PdfSigner.sign_pdf(appearance_text_params=...)``: the values filled into the templates."""
    lines: tuple[str, ...]
    """The text lines drawn, top to bottom (NFC), for logs, audit and tests."""


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
    return image.convert("RGBA")


def check_png(data: bytes) -> None:
    """InvalidInputError unless data is a PNG with a transparent background that a stamp can show."""
    _decode_png(data)


def resolve_page(stamp: VisibleStamp, page_count: int) -> int:
    """The 0-based index of the stamp's page in a document of ``page_count`` pages.

    :func:`build_stamp_appearance` cannot know the document; the signing code calls this once it
    has opened the PDF (pyHanko would otherwise fail with an internal error at signing time).
    """
    index = stamp.page + page_count if stamp.page < 0 else stamp.page
    if not 0 <= index < page_count:
        raise InvalidInputError(f"The stamp is placed on page {stamp.page}, but the document has {page_count} page(s).")
    return index


def find_font(font_path: str | Path | None = None) -> Path:
    """The TrueType font to draw stamps with: ``font_path`` if given, else the first known one present."""
    if font_path is not None:
        path = Path(font_path)
        if not path.is_file():
            raise ConfigurationError(f"The stamp font {path} does not exist.")
        return path
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigurationError(
        "No font for Vietnamese stamp text was found; install fonts-dejavu-core or give a TrueType font path."
    )


@dataclass(frozen=True)
class _LoadedFont:
    factory: GlyphAccumulatorFactory
    """Makes pyHanko's font engine for the font file."""
    codepoints: frozenset[int]
    """The characters the font has glyphs for."""


@functools.lru_cache(maxsize=8)
def _load_font(path: str) -> _LoadedFont:
    try:
        from fontTools.ttLib import TTFont, TTLibError  # type: ignore[import-untyped]
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("Stamp fonts need fontTools: install pyHanko with its opentype extra.") from None
    try:
        with TTFont(path, lazy=True) as font:
            codepoints = frozenset(font.getBestCmap() or {})
    except (OSError, TTLibError, AssertionError, KeyError):
        raise ConfigurationError(f"The stamp font {path} is not a readable TrueType/OpenType font.") from None
    return _LoadedFont(_em_normalising_factory(GlyphAccumulatorFactory)(path, font_size=_FONT_SIZE), codepoints)


def _em_normalising_factory(base: type[GlyphAccumulatorFactory]) -> type[GlyphAccumulatorFactory]:
    """pyHanko's factory, fixed for fonts whose units per em are not 1000 (DejaVu and Liberation: 2048).

    pyHanko 0.38 writes glyph widths (/W) and TJ adjustments in font units, but PDF wants
    thousandths of an em: with a 2048-unit font every glyph was spaced about twice too wide. Here
    HarfBuzz is asked for 1000-unit positions and the widths are scaled the same way.
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
            return engine

    return _Factory


def load_font(font_path: str | Path | None = None) -> GlyphAccumulatorFactory:
    """A pyHanko font factory that embeds a subset (with ToUnicode) of the stamp font; cached per path."""
    return _load_font(str(find_font(font_path).resolve())).factory


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


@dataclass(frozen=True)
class Decree30StampStyle(TextStampStyle):
    """A pyHanko text stamp laid out as Decree 30 asks (see the module documentation).

    ``individual``: ``header_text`` (the title) at the top, the image centred below it and
    ``stamp_text`` (name, time) at the bottom. ``organization``: the seal image on the left at
    its actual size (shrunk only to fit the left half of the box) and ``stamp_text`` on the right.
    """

    layout_kind: StampKind = "individual"
    """Which of the two layouts to draw."""
    header_text: str = ""
    """Template drawn above the image (individuals); empty for none."""
    image_png: bytes | None = None
    """The PNG drawn (decoded again per document; the style itself stays immutable)."""
    image_size: tuple[float, float] | None = None
    """Natural size of the image in points, from its pixel count and resolution."""
    inner_margin: int = _MARGIN
    """Space between the border and the content, in points."""

    def create_stamp(
        self, writer: BasePdfFileWriter, box: layout.BoxConstraints, text_params: dict[str, Any]
    ) -> Decree30Stamp:
        """The stamp pyHanko renders into the widget's appearance stream."""
        return Decree30Stamp(writer=writer, style=self, box=box, text_params=text_params)


def _rule(x_align: layout.AxisAlignment, y_align: layout.AxisAlignment, margin: int) -> layout.SimpleBoxLayoutRule:
    return layout.SimpleBoxLayoutRule(
        x_align=x_align,
        y_align=y_align,
        margins=layout.Margins(left=margin, right=margin, top=margin, bottom=margin),
        inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT,
    )


class Decree30Stamp(TextStamp):
    """Renders a :class:`Decree30StampStyle` (text blocks and image placed in bands of the box)."""

    style: Decree30StampStyle

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.get_default_text_params()  # type: ignore[no-untyped-call]
        params.update(self.text_params or {})
        return params

    def _text_block(self, text: str, font_name: str) -> tuple[bytes, float, float]:
        box = TextBox(self.style.text_box_style, writer=self.writer, resources=self.resources, font_name=font_name)
        box.content = text
        commands: bytes = box.render()  # type: ignore[no-untyped-call]
        return commands, float(box.box.width), float(box.box.height)

    def _place(
        self, commands: bytes, size: tuple[float, float], band: tuple[float, float, float, float], rule: Any
    ) -> tuple[bytes, float, float]:
        """Commands drawing content of natural ``size`` fitted into ``band`` (x, y, w, h); drawn w, h."""
        x, y, w, h = band
        if w <= 0 or h <= 0:
            return b"", 0.0, 0.0
        position = rule.fit(layout.BoxConstraints(width=w, height=h), size[0], size[1])
        drawn = b"q 1 0 0 1 %g %g cm %s %s Q" % (x, y, position.as_cm(), commands)
        return drawn, size[0] * position.x_scale, size[1] * position.y_scale

    def _image(self) -> tuple[bytes, tuple[float, float]] | None:
        style = self.style
        if style.image_png is None or style.image_size is None:
            return None
        from pyhanko.pdf_utils.images import PdfImage

        image = PdfImage(
            _decode_png(style.image_png),
            writer=self.writer,
            box=layout.BoxConstraints(width=style.image_size[0], height=style.image_size[1]),
        )
        commands = image.render()
        self.import_resources(image.resources)
        return commands, style.image_size

    def _render_inner_content(self) -> list[bytes]:
        style = self.style
        params = self._params()
        width, height = float(self.box.width), float(self.box.height)
        m = style.inner_margin
        mid, low, high = layout.AxisAlignment.ALIGN_MID, layout.AxisAlignment.ALIGN_MIN, layout.AxisAlignment.ALIGN_MAX
        out: list[bytes] = []
        image = self._image()
        text, text_w, text_h = self._text_block(style.stamp_text % params, "F1")
        if style.layout_kind == "organization":
            image_w = 0.0
            if image is not None:
                drawn, image_w, _ = self._place(image[0], image[1], (0, 0, width / 2, height), _rule(low, mid, m))
                out.append(drawn)
            left = image_w + m if image is not None else 0.0
            drawn, _, _ = self._place(text, (text_w, text_h), (left, 0, width - left, height), _rule(mid, mid, m))
            out.append(drawn)
            return out
        top = 0.0
        if style.header_text:
            header, header_w, header_h = self._text_block(style.header_text % params, "F2")
            band_h = height / 4 if image is not None else height / 2
            drawn, _, top = self._place(
                header, (header_w, header_h), (0, height - band_h, width, band_h), _rule(mid, high, m)
            )
            out.append(drawn)
            top += m
        bottom_band = (height - top) * (0.45 if image is not None else 1.0)
        drawn, _, bottom = self._place(text, (text_w, text_h), (0, 0, width, bottom_band), _rule(mid, low, m))
        out.append(drawn)
        bottom += m
        if image is not None:
            band = (0.0, bottom, width, height - top - bottom)
            drawn, _, _ = self._place(image[0], image[1], band, _rule(mid, mid, m))
            out.append(drawn)
        return out


def _image_size_points(image_png: bytes) -> tuple[float, float]:
    image = _decode_png(image_png)
    dpi = image.info.get("dpi")
    xdpi, ydpi = (float(dpi[0]), float(dpi[1])) if isinstance(dpi, tuple) and len(dpi) == 2 else (0.0, 0.0)
    xdpi = xdpi if xdpi >= 1 else _DEFAULT_DPI
    ydpi = ydpi if ydpi >= 1 else _DEFAULT_DPI
    return image.width * 72.0 / xdpi, image.height * 72.0 / ydpi


def _check_coverage(font: _LoadedFont, path: str, lines: Sequence[str]) -> None:
    missing = sorted({c for line in lines for c in line if ord(c) not in font.codepoints and not c.isspace()})
    if missing:
        raise ConfigurationError(f"The stamp font {path} has no glyph for {''.join(missing)!r}.")


def build_stamp_appearance(
    stamp: VisibleStamp,
    *,
    field_name: str,
    certificate_der: bytes,
    signing_time: datetime,
    font_path: str | Path | None = None,
) -> StampAppearance:
    """The field, style and text parameters that make pyHanko draw ``stamp`` for this signer.

    Texts (Vietnamese, NFC): organization: "Ký bởi: <O, else CN>", "Cơ quan: <O, else CN>",
    "Thời gian ký: dd.mm.yyyy hh:mm:ss +07:00" and the same instant in ISO 8601; individual: the
    title (if any) above the image, then "Ký bởi: <CN>", "Cơ quan: <O>" (if present) and the time.
    ``signing_time`` should be the time pyHanko writes into the signature; it is shown in +07:00.
    (One function, a little over 60 lines, so the layout reads top to bottom as it is drawn.)
    """
    if not isinstance(field_name, str) or not field_name or "." in field_name:
        raise InvalidInputError("The signature field name must be a non-empty name without dots.")
    if not isinstance(signing_time, datetime) or signing_time.utcoffset() is None:
        raise InvalidInputError("The signing time must be a timezone-aware datetime.")
    common_name, organization = _signer_names(certificate_der)
    local = signing_time.astimezone(VIETNAM_TZ).replace(microsecond=0)
    params = {
        "signer": common_name or organization or "",
        "agency": organization or common_name or "",
        "title": stamp.title or "",
        "signing_time": local.strftime("%d.%m.%Y %H:%M:%S") + " +07:00",
        "signing_time_iso": local.isoformat(timespec="seconds"),
    }
    if stamp.kind == "organization":
        params["signer"] = organization or common_name or ""
        if not params["signer"]:
            raise InvalidInputError("The signer certificate names no organization (O) or common name (CN).")
        body = [
            "Ký bởi: %(signer)s",
            "Cơ quan: %(agency)s",
            "Thời gian ký: %(signing_time)s",
            "(ISO 8601: %(signing_time_iso)s)",
        ]
        header = ""
        color = RED
    else:
        if common_name is None:
            raise InvalidInputError("The signer certificate names no common name (CN).")
        body = ["Ký bởi: %(signer)s"]
        if organization is not None:
            body.append("Cơ quan: %(agency)s")
        body += ["Thời gian ký: %(signing_time)s", "(ISO 8601: %(signing_time_iso)s)"]
        header = "%(title)s" if stamp.title else ""
        color = BLUE
    params = {key: unicodedata.normalize("NFC", value) for key, value in params.items()}
    lines = tuple(line % params for line in ([header] if header else []) + body)

    path = str(find_font(font_path).resolve())
    font = _load_font(path)
    _check_coverage(font, path, lines)
    text_box_style = TextBoxStyle(font=font.factory, font_size=_FONT_SIZE, leading=_LEADING, text_color=color)
    style = Decree30StampStyle(
        border_width=_BORDER_WIDTH,
        border_color=color,
        text_box_style=text_box_style,
        stamp_text="\n".join(body),
        header_text=header,
        layout_kind=stamp.kind,
        image_png=None if stamp.image_png is None else bytes(stamp.image_png),
        image_size=None if stamp.image_png is None else _image_size_points(stamp.image_png),
        background=None,
    )
    x1, y1, x2, y2 = stamp.box
    spec = SigFieldSpec(
        sig_field_name=field_name,
        on_page=stamp.page,
        box=(math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)),
    )
    # pyHanko fills these into the templates (its own "signer" and "ts" are overridden here).
    return StampAppearance(new_field_spec=spec, stamp_style=style, appearance_text_params=dict(params), lines=lines)
