"""The public verification page (no login): upload a signed, a tampered and an unsigned PDF and
read the conclusion and the signer's Vietnamese name; follow a stamp's reference and confirm the
document; English on request; refusals as bilingual pages with 4xx statuses, never a 500."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from io import BytesIO

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from helpers.pdf import blank_pdf
from helpers.world import AGENCY_A1, World, enrol, post_pdf, signature_events
from signing.decree30_pages import signature_png

PIN = "731942"


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
        seal = enrol(client, world["ra-officer"], AGENCY_A1, profile="organization")
    with world.app(dual_control="", public_verify_per_minute=1000, report_seal_credential=seal) as client:
        yield client


@pytest.fixture(scope="module")
def signed(world: World, api: TestClient) -> dict[str, object]:
    """An official's stamped signature (person stamp with its verification line), through the API."""
    ra = world["ra-officer"].headers
    serial = enrol(api, world["ra-officer"], AGENCY_A1, profile="individual")
    assert api.put(f"/api/v1/credentials/{serial}/factors/pin", headers=ra, json={"pin": PIN}).status_code == 204
    image = {"image_png": base64.b64encode(signature_png()).decode()}
    assert api.put(f"/api/v1/credentials/{serial}/stamp-image", headers=ra, json=image).status_code == 200
    pdf = blank_pdf()
    digest = base64.b64encode(hashlib.sha256(pdf).digest()).decode()
    grant = api.post(
        f"/api/v1/credentials/{serial}/activations",
        headers=world["signer"].headers,
        json={"hashes": [digest], "pin": PIN},
    ).json()["activation"]
    response = post_pdf(
        api, world["signer"].headers, pdf, credential=serial, level="B-T", stamp="person", stamp_box="330,60,565,150",
        activation=grant,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    reference = signature_events(world, serial)[-1]["details"]["verification_reference"]
    name = api.get(f"/api/v1/certificates/{serial}", headers=ra).json()["subject"]
    return {"pdf": response.content, "reference": reference, "common_name": re.search(r"CN=([^,]+)", name).group(1)}


def upload(api: TestClient, pdf: bytes, path: str = "/verify", **params: str) -> tuple[int, str]:
    response = api.post(path, params=params, files={"document": ("van-ban.pdf", pdf, "application/pdf")})
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return response.status_code, response.text


def conclusion(page: str) -> str:
    found = re.search(r'<p id="conclusion" class="conclusion [a-z-]+" role="status">([^<]+)</p>', page)
    assert found, page[:2000]
    return found.group(1)


def test_the_page_itself(api: TestClient) -> None:
    assert api.get("/", follow_redirects=False).headers["location"] == "/verify"
    page = api.get("/verify")
    assert page.status_code == 200 and 'lang="vi"' in page.text and "Kiểm tra chữ ký số" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'none'" in policy
    assert re.findall(r'(?:href|src|action)="(https?:)?//', page.text) == []  # nothing from another origin
    assert '<label for="document">' in page.text and 'name="document"' in page.text
    css = api.get("/verify/static/verify.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    english = api.get("/verify?lang=en")
    assert 'lang="en"' in english.text and "Check the digital signatures" in english.text
    assert 'lang="en"' in api.get("/verify").text  # remembered in a cookie
    api.get("/verify?lang=vi")


def test_signed_tampered_and_unsigned_pdfs(api: TestClient, signed: dict[str, object]) -> None:
    pdf = signed["pdf"]
    assert isinstance(pdf, bytes)
    status, page = upload(api, pdf)
    assert status == 200 and conclusion(page) == "HỢP LỆ", page[-3000:]
    assert str(signed["common_name"]) in page and "(UTC+07:00)" in page and "ngày " in page
    report_id = re.search(r'href="/verify/reports/([0-9a-f]{32})\.pdf"', page).group(1)
    sealed = api.get(f"/verify/reports/{report_id}.pdf")
    assert sealed.status_code == 200 and sealed.content.startswith(b"%PDF-")
    tampered = pdf.replace(b"/MediaBox [0 0 595 842]", b"/MediaBox [0 0 595 843]", 1)
    if tampered == pdf:
        tampered = bytearray(pdf)
        tampered[200] ^= 1
    assert conclusion(upload(api, bytes(tampered))[1]) in ("KHÔNG HỢP LỆ", "CHƯA XÁC ĐỊNH ĐƯỢC")
    assert conclusion(upload(api, blank_pdf())[1]) == "Tài liệu không có chữ ký số"
    assert conclusion(upload(api, pdf, lang="en")[1]) == "VALID"
    api.get("/verify?lang=vi")


def test_a_stamps_reference_resolves_and_confirms_the_document(api: TestClient, signed: dict[str, object]) -> None:
    reference = str(signed["reference"])
    assert re.fullmatch(r"GS-[A-Z2-7]{26}", reference)
    page = api.get(f"/v/{reference}")
    assert page.status_code == 200 and str(signed["common_name"]) in page.text and reference in page.text
    pdf = signed["pdf"]
    assert isinstance(pdf, bytes)
    status, confirmed = upload(api, pdf, f"/v/{reference}")
    assert status == 200 and "ĐÚNG LÀ TÀI LIỆU ĐÃ KÝ" in confirmed and "HỢP LỆ" in confirmed
    writer = IncrementalPdfFileWriter(BytesIO(pdf))  # a later incremental update keeps the signed bytes
    writer.set_info(generic.DictionaryObject({generic.NameObject("/Subject"): generic.TextStringObject("Bản sao")}))
    later_out = BytesIO()
    writer.write(later_out)
    later = later_out.getvalue()
    status, page = upload(api, later, f"/v/{reference}")
    assert "ĐÚNG LÀ TÀI LIỆU ĐÃ KÝ" in page, page[page.find("<main>") : page.find("<main>") + 1500]
    assert "KHÔNG PHẢI TÀI LIỆU" in upload(api, blank_pdf(), f"/v/{reference}")[1]
    for unknown in ("GS-" + "A" * 26, "GS-123", "x" * 300):
        missing = api.get(f"/v/{unknown}")
        assert missing.status_code == 404 and "Không có chữ ký nào mang mã này" in missing.text


def test_refusals_are_bilingual_pages_with_4xx(world: World) -> None:
    address = f"203.0.113.{secrets.randbelow(250) + 1}"  # its own rate, whatever ran before in this minute
    if time.time() % 60 > 50:  # the six requests below count in one minute
        time.sleep(61 - time.time() % 60)
    with world.app(client=(address, 50000), public_max_upload_bytes=64 * 1024, public_verify_per_minute=5) as api:
        status, page = upload(api, b"%PDF-1.7\n" + b"0" * (200 * 1024))
        assert status == 413 and "Tệp quá lớn" in page and "File too large" in page
        status, page = upload(api, b"just some text, not a PDF")
        assert status == 415 and "Loại tệp" in page and "Unsupported file type" in page
        wrong = api.post("/verify", content=b"x", headers={"Content-Type": "text/plain"})
        assert wrong.status_code == 415
        empty = api.post("/verify", files={"document": ("a.pdf", b"", "application/pdf")})
        assert empty.status_code == 400 and "trống" in empty.text
        assert upload(api, blank_pdf())[0] == 200  # the fifth of the minute
        status, page = upload(api, blank_pdf())
        assert status == 429 and "Quá nhiều yêu cầu" in page and "Too many requests" in page
