"""Documents laid out as Decree 30/2020 Appendix I draws them, for the stamp and placement tests.

``decision_pdf()`` makes a one-page decision (form 1.3) with fpdf2 in Liberation Serif (Debian's
fonts-liberation2), which embeds its fonts as Type0/CID (Identity-H) subsets with ToUnicode maps,
as Word's "Save as PDF" does; ``libreoffice_decision_pdf()`` is the same decision exported by
LibreOffice 7.4 from ``data/decision.fodt`` (simple TrueType subsets with ToUnicode maps and
zero ascent/descent in their descriptors). Stamp images are drawn here too: a blue handwritten
signature and a red round seal, PNG with transparent backgrounds and a physical resolution.
"""

from __future__ import annotations

import functools
import math
from io import BytesIO
from pathlib import Path

from fpdf import FPDF
from PIL import Image, ImageDraw

DATA = Path(__file__).parent / "data"
FONT_DIR = Path("/usr/share/fonts/truetype/liberation2")
AGENCY = "ỦY BAN NHÂN DÂN TỈNH HÀ NAM"
TITLE_LINES = ("KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH")
NAME = "Nguyễn Văn An"
NUMBER = "123/QĐ-UBND"

_BODY = (
    ("I", "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;"),
    ("I", "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư;"),
    ("I", "Theo đề nghị của Giám đốc Sở Khoa học và Công nghệ tại Tờ trình số 45/TTr-SKHCN."),
    ("B", "QUYẾT ĐỊNH:"),
    ("", "Điều 1. Phê duyệt Kế hoạch chuyển đổi số của tỉnh Hà Nam năm 2027 kèm theo Quyết định này."),
    ("", "Điều 2. Quyết định này có hiệu lực kể từ ngày ký."),
    ("", "Điều 3. Chánh Văn phòng Ủy ban nhân dân tỉnh, Giám đốc các sở, ban, ngành và các tổ chức, "
         "cá nhân có liên quan chịu trách nhiệm thi hành Quyết định này./."),
)  # fmt: skip


@functools.cache
def decision_pdf() -> bytes:
    """A one-page A4 decision: header, title, body, and the signature block "KT. CHỦ TỊCH /
    PHÓ CHỦ TỊCH", four empty lines, "Nguyễn Văn An" in the right column."""
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_margins(30 * 72 / 25.4, 20 * 72 / 25.4, 15 * 72 / 25.4)
    pdf.set_auto_page_break(False)
    for style, name in (("", "Regular"), ("B", "Bold"), ("I", "Italic")):
        pdf.add_font("LiberationSerif", style, str(FONT_DIR / f"LiberationSerif-{name}.ttf"))
    pdf.set_creator("Microsoft® Word for Microsoft 365")
    pdf.add_page()
    left, width = pdf.l_margin, pdf.epw
    pdf.set_font("LiberationSerif", "", 13)
    pdf.set_xy(left, 57)
    pdf.cell(180, 16, "ỦY BAN NHÂN DÂN", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(style="B")
    pdf.cell(180, 16, "TỈNH HÀ NAM", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(style="")
    pdf.cell(180, 20, f"Số: {NUMBER}", align="C")
    pdf.set_xy(left + 185, 57)
    pdf.set_font(size=12, style="B")
    pdf.cell(width - 185, 16, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(size=13, style="B")
    pdf.cell(width - 185, 16, "Độc lập - Tự do - Hạnh phúc", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(style="I")
    pdf.cell(width - 185, 22, "Hà Nam, ngày 25 tháng 11 năm 2026", align="C")
    pdf.set_xy(left, 135)
    pdf.set_font(size=14, style="B")
    pdf.cell(width, 18, "QUYẾT ĐỊNH", align="C", new_x="LEFT", new_y="NEXT")
    pdf.cell(width, 18, "Về việc phê duyệt Kế hoạch chuyển đổi số năm 2027", align="C", new_x="LEFT", new_y="NEXT")
    pdf.cell(width, 30, "CHỦ TỊCH ỦY BAN NHÂN DÂN TỈNH HÀ NAM", align="C", new_x="LEFT", new_y="NEXT")
    for style, text in _BODY:
        pdf.set_font(size=14, style=style)
        pdf.multi_cell(width, 19, text, align="C" if style == "B" else "J", new_x="LEFT", new_y="NEXT")
    top = pdf.get_y() + 14
    pdf.set_xy(left, top)
    pdf.set_font(size=12, style="I")
    pdf.cell(220, 15, "Nơi nhận:", new_x="LEFT", new_y="NEXT")
    pdf.set_font(size=11, style="")
    for line in ("- Như Điều 3;", "- Chủ tịch, các PCT UBND tỉnh;", "- Lưu: VT, KGVX."):
        pdf.cell(220, 13, line, new_x="LEFT", new_y="NEXT")
    pdf.set_xy(left + 240, top)
    pdf.set_font(size=14, style="B")
    for line in TITLE_LINES:
        pdf.cell(width - 240, 17, line, align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_xy(left + 240, top + 2 * 17 + 4 * 17)
    pdf.cell(width - 240, 17, NAME, align="C")
    return bytes(pdf.output())


def libreoffice_decision_pdf() -> bytes:
    """The decision of ``data/decision.fodt`` as LibreOffice 7.4 exports it (committed)."""
    return (DATA / "decision-libreoffice.pdf").read_bytes()


def _png(image: Image.Image, dpi: float | None) -> bytes:
    output = BytesIO()
    if dpi is None:
        image.save(output, format="PNG")
    else:
        image.save(output, format="PNG", dpi=(dpi, dpi))
    return output.getvalue()


@functools.cache
def signature_png(dpi: float | None = 300.0, size_mm: tuple[float, float] = (38.0, 16.0)) -> bytes:
    """A blue handwritten-looking signature on a transparent background, ``size_mm`` at ``dpi``
    (with a few millimetres of transparent padding around the strokes)."""
    scale = (dpi or 300.0) / 25.4
    pad = 2.0
    width, height = round((size_mm[0] + 2 * pad) * scale), round((size_mm[1] + 2 * pad) * scale)
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    blue = (20, 40, 190, 255)
    x0, y0, w, h = pad * scale, pad * scale, size_mm[0] * scale, size_mm[1] * scale
    points = []
    for step in range(241):
        t = step / 240
        x = x0 + w * t
        y = y0 + h * (0.5 + 0.42 * math.sin(t * 5.2 * math.pi) * (1 - 0.5 * t))
        points.append((x, y))
    draw.line(points, fill=blue, width=max(2, round(0.45 * scale)), joint="curve")
    draw.line([(x0 + 0.1 * w, y0 + 0.85 * h), (x0 + w, y0 + 0.7 * h)], fill=blue, width=max(2, round(0.35 * scale)))
    return _png(image, dpi)


@functools.cache
def seal_png(dpi: float | None = 300.0, diameter_mm: float = 36.0) -> bytes:
    """A red round seal (two rings, the agency's name around, a star in the middle) on a
    transparent background, ``diameter_mm`` across at ``dpi`` (300 dpi when None, but then
    without a resolution in the file)."""
    from PIL import ImageFont

    scale = (dpi or 300.0) / 25.4
    side = round(diameter_mm * scale)
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    red = (210, 20, 30, 255)
    ring = max(2, round(0.7 * scale))
    draw.ellipse((0, 0, side - 1, side - 1), outline=red, width=ring)
    inner = round(side * 0.27)
    draw.ellipse((inner, inner, side - inner, side - inner), outline=red, width=max(1, ring // 2))
    centre = side / 2
    font = ImageFont.truetype(str(FONT_DIR / "LiberationSerif-Bold.ttf"), round(3.6 * scale))
    text = "ỦY BAN NHÂN DÂN • TỈNH HÀ NAM • "
    for number, letter in enumerate(text):  # each letter upright towards the centre, clockwise from the top
        angle = 2 * math.pi * number / len(text) - math.pi * 0.62
        glyph = Image.new("RGBA", (round(5 * scale), round(5 * scale)), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((glyph.width / 2, glyph.height / 2), letter, font=font, fill=red, anchor="mm")
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        radius = side * 0.385
        x, y = centre + radius * math.cos(angle), centre + radius * math.sin(angle)
        image.alpha_composite(glyph, (round(x - glyph.width / 2), round(y - glyph.height / 2)))
    star = [
        (centre + side * (0.13 if k % 2 == 0 else 0.055) * math.cos(math.pi / 2 + k * math.pi / 5),
         centre - side * (0.13 if k % 2 == 0 else 0.055) * math.sin(math.pi / 2 + k * math.pi / 5))
        for k in range(10)
    ]  # fmt: skip
    draw.polygon(star, fill=red)
    return _png(image, dpi)


@functools.cache
def attachment_pdf() -> bytes:
    """A one-page attachment in a separate file (Decree 30/2020, Appendix I, item 8(b)): the plan
    the decision approves."""
    pdf = FPDF(format="A4", unit="pt")
    pdf.set_margins(30 * 72 / 25.4, 20 * 72 / 25.4, 15 * 72 / 25.4)
    for style, name in (("", "Regular"), ("B", "Bold"), ("I", "Italic")):
        pdf.add_font("LiberationSerif", style, str(FONT_DIR / f"LiberationSerif-{name}.ttf"))
    pdf.add_page()
    width = pdf.epw
    pdf.set_y(70)
    pdf.set_font("LiberationSerif", "B", 14)
    pdf.cell(width, 18, "KẾ HOẠCH", align="C", new_x="LEFT", new_y="NEXT")
    pdf.cell(width, 18, "Chuyển đổi số của tỉnh Hà Nam năm 2027", align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_font(style="I", size=13)
    pdf.cell(width, 18, f"(Kèm theo Quyết định số {NUMBER} ngày 25/11/2026 của Chủ tịch UBND tỉnh)", align="C",
             new_x="LEFT", new_y="NEXT")  # fmt: skip
    pdf.ln(12)
    pdf.set_font(style="B", size=14)
    pdf.cell(width, 19, "I. MỤC ĐÍCH, YÊU CẦU", new_x="LEFT", new_y="NEXT")
    pdf.set_font(style="", size=14)
    for text in (
        "1. Phát triển chính quyền số, kinh tế số và xã hội số trên địa bàn tỉnh.",
        "2. Bảo đảm 100% văn bản đi, đến được ký số và trao đổi dưới dạng điện tử.",
    ):
        pdf.multi_cell(width, 19, text, align="J", new_x="LEFT", new_y="NEXT")
    return bytes(pdf.output())


def render_screenshots(folder: Path) -> None:  # pragma: no cover - run by hand, see below
    """The four profiles drawn on the decision (and its attachment), signed with throwaway
    software keys (the drawing is the signing core's own), rendered at 100 dpi and cropped:
    ``stamp-person.png``, ``stamp-seal.png``, ``stamp-attachment.png``, ``stamp-copy.png``.

    ``PYTHONPATH=src:tests .venv/bin/python -m signing.decree30_pages docs/images``"""
    import datetime as dt
    import subprocess
    import tempfile

    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    from govsign.signing.signing_time import VietnamTimePdfSigner
    from govsign.signing.stamp import StampImage, TextPlacement, VerificationLine, VisibleStamp, build_stamp_appearance

    def signer(common_name: str) -> tuple[bytes, signers.SimpleSigner]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ủy ban nhân dân tỉnh Hà Nam")])  # fmt: skip
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(dt.datetime(2026, 1, 1))
            .not_valid_after(dt.datetime(2027, 1, 1)).sign(key, hashes.SHA256())
        )  # fmt: skip
        der = certificate.public_bytes(serialization.Encoding.DER)
        private = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())  # fmt: skip
        simple = signers.SimpleSigner(signing_cert=asn1_x509.Certificate.load(der),
                                      signing_key=asn1_keys.PrivateKeyInfo.load(private), cert_registry=None)  # fmt: skip
        return der, simple

    when = dt.datetime(2026, 11, 25, 2, 15, 30, tzinfo=dt.UTC)

    def sign(pdf: bytes, stamp: VisibleStamp, who: tuple[bytes, signers.SimpleSigner], field: str) -> bytes:
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
        appearance = build_stamp_appearance(stamp, document=writer, field_name=field, certificate_der=who[0],
                                            signing_time=when)  # fmt: skip
        pdf_signer = VietnamTimePdfSigner(
            signers.PdfSignatureMetadata(field_name=field, subfilter=fields.SigSeedSubFilter.PADES), signer=who[1],
            stamp_style=appearance.stamp_style, new_field_spec=appearance.new_field_spec, signing_time=when,
        )  # fmt: skip
        output = BytesIO()
        pdf_signer.sign_pdf(writer, output=output)
        return output.getvalue()

    person, agency = signer(NAME), signer("Ủy ban nhân dân tỉnh Hà Nam")
    signed = sign(decision_pdf(), VisibleStamp(
        profile="person", image=StampImage(png=signature_png()),
        placement=TextPlacement(title_text="PHÓ CHỦ TỊCH", name_text=NAME),
        verification=VerificationLine(reference="HN-7K3F9QX2", url="https://xacthuc.hanam.gov.vn/v/7K3F9QX2"),
    ), person, "ChuKyLanhDao")  # fmt: skip
    sealed = sign(signed, VisibleStamp(profile="seal", image=StampImage(png=seal_png()),
                                       verification=VerificationLine(reference="HN-8M2C4RT6")), agency, "DauCoQuan")  # fmt: skip
    copied = sign(sealed, VisibleStamp(profile="copy", copy_form="SAO Y", copy_agency=f"VĂN PHÒNG {AGENCY}"),
                  agency, "BanSao")  # fmt: skip
    attached = sign(attachment_pdf(), VisibleStamp(profile="attachment", document_number=NUMBER), agency, "PhuLuc")
    # crops at 100 dpi, in pixels: the signature block; the top of the page
    block, top = (90, 572, 800, 790), (90, 0, 800, 240)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name, pdf, crop in (("person", signed, block), ("seal", sealed, block), ("copy", copied, top),
                                ("attachment", attached, top)):  # fmt: skip
            path = Path(scratch) / f"{name}.pdf"
            path.write_bytes(pdf)
            subprocess.run(["pdftoppm", "-png", "-r", "100", "-singlefile", str(path), str(path.with_suffix(""))],
                           check=True)  # fmt: skip
            with Image.open(path.with_suffix(".png")) as page:
                page.convert("RGB").crop(crop).quantize(colors=64).save(folder / f"stamp-{name}.png", optimize=True)


if __name__ == "__main__":  # pragma: no cover
    import sys

    render_screenshots(Path(sys.argv[1]))
