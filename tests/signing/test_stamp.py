"""Decree 30/2020 Appendix I stamps (person, seal, attachment, copy) made by ``sign_pdf`` with keys
on the shared SoftHSM2 token, checked as a receiving clerk's tools see them: rendered by poppler
and measured by pixels, read back by ``pdftotext``/``pdffonts``, verified by ``pdfsig`` and
``qpdf --check``."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import unicodedata
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import PDFSignatureSpec, sign_pdf
from govsign.signing.placement import MIN_EDGE_INSET, STAMP_MARKER, Box, signature_widgets
from govsign.signing.stamp import (
    TEXT_STAMP_MAX_WIDTH,
    AnchorPlacement,
    BoxPlacement,
    SealOverPersonPlacement,
    StampImage,
    TextPlacement,
    VerificationLine,
    VisibleStamp,
    build_stamp_appearance,
)
from helpers.credentials import signing_credential
from helpers.pdf import blank_pdf, pdfsig, qpdf_check, require_tool, word_style_pdf
from signing.decree30_pages import AGENCY, NAME, NUMBER, decision_pdf, seal_png, signature_png
from signing.test_placement import line_box, pdftotext_words

AGENCY_NAME = "Ủy ban nhân dân tỉnh Hà Nam"
SIGNING_TIME = dt.datetime(2026, 11, 25, 2, 15, 30, tzinfo=dt.UTC)  # 09:15:30 in Vietnam
ISO_TIME = "2026-11-25T09:15:30+07:00"
PAGE_W, PAGE_H = 595.28, 841.89
PERSON = VisibleStamp(
    profile="person",
    image=StampImage(png=signature_png()),
    placement=TextPlacement(title_text="PHÓ CHỦ TỊCH", name_text=NAME),
    verification=VerificationLine(reference="HN-7K3F9QX2", url="https://xacthuc.hanam.gov.vn/v/7K3F9QX2"),
)
SEAL = VisibleStamp(
    profile="seal",
    image=StampImage(png=seal_png(dpi=None), width_mm=36.0),  # no PNG resolution: the registered size
    verification=VerificationLine(reference="HN-8M2C4RT6"),
)
COPY = VisibleStamp(profile="copy", copy_form="SAO Y", copy_agency=f"VĂN PHÒNG {AGENCY}")


@pytest.fixture(scope="module")
def stamp_credentials(initialized_services: Services, hierarchy: HierarchyResult) -> dict[str, SigningCredential]:
    """An official's certificate and the agency's seal certificate, with Vietnamese names."""
    return {
        role: signing_credential(
            initialized_services, hierarchy, subject=subject, profile=profile, email="vanthu@hanam.gov.vn"
        )
        for role, profile, subject in (
            ("person", "individual", f"CN={NAME},O={AGENCY_NAME},C=VN"),
            ("seal", "organization", f"CN={AGENCY_NAME},O={AGENCY_NAME},C=VN"),
        )
    }


def _sign(pdf: bytes, credential: SigningCredential, store: KeyStore, stamp: VisibleStamp) -> bytes:
    spec = PDFSignatureSpec(level="B-B", stamp=stamp, reason="Ký duyệt")
    signed = sign_pdf(pdf, credential, store, spec, signing_time=SIGNING_TIME)
    assert signed is not None and signed.startswith(pdf)
    return signed


@pytest.fixture(scope="module")
def chain(stamp_credentials: dict[str, SigningCredential], store: KeyStore) -> dict[str, bytes]:
    """The decision signed by the official, sealed by the agency, then copied (SAO Y)."""
    original = decision_pdf()
    person = _sign(original, stamp_credentials["person"], store, PERSON)
    sealed = _sign(person, stamp_credentials["seal"], store, SEAL)
    copied = _sign(sealed, stamp_credentials["seal"], store, COPY)
    return {"original": original, "person": person, "sealed": sealed, "copied": copied}


@pytest.fixture(scope="module")
def renders(chain: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image.Image]:
    """Page 1 of each stage rendered by pdftoppm at 72 dpi (one pixel per point)."""
    folder = tmp_path_factory.mktemp("renders")
    return {name: render(pdf, folder / name) for name, pdf in chain.items()}


def render(pdf: bytes, base: Path, dpi: int = 72) -> Image.Image:
    base.with_suffix(".pdf").write_bytes(pdf)
    subprocess.run(
        [require_tool("pdftoppm"), "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile",
         str(base.with_suffix(".pdf")), str(base)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Image.open(base.with_suffix(".png")).convert("RGB")


def mask(image: Image.Image, kind: str) -> Image.Image:
    """255 where a pixel is red (the seal), blue (the signature) or dark (black text, QR codes)."""
    r, g, b = image.split()
    tests = {
        "red": (lambda v: 255 if v > 150 else 0, lambda v: 255 if v < 110 else 0, lambda v: 255 if v < 110 else 0),
        "blue": (lambda v: 255 if v < 120 else 0, lambda v: 255 if v < 140 else 0, lambda v: 255 if v > 130 else 0),
        "dark": (lambda v: 255 if v < 110 else 0, lambda v: 255 if v < 110 else 0, lambda v: 255 if v < 110 else 0),
    }[kind]
    channels = [channel.point(test) for channel, test in zip((r, g, b), tests, strict=True)]
    return ImageChops.multiply(ImageChops.multiply(channels[0], channels[1]), channels[2])


def pixel_box(box: Box) -> tuple[int, int, int, int]:
    """A PDF box (points, origin lower left) as a 72-dpi crop box (pixels, origin top left)."""
    x1, y1, x2, y2 = box
    return round(x1), round(PAGE_H - y2), round(x2), round(PAGE_H - y1)


def count(image: Image.Image, box: Box, kind: str) -> int:
    return mask(image.crop(pixel_box(box)), kind).histogram()[255]


def found_box(image: Image.Image, kind: str, within: Box | None = None) -> Box:
    """The PDF box of the pixels of a kind (optionally only those within a box)."""
    region = pixel_box(within) if within is not None else (0, 0, image.width, image.height)
    bounds = mask(image.crop(region), kind).getbbox()
    assert bounds is not None, f"no {kind} pixels"
    left, top, right, bottom = (bounds[0] + region[0], bounds[1] + region[1], bounds[2] + region[0],
                                bounds[3] + region[1])  # fmt: skip
    return left, PAGE_H - bottom, right, PAGE_H - top


def person_image_box(pdf: bytes) -> Box:
    (widget,) = [w for w in signature_widgets(PdfFileReader(BytesIO(pdf))) if w.profile == "person"]
    assert widget.image_box is not None
    return widget.image_box


def test_person_image_is_centred_between_the_title_and_the_name(
    chain: dict[str, bytes], renders: dict[str, Image.Image], tmp_path: Path
) -> None:
    words = pdftotext_words(chain["original"], tmp_path)
    title, name = line_box(words, "PHÓ CHỦ TỊCH"), line_box(words, NAME)
    expected = ((name[0] + name[2]) / 2, ((title[1] + title[3]) / 2 + (name[1] + name[3]) / 2) / 2)
    page = renders["person"]
    x1, y1, x2, y2 = found_box(page, "blue")  # the signature's strokes, as rendered
    assert abs((x1 + x2) / 2 - expected[0]) <= 2.0 and abs((y1 + y2) / 2 - expected[1]) <= 2.0
    # at its physical size (the strokes' extent in the 300 dpi PNG), blue, and nothing else over it
    strokes = Image.open(BytesIO(signature_png())).getchannel("A").getbbox()
    assert strokes is not None
    physical = ((strokes[2] - strokes[0]) * 72 / 300, (strokes[3] - strokes[1]) * 72 / 300)
    assert (x2 - x1, y2 - y1) == pytest.approx(physical, abs=2)
    assert count(page, (x1, y1, x2, y2), "red") == 0
    assert count(page, (x1 + 1, y1 + 1, x2 - 1, y2 - 1), "dark") == 0  # no text or QR code over the image


def test_seal_covers_the_left_third_of_the_person_image_and_not_its_right_half(
    chain: dict[str, bytes], renders: dict[str, Image.Image]
) -> None:
    x1, y1, x2, y2 = person_image_box(chain["person"])  # from the person stamp's own record
    width = x2 - x1
    assert (x1, y1, x2, y2) == pytest.approx(found_box(renders["person"], "blue"), abs=1.5)
    page = renders["sealed"]
    left_third = (x1, y1, x1 + width / 3, y2)
    assert count(page, left_third, "red") > 0.08 * (width / 3) * (y2 - y1)
    assert count(page, (x1 + width / 2, y1, x2, y2), "red") == 0
    red = found_box(page, "red", within=(x1, y1, x2, y2))
    assert red[0] <= x1 + 1 and abs(red[2] - (x1 + width / 3)) <= 0.1 * width
    # the seal at its registered size (36 mm), centred on the person image's height
    seal = found_box(page, "red")
    assert seal[2] - seal[0] == pytest.approx(36 * 72 / 25.4, abs=2)
    assert (seal[1] + seal[3]) / 2 == pytest.approx((y1 + y2) / 2, abs=2)


def _appearance_streams(pdf: bytes) -> dict[str, list[Any]]:
    """Per signature field, its normal appearance stream and the form XObjects inside it."""
    reader = PdfFileReader(BytesIO(pdf))
    streams: dict[str, list[Any]] = {}
    for field_ref in reader.root["/AcroForm"]["/Fields"]:
        field = field_ref.get_object()
        collected: list[Any] = []

        def walk(xobject: Any, collected: list[Any] = collected) -> None:
            collected.append(xobject)
            for child in xobject.get("/Resources", {}).get("/XObject", {}).values():
                child = child.get_object()
                if child.get("/Subtype") == "/Form":
                    walk(child)

        walk(field["/AP"]["/N"].get_object())
        streams[str(field["/T"])] = collected
    return streams


def test_no_frame_lines_are_drawn(chain: dict[str, bytes], renders: dict[str, Image.Image]) -> None:
    streams = _appearance_streams(chain["copied"])
    assert len(streams) == 3
    for name, forms in streams.items():
        for form in forms:
            operators = re.findall(rb"(?<![\w/])(S|s|B\*?|b\*?)(?![\w])", re.sub(rb"\([^)]*\)|<[^>]*>", b"", form.data))
            assert operators == [], (name, operators)  # nothing is stroked
    page = renders["copied"]
    for widget in signature_widgets(PdfFileReader(BytesIO(chain["copied"]))):
        left, top, right, bottom = pixel_box(widget.rect)
        edges = [(left, top, right, top + 1), (left, bottom - 1, right, bottom),
                 (left, top, left + 1, bottom), (right - 1, top, right, bottom)]  # fmt: skip
        for edge in edges:  # a frame would ink (nearly) every pixel along an edge of the widget
            line = page.crop(edge).convert("L").point(lambda v: 255 if v < 200 else 0)
            assert line.histogram()[255] < 0.5 * max(line.width, line.height), (widget.field_name, edge)


def test_copy_stamp_is_in_the_top_right_margin_of_page_one(chain: dict[str, bytes], tmp_path: Path) -> None:
    before = pdftotext_words(chain["sealed"], tmp_path)
    after = pdftotext_words(chain["copied"], tmp_path)
    added = [word for word in after if word not in before]
    assert " ".join(w for _, w in added) == f"SAO Y VĂN PHÒNG {AGENCY} {ISO_TIME}"
    page_text_top = max(box[3] for box, _ in before if box[1] < PAGE_H - 10)
    for (x1, y1, x2, y2), word in added:
        assert x1 > PAGE_W / 2 and x2 <= PAGE_W - MIN_EDGE_INSET, word
        assert y2 <= PAGE_H - MIN_EDGE_INSET + 0.5 and y1 > page_text_top, word


def test_person_seal_copy_all_verify_with_pdfsig_and_qpdf(
    chain: dict[str, bytes], hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    signed = chain["copied"]
    qpdf_check(signed, tmp_path)
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path)
    assert said.count("Signature is Valid.") == 3, said
    assert said.count("Certificate is Trusted.") == 3, said
    reader = PdfFileReader(BytesIO(signed))
    times = [str(embedded.sig_object["/M"]) for embedded in reader.embedded_signatures]
    assert times == ["D:20261125091530+07'00'"] * 3  # /M in Vietnam time
    markers = [forms[0][STAMP_MARKER]["/Profile"] for forms in _appearance_streams(signed).values()]
    assert sorted(markers) == ["/copy", "/person", "/seal"]


def _text_in(pdf: bytes, box: Box, tmp_path: Path) -> str:
    path = tmp_path / "crop.pdf"
    path.write_bytes(pdf)
    x1, top, x2, bottom = pixel_box(box)
    return subprocess.run(
        [require_tool("pdftotext"), "-f", "1", "-l", "1", "-x", str(x1), "-y", str(top), "-W", str(x2 - x1),
         "-H", str(bottom - top), str(path), "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def test_attachment_stamp_reads_back_exactly_in_an_embedded_liberation_serif_subset(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    stamp = VisibleStamp(profile="attachment", document_number=NUMBER, placement=AnchorPlacement())
    signed = _sign(blank_pdf(), stamp_credentials["seal"], store, stamp)
    top_right = (PAGE_W / 2, PAGE_H - 60, PAGE_W, PAGE_H)
    lines = _text_in(signed, top_right, tmp_path).split("\n")
    assert [line for line in lines if line.strip(" \f")] == [NUMBER, ISO_TIME]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00", lines[1])
    fonts = subprocess.run(
        [require_tool("pdffonts"), str(tmp_path / "crop.pdf")], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert len(fonts) == 1, fonts  # the stamp's font only: never a standard-14 font
    name, *_, emb, sub, uni, _, _ = fonts[0].split()
    assert re.fullmatch(r"[A-Z]{6}\+LiberationSerif(-Identity-H)?", name) and (emb, sub, uni) == ("yes", "yes", "yes")
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path)
    assert "Signature is Valid." in said, said


@pytest.mark.parametrize("form", ["SAO Y", "SAO LỤC", "TRÍCH SAO"])
def test_copy_stamp_reads_back_byte_for_byte(
    form: str, stamp_credentials: dict[str, SigningCredential], store: KeyStore, tmp_path: Path
) -> None:
    agency = "Sở Tư pháp tỉnh Hà Nam"
    stamp = VisibleStamp(
        profile="copy",
        copy_form=unicodedata.normalize("NFD", form),  # type: ignore[arg-type]
        copy_agency=unicodedata.normalize("NFD", agency),
    )
    signed = _sign(blank_pdf(), stamp_credentials["seal"], store, stamp)
    text = _text_in(signed, (PAGE_W / 2, PAGE_H - 70, PAGE_W, PAGE_H), tmp_path)
    lines = [line for line in text.split("\n") if line.strip(" \f")]
    assert [line.encode() for line in lines] == [form.encode(), agency.encode(), ISO_TIME.encode()]


def test_a_long_copying_agency_wraps_within_the_top_right_corner(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, tmp_path: Path
) -> None:
    agency = "VĂN PHÒNG ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH - SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG"
    stamp = VisibleStamp(profile="copy", copy_form="SAO LỤC", copy_agency=agency)
    signed = _sign(blank_pdf(), stamp_credentials["seal"], store, stamp)
    words = pdftotext_words(signed, tmp_path)
    assert " ".join(word for _, word in words) == f"SAO LỤC {agency} {ISO_TIME}"
    lines = sorted({round(box[3], 1) for box, _ in words}, reverse=True)
    assert len(lines) >= 4  # form, the agency over two lines or more, time
    left, right = min(box[0] for box, _ in words), max(box[2] for box, _ in words)
    assert right - left <= TEXT_STAMP_MAX_WIDTH + 0.5 and left > PAGE_W / 2 - 0.5
    assert right <= PAGE_W - MIN_EDGE_INSET
    # on a page whose heading leaves room for three lines only, the name takes one wider line
    before = pdftotext_words(decision_pdf(), tmp_path)
    on_decision = _sign(decision_pdf(), stamp_credentials["seal"], store, stamp)
    added = [word for word in pdftotext_words(on_decision, tmp_path) if word not in before]
    assert " ".join(word for _, word in added) == f"SAO LỤC {agency} {ISO_TIME}"
    assert len({round(box[3], 1) for box, _ in added}) == 3
    page_text_top = max(box[3] for box, _ in before)
    assert min(box[1] for box, _ in added) > page_text_top


def test_text_stamps_on_real_world_files(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    """A Word-style hybrid-reference file and a user-password file take a copy stamp (the text
    layer read with the password); a second copy stamp goes below the first, not over it."""
    seal = stamp_credentials["seal"]
    hybrid = _sign(word_style_pdf(), seal, store, COPY)
    twice = _sign(hybrid, seal, store, VisibleStamp(profile="copy", copy_form="TRÍCH SAO", copy_agency="Sở Nội vụ"))
    qpdf_check(twice, tmp_path)
    said = pdfsig(twice, hierarchy.root.certificate_der, tmp_path)
    assert said.count("Signature is Valid.") == 2, said
    first, second = sorted((w.rect for w in signature_widgets(PdfFileReader(BytesIO(twice), strict=False))),
                           key=lambda rect: -rect[3])  # fmt: skip
    assert second[3] < first[1]
    encrypted = blank_pdf(password="mật-khẩu")
    spec = PDFSignatureSpec(level="B-B", stamp=COPY)
    signed = sign_pdf(encrypted, seal, store, spec, signing_time=SIGNING_TIME, password="mật-khẩu")
    assert signed is not None
    said = pdfsig(signed, hierarchy.root.certificate_der, tmp_path, password="mật-khẩu")
    assert "Signature is Valid." in said, said


# -- layout and refusals, without signing -----------------------------------------------------


def _writer(pdf: bytes) -> IncrementalPdfFileWriter:
    return IncrementalPdfFileWriter(BytesIO(pdf))


def _appearance(pdf: bytes, stamp: VisibleStamp, der: bytes) -> Any:
    return build_stamp_appearance(
        stamp, document=_writer(pdf), field_name="S", certificate_der=der, signing_time=SIGNING_TIME
    )


def _overlaps(a: Box, b: Box) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_verification_line_and_details_sit_beside_the_images(
    chain: dict[str, bytes], stamp_credentials: dict[str, SigningCredential]
) -> None:
    der = stamp_credentials["person"].certificate_der
    person = _appearance(decision_pdf(), VisibleStamp(**{**PERSON.__dict__, "details": True}), der)
    assert person.lines == ("HN-7K3F9QX2", f"Ký bởi: {NAME}", f"Ký lúc: {ISO_TIME}")
    seal = _appearance(chain["person"], SEAL, stamp_credentials["seal"].certificate_der)
    for appearance in (person, seal):
        x, y = appearance.widget_box[:2]
        for item in appearance.stamp_style.items:
            if hasattr(item, "modules"):  # the QR code
                box = (item.box[0] + x, item.box[1] + y, item.box[2] + x, item.box[3] + y)
                assert not _overlaps(box, appearance.image_box)
            elif hasattr(item, "text"):
                assert item.size < 6 and not _overlaps(
                    (item.x + x, item.baseline + y - 2, item.x + x + 1, item.baseline + y + item.size),
                    appearance.image_box,
                )
    # the person's line is to the right of the image, the seal's to the left of the seal
    assert person.widget_box[2] > person.image_box[2] + 20 and seal.widget_box[0] < seal.image_box[0] - 20
    assert not _overlaps((*seal.widget_box[:2], seal.image_box[0], seal.widget_box[3]), person.image_box)


def test_explicit_boxes_and_person_fields(
    chain: dict[str, bytes], stamp_credentials: dict[str, SigningCredential]
) -> None:
    der = stamp_credentials["person"].certificate_der
    box = (300.0, 100.0, 500.0, 200.0)
    person = _appearance(
        blank_pdf(2),
        VisibleStamp(profile="person", image=StampImage(png=signature_png()), placement=BoxPlacement(page=-1, box=box)),
        der,
    )
    assert person.page == 1
    assert _overlaps(person.widget_box, person.image_box) and person.widget_box[0] <= person.image_box[0]
    cx, cy = (person.image_box[0] + person.image_box[2]) / 2, (person.image_box[1] + person.image_box[3]) / 2
    assert (cx, cy) == pytest.approx((400.0, 150.0))
    small = _appearance(
        blank_pdf(),
        VisibleStamp(
            profile="person", image=StampImage(png=signature_png()), placement=BoxPlacement(box=(0, 0, 54, 30))
        ),
        der,
    )
    assert small.image_box[2] - small.image_box[0] <= 54.01  # shrunk into a box smaller than the image
    # a seal over a named person signature field
    (field,) = [w.field_name for w in signature_widgets(PdfFileReader(BytesIO(chain["person"])))]
    named = _appearance(
        chain["person"],
        VisibleStamp(**{**SEAL.__dict__, "placement": SealOverPersonPlacement(person_field=field)}),
        der,
    )
    assert named.image_box == _appearance(chain["person"], SEAL, der).image_box
    with pytest.raises(InvalidInputError, match="no visible, signed signature field 'Nope'"):
        _appearance(
            chain["person"],
            VisibleStamp(**{**SEAL.__dict__, "placement": SealOverPersonPlacement(person_field="Nope")}),
            der,
        )
    with pytest.raises(InvalidInputError, match="too small for its 10 pt text"):
        _appearance(
            blank_pdf(),
            VisibleStamp(
                profile="attachment", document_number=NUMBER, placement=BoxPlacement(box=(400, 700, 450, 730))
            ),
            der,
        )


def test_physical_sizes_and_their_fallbacks(
    stamp_credentials: dict[str, SigningCredential], chain: dict[str, bytes]
) -> None:
    der = stamp_credentials["person"].certificate_der
    placement = BoxPlacement(box=(100, 100, 500, 400))

    def size(stamp: VisibleStamp, pdf: bytes | None = None) -> tuple[float, float]:
        x1, y1, x2, y2 = _appearance(pdf or blank_pdf(), stamp, der).image_box
        return (x2 - x1) * 25.4 / 72, (y2 - y1) * 25.4 / 72

    strokes = Image.open(BytesIO(signature_png(dpi=150))).getchannel("A").getbbox()
    assert strokes is not None
    pixels = (strokes[2] - strokes[0], strokes[3] - strokes[1])
    at_150_dpi = VisibleStamp(profile="person", image=StampImage(png=signature_png(dpi=150)), placement=placement)
    assert size(at_150_dpi) == pytest.approx((pixels[0] * 25.4 / 150, pixels[1] * 25.4 / 150), abs=0.01)
    registered = StampImage(png=signature_png(dpi=150), width_mm=50)
    assert size(VisibleStamp(profile="person", image=registered, placement=placement)) == pytest.approx(
        (50, 50 * pixels[1] / pixels[0]), abs=0.01
    )
    # no resolution, no registered size: a signature is fitted into 35 x 20 mm; a seal is refused
    assert size(VisibleStamp(profile="person", image=StampImage(png=signature_png(dpi=None)), placement=placement))[
        0
    ] == pytest.approx(35, abs=0.1)
    with pytest.raises(InvalidInputError, match="diameter"):
        size(VisibleStamp(profile="seal", image=StampImage(png=seal_png(dpi=None))), chain["person"])
    assert size(
        VisibleStamp(profile="seal", image=StampImage(png=seal_png(dpi=600))), chain["person"]
    ) == pytest.approx((36, 36), abs=0.3)


def test_a_seal_needs_a_person_signature_to_go_over(stamp_credentials: dict[str, SigningCredential]) -> None:
    with pytest.raises(InvalidInputError, match="shows no person signature"):
        _appearance(decision_pdf(), SEAL, stamp_credentials["seal"].certificate_der)


def test_a_title_that_is_not_on_the_page_is_refused(stamp_credentials: dict[str, SigningCredential]) -> None:
    stamp = VisibleStamp(**{**PERSON.__dict__, "placement": TextPlacement(title_text="GIÁM ĐỐC", name_text=NAME)})
    with pytest.raises(InvalidInputError, match="title 'GIÁM ĐỐC' is not found in the document"):
        _appearance(decision_pdf(), stamp, stamp_credentials["person"].certificate_der)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"profile": "individual"}, "profile must be"),
        ({"profile": "person", "placement": AnchorPlacement()}, "handwritten-signature image, and none is registered"),
        ({"profile": "person", "image": StampImage(png=signature_png())}, "placed by the title and name"),
        (
            {"profile": "person", "image": StampImage(png=signature_png()), "placement": AnchorPlacement()},
            "title and name lines",
        ),
        ({"profile": "seal"}, "seal image, and none is registered"),
        (
            {"profile": "seal", "image": StampImage(png=seal_png()), "placement": AnchorPlacement()},
            "over the person's signature",
        ),
        ({"profile": "attachment"}, "number and symbol"),
        ({"profile": "attachment", "document_number": "1\x07"}, "one line"),
        ({"profile": "attachment", "document_number": "1", "image": StampImage(png=seal_png())}, "shows no image"),
        (
            {
                "profile": "attachment",
                "document_number": "1",
                "placement": TextPlacement(title_text="A", name_text="B"),
            },
            "top right",
        ),
        ({"profile": "copy", "copy_form": "SAO CHỤP", "copy_agency": "X"}, "copy form must be"),
        ({"profile": "copy", "copy_form": "SAO Y"}, "copying agency"),
        ({"profile": "copy", "copy_form": "SAO Y", "copy_agency": "X", "details": True}, "only its Appendix I text"),
        ({"profile": "attachment", "document_number": "1", "copy_form": "SAO Y"}, "Only a copy stamp"),
    ],
)
def test_stamp_specs_are_checked(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        VisibleStamp(**arguments)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ((100, 100, 100, 200), "at least"),  # empty
        ((200, 100, 100, 200), "x1 < x2"),  # inverted
        ((-5, 0, 100, 100), "between 0 and"),  # negative
        ((0, 0, 100, 20000), "between 0 and"),  # beyond a PDF page
        ((0, 0, float("nan"), 100), "finite"),
        ((0, 0, 100), "four numbers"),
    ],
)
def test_bad_boxes_are_refused(box: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        BoxPlacement(box=box)


def test_bad_images_and_verification_lines_are_refused() -> None:
    opaque = BytesIO()
    Image.new("RGB", (40, 20), (255, 255, 255)).save(opaque, format="PNG")
    clear = BytesIO()
    Image.new("RGBA", (40, 20), (0, 0, 0, 0)).save(clear, format="PNG")
    for png, message in (
        (b"GIF89a....", "not a PNG"),
        (signature_png()[:60], "damaged"),
        (opaque.getvalue(), "transparent"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            StampImage(png=png)
    with pytest.raises(InvalidInputError, match="between 5 and 150 mm"):
        StampImage(png=seal_png(), width_mm=400)
    with pytest.raises(InvalidInputError, match="fully transparent"):
        from govsign.signing.stamp import check_png

        check_png(clear.getvalue())
    with pytest.raises(InvalidInputError, match="URL"):
        VerificationLine(reference="X", url="javascript:alert(1)")
    with pytest.raises(InvalidInputError, match="longer than 40"):
        VerificationLine(reference="X" * 41)
