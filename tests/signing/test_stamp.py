"""Decree 30 visible signature appearances: drawn by pyHanko with keys on the shared SoftHSM2 token,
then checked by rendering (poppler), by reading the appearance stream and its embedded font, by
pyHanko's validation and by ``qpdf --check``."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from PIL import Image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from govsign.errors import ConfigurationError, InvalidInputError
from govsign.keystore.api import KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.pdf import HSMSigner
from govsign.signing.stamp import (
    StampAppearance,
    VisibleStamp,
    build_stamp_appearance,
    find_font,
    load_font,
    resolve_page,
)
from helpers.credentials import signing_credential
from helpers.pdf import blank_pdf, require_tool

ACTOR = "test:stamp"
AGENCY = "Ủy ban nhân dân tỉnh Hà Nam"
PERSON = "Nguyễn Văn Ánh"
TITLE = "Chủ tịch"
SIGNING_TIME = datetime(2026, 11, 25, 7, 3, 7, tzinfo=UTC)  # 14:03:07 in Vietnam
ORG_BOX = (60.0, 80.0, 360.0, 200.0)
PERSON_BOX = (300.0, 240.0, 540.0, 400.0)


@pytest.fixture(scope="module")
def stamp_credentials(initialized_services: Services, hierarchy: HierarchyResult) -> dict[str, SigningCredential]:
    """An agency seal certificate and an official's certificate, with Vietnamese names."""
    return {
        profile: signing_credential(
            initialized_services, hierarchy, subject=subject, profile=profile, email="vanthu@hanam.gov.vn"
        )
        for profile, subject in (
            ("organization", f"CN={AGENCY},O={AGENCY},C=VN"),
            ("individual", f"CN={PERSON},O={AGENCY},C=VN"),
        )
    }


def _png(
    color: tuple[int, int, int], size: tuple[int, int] = (120, 120), *, dpi: int = 96, alpha: bool = True
) -> bytes:
    """A disc of ``color`` on a transparent background (a seal or signature stand-in)."""
    image = Image.new("RGBA" if alpha else "RGB", size, (0, 0, 0, 0) if alpha else (255, 255, 255))
    from PIL import ImageDraw

    ImageDraw.Draw(image).ellipse((4, 4, size[0] - 4, size[1] - 4), fill=(*color, 255))
    output = BytesIO()
    image.save(output, format="PNG", dpi=(dpi, dpi))
    return output.getvalue()


def _sign(pdf: bytes, credential: SigningCredential, store: KeyStore, appearance: StampAppearance) -> bytes:
    field_name = appearance.new_field_spec.sig_field_name
    pdf_signer = signers.PdfSigner(
        signers.PdfSignatureMetadata(field_name=field_name, subfilter=SigSeedSubFilter.PADES),
        signer=HSMSigner(credential, store),
        stamp_style=appearance.stamp_style,
        new_field_spec=appearance.new_field_spec,
    )
    output = BytesIO()
    pdf_signer.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf)), output=output, appearance_text_params=appearance.appearance_text_params
    )
    return output.getvalue()


def _validation_context(hierarchy: HierarchyResult) -> ValidationContext:
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
        other_certs=[asn1_x509.Certificate.load(hierarchy.issuing.certificate_der)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )


def _tool(name: str) -> str:
    path = require_tool(name)
    return path


def _render(pdf: bytes, tmp_path: Path, dpi: int = 72) -> Image.Image:
    (tmp_path / "doc.pdf").write_bytes(pdf)
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", str(dpi), "-f", "1", "-l", "1", "-singlefile", str(tmp_path / "doc.pdf"),
         str(tmp_path / "page")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return Image.open(tmp_path / "page.png").convert("RGB")


def _count(image: Image.Image, box: tuple[float, float, float, float], kind: str) -> int:
    """Pixels of a colour kind inside a PDF box (72 dpi rendering, page height 842)."""
    x1, y1, x2, y2 = box
    crop = image.crop((int(x1), int(842 - y2), int(x2), int(842 - y1)))
    pixels: Any = crop.get_flattened_data() if hasattr(crop, "get_flattened_data") else crop.getdata()
    if kind == "red":
        return sum(1 for r, g, b in pixels if r > 150 and g < 90 and b < 90)
    return sum(1 for r, g, b in pixels if b > 130 and r < 90 and g < 130)


def _qpdf_check(pdf: bytes, tmp_path: Path) -> None:
    path = tmp_path / "check.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([_tool("qpdf"), "--check", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def _appearance_fonts(pdf: bytes, field_name: str) -> tuple[bytes, list[str]]:
    """The widget's normal appearance stream data and the ToUnicode text of its embedded fonts."""
    reader = PdfFileReader(BytesIO(pdf))
    fields = reader.root["/AcroForm"]["/Fields"]
    widget = next(f.get_object() for f in fields if f.get_object()["/T"] == field_name)
    stream = widget["/AP"]["/N"].get_object()
    unicode_maps: list[str] = []

    def walk(xobject: Any) -> None:
        resources = xobject.get("/Resources", {})
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            assert font["/Subtype"] == "/Type0"
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            assert re.fullmatch(r"/[A-Z]{6}\+.+", str(descriptor["/FontName"])), descriptor["/FontName"]
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor
            unicode_maps.append(font["/ToUnicode"].get_object().data.decode("latin-1"))
        for child in resources.get("/XObject", {}).values():
            child = child.get_object()
            if child.get("/Subtype") == "/Form":
                walk(child)

    walk(stream)
    return stream.data, unicode_maps


def _mapped_text(unicode_maps: list[str]) -> str:
    """All characters the ToUnicode maps produce (bfchar and bfrange destinations, UTF-16BE hex)."""
    destinations: list[str] = []
    for cmap in unicode_maps:
        section = ""
        for line in cmap.splitlines():
            if "beginbfchar" in line or "beginbfrange" in line:
                section = "range" if "range" in line else "char"
            elif "[" in line and section == "range":
                destinations += re.findall(r"<([0-9A-Fa-f]+)>", line.split("[", 1)[1])
            elif section == "char" and (pair := re.fullmatch(r"\s*<[0-9A-Fa-f]+>\s*<([0-9A-Fa-f]+)>\s*", line)):
                destinations.append(pair.group(1))
    return "".join(bytes.fromhex(value).decode("utf-16-be") for value in destinations)


def test_organization_seal_is_red_has_vietnamese_text_and_stays_valid(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    credential = stamp_credentials["organization"]
    stamp = VisibleStamp(page=0, box=ORG_BOX, kind="organization", image_png=_png((220, 0, 0)))
    appearance = build_stamp_appearance(
        stamp, field_name="Seal", certificate_der=credential.certificate_der, signing_time=SIGNING_TIME
    )
    assert appearance.lines == (
        f"Ký bởi: {AGENCY}",
        f"Cơ quan: {AGENCY}",
        "Thời gian ký: 25.11.2026 14:03:07 +07:00",
        "(ISO 8601: 2026-11-25T14:03:07+07:00)",
    )
    assert appearance.new_field_spec.box == (60, 80, 360, 200)
    signed = _sign(blank_pdf(), credential, store, appearance)

    _qpdf_check(signed, tmp_path)
    embedded = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    status = validate_pdf_signature(embedded, _validation_context(hierarchy))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]

    data, unicode_maps = _appearance_fonts(signed, "Seal")
    mapped = _mapped_text(unicode_maps)
    for char in set("".join(appearance.lines)) - {" "}:
        assert char in mapped, char  # every glyph drawn maps back to its NFC character
    assert b"0.8 0 0 rg" in data or b"0.8 0 0 rg" in _all_form_data(signed, "Seal")

    page = _render(signed, tmp_path)
    red = _count(page, ORG_BOX, "red")
    assert red > 2000  # the seal disc (~80 pt across at 96 dpi) and red text
    assert _count(page, ORG_BOX, "blue") == 0
    assert _count(page, (0, 0, 595, 60), "red") == 0  # nothing outside the box

    # pdftotext reads annotation appearances with poppler >= 21; when it does, the text is exact.
    text = subprocess.run(
        [_tool("pdftotext"), "-layout", str(tmp_path / "doc.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    if text.strip():
        for line in appearance.lines:
            assert line in " ".join(text.split()) or line.split(": ")[-1] in text, (line, text)


def _all_form_data(pdf: bytes, field_name: str) -> bytes:
    reader = PdfFileReader(BytesIO(pdf))
    fields = reader.root["/AcroForm"]["/Fields"]
    widget = next(f.get_object() for f in fields if f.get_object()["/T"] == field_name)
    collected: list[bytes] = []

    def walk(xobject: Any) -> None:
        collected.append(xobject.data)
        resources = xobject.get("/Resources", {})
        for child in resources.get("/XObject", {}).values():
            child = child.get_object()
            if child.get("/Subtype") == "/Form":
                walk(child)

    walk(widget["/AP"]["/N"].get_object())
    return b"\n".join(collected)


def test_individual_signature_is_blue_with_title_and_keeps_the_seal_valid(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    person = stamp_credentials["individual"]
    stamp = VisibleStamp(
        page=-1, box=PERSON_BOX, kind="individual", image_png=_png((0, 40, 200), (200, 80)), title=TITLE
    )
    appearance = build_stamp_appearance(
        stamp, field_name="Signer", certificate_der=person.certificate_der, signing_time=SIGNING_TIME
    )
    assert appearance.lines == (
        TITLE,
        f"Ký bởi: {PERSON}",
        f"Cơ quan: {AGENCY}",
        "Thời gian ký: 25.11.2026 14:03:07 +07:00",
        "(ISO 8601: 2026-11-25T14:03:07+07:00)",
    )
    signed = _sign(blank_pdf(), person, store, appearance)

    # The agency's seal second, over the left third of the person's signature (Decree 30).
    seal_box = (PERSON_BOX[0] - 60, PERSON_BOX[1] + 10, PERSON_BOX[0] + 80, PERSON_BOX[1] + 130)
    seal = VisibleStamp(box=seal_box, kind="organization", image_png=_png((220, 0, 0), (100, 100)))
    organization = stamp_credentials["organization"]
    seal_appearance = build_stamp_appearance(
        seal, field_name="Seal", certificate_der=organization.certificate_der, signing_time=SIGNING_TIME
    )
    sealed = _sign(signed, organization, store, seal_appearance)

    _qpdf_check(sealed, tmp_path)
    reader = PdfFileReader(BytesIO(sealed))
    assert len(reader.embedded_signatures) == 2
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, _validation_context(hierarchy))
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]

    _, unicode_maps = _appearance_fonts(sealed, "Signer")
    mapped = _mapped_text(unicode_maps)
    for char in set("".join(appearance.lines)) - {" "}:
        assert char in mapped, char

    page = _render(signed, tmp_path)
    right_part = (seal_box[2] + 2, PERSON_BOX[1], PERSON_BOX[2], PERSON_BOX[3])
    assert _count(page, right_part, "blue") > 1000
    assert _count(page, PERSON_BOX, "red") == 0


def test_stamp_without_image_is_text_only(
    stamp_credentials: dict[str, SigningCredential], store: KeyStore, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    credential = stamp_credentials["individual"]
    stamp = VisibleStamp(box=(40, 40, 300, 120), kind="individual")
    appearance = build_stamp_appearance(
        stamp, field_name="Sig", certificate_der=credential.certificate_der, signing_time=SIGNING_TIME
    )
    assert appearance.lines[0] == f"Ký bởi: {PERSON}"
    signed = _sign(blank_pdf(), credential, store, appearance)
    _qpdf_check(signed, tmp_path)
    assert _count(_render(signed, tmp_path), (40, 40, 300, 120), "blue") > 100


def test_signing_time_is_shown_in_vietnam_time_whatever_zone_it_comes_in(
    stamp_credentials: dict[str, SigningCredential],
) -> None:
    stamp = VisibleStamp(box=(0, 0, 200, 80), kind="organization")
    der = stamp_credentials["organization"].certificate_der
    appearance = build_stamp_appearance(
        stamp, field_name="S", certificate_der=der, signing_time=datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    )
    assert appearance.appearance_text_params["signing_time"] == "01.01.2027 06:30:00 +07:00"
    assert appearance.appearance_text_params["signing_time_iso"] == "2027-01-01T06:30:00+07:00"
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        build_stamp_appearance(stamp, field_name="S", certificate_der=der, signing_time=datetime(2026, 1, 1))


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
        VisibleStamp(box=box, kind="organization")


def test_bad_images_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="not a PNG"):
        VisibleStamp(box=(0, 0, 100, 100), kind="organization", image_png=b"GIF89a....")
    with pytest.raises(InvalidInputError, match="damaged"):
        VisibleStamp(box=(0, 0, 100, 100), kind="organization", image_png=_png((200, 0, 0))[:60])
    with pytest.raises(InvalidInputError, match="transparent"):
        VisibleStamp(box=(0, 0, 100, 100), kind="organization", image_png=_png((200, 0, 0), alpha=False))


def test_other_refusals() -> None:
    with pytest.raises(InvalidInputError, match="kind"):
        VisibleStamp(box=(0, 0, 100, 100), kind="agency")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="title"):
        VisibleStamp(box=(0, 0, 100, 100), kind="organization", title="Chủ tịch")
    with pytest.raises(InvalidInputError, match="title"):
        VisibleStamp(box=(0, 0, 100, 100), kind="individual", title="Chủ\ntịch")
    with pytest.raises(InvalidInputError, match="certificate"):
        build_stamp_appearance(
            VisibleStamp(box=(0, 0, 100, 100), kind="individual"),
            field_name="S",
            certificate_der=b"\x30\x03\x02\x01\x01",
            signing_time=SIGNING_TIME,
        )


def test_title_is_normalized_to_nfc() -> None:
    decomposed = "Chu\u0309 ti\u0323ch"  # "Chủ tịch" with combining marks
    assert VisibleStamp(box=(0, 0, 100, 100), kind="individual", title=decomposed).title == "Chủ tịch"


def test_page_is_resolved_against_the_document() -> None:
    assert resolve_page(VisibleStamp(page=-1, box=(0, 0, 100, 100), kind="organization"), 3) == 2
    assert resolve_page(VisibleStamp(page=2, box=(0, 0, 100, 100), kind="organization"), 3) == 2
    for page in (3, -4):
        with pytest.raises(InvalidInputError, match="page"):
            resolve_page(VisibleStamp(page=page, box=(0, 0, 100, 100), kind="organization"), 3)


def test_font_lookup_and_cache(tmp_path: Path) -> None:
    assert load_font() is load_font(find_font())  # one factory per font file
    with pytest.raises(ConfigurationError, match="does not exist"):
        find_font(tmp_path / "missing.ttf")
    (tmp_path / "broken.ttf").write_bytes(b"not a font")
    with pytest.raises(ConfigurationError, match="not a readable"):
        load_font(tmp_path / "broken.ttf")
