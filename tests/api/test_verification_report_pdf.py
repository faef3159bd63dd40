"""`GET /api/v1/verifications/{id}?format=pdf`: the stored report as a PDF a clerk can forward,
in Vietnamese and English, sealed (PAdES B-LT) by the service's seal credential. pdftotext gives
the Vietnamese texts back exactly, poppler's pdfsig says the seal is valid and trusted, and our own
verification passes it."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from govsign.audit.events import AuditQuery
from govsign.services.verification_reports import SEAL_ACTOR
from helpers.pdf import blank_pdf, require_tool
from helpers.world import AGENCY_A1, ORGANIZATION_SUBJECT, World, assert_problem, post_pdf, tag


def _organization(world: World, client: TestClient, name: str) -> str:
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=f"{name} {tag()}"),
        "key_algorithm": "ec-p256",
        "agency_id": AGENCY_A1,
    }
    response = client.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


@pytest.fixture(scope="module")
def unsealed(world: World) -> Iterator[TestClient]:
    """An app without a seal credential."""
    with world.app(dual_control="") as client:
        yield client


@pytest.fixture(scope="module")
def seal_serial(world: World, unsealed: TestClient) -> str:
    return _organization(world, unsealed, "Dấu kiểm tra")


@pytest.fixture(scope="module")
def api(world: World, seal_serial: str) -> Iterator[TestClient]:
    with world.app(dual_control="", report_seal_credential=seal_serial) as client:
        yield client


@pytest.fixture(scope="module")
def report(world: World, api: TestClient) -> dict[str, object]:
    """The report of an agency's B-T signature, verified through the API."""
    signer = _organization(world, api, "Văn thư")
    signed = post_pdf(api, world["signer"].headers, blank_pdf(), credential=signer, level="B-T")
    assert signed.status_code == 200, signed.text
    verified = api.post(
        "/api/v1/verifications",
        headers={**world["verifier"].headers, "Content-Type": "application/pdf"},
        content=signed.content,
    )
    assert verified.status_code == 201, verified.text
    body: dict[str, object] = verified.json()
    assert body["conclusion"] == "valid", body
    return body


@pytest.fixture(scope="module")
def report_pdf(world: World, api: TestClient, report: dict[str, object]) -> bytes:
    response = api.get(f"/api/v1/verifications/{report['id']}?format=pdf", headers=world["verifier"].headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f"verification-{report['id']}.pdf" in response.headers["content-disposition"]
    return response.content


def _words(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def test_pdftotext_shows_the_vietnamese_texts_exactly(
    report: dict[str, object], report_pdf: bytes, tmp_path: Path
) -> None:
    pdftotext = require_tool("pdftotext")
    (tmp_path / "report.pdf").write_bytes(report_pdf)
    shown = subprocess.run(
        [pdftotext, "-enc", "UTF-8", str(tmp_path / "report.pdf"), "-"], capture_output=True, check=True
    ).stdout.decode()
    words = _words(shown)
    signature = report["signatures"][0]  # type: ignore[index]
    expected = [
        "BÁO CÁO KIỂM TRA CHỮ KÝ SỐ",
        "Kết luận: HỢP LỆ / Conclusion: VALID",
        "Người ký / signer",
        signature["signer"]["common_name"],
        signature["signer"]["organization"],
        "Toàn vẹn / integrity",
        "Tình trạng thu hồi / revocation",
        "Chưa bị thu hồi / not revoked",
        "Phạm vi ký / coverage",
        "Dấu thời gian 1 / time-stamp 1",
        str(report["id"]),
    ]
    expected += [message["vi"] for message in signature["messages"]]
    expected += [message["en"] for message in signature["messages"]]
    for text in expected:
        assert _words(text) in words, (text, shown)


def test_pdfsig_shows_the_seal_valid_and_trusted(world: World, report_pdf: bytes, tmp_path: Path) -> None:
    pdfsig = require_tool("pdfsig")
    certutil = require_tool("certutil")
    nss = tmp_path / "nss"
    nss.mkdir()
    (tmp_path / "root.pem").write_bytes(world.deployment.root.public_bytes(Encoding.PEM))
    subprocess.run([certutil, "-N", "-d", str(nss), "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [certutil, "-A", "-d", str(nss), "-n", "root", "-t", "CT,C,C", "-i", str(tmp_path / "root.pem")],
        check=True,
        capture_output=True,
    )
    (tmp_path / "report.pdf").write_bytes(report_pdf)
    # -no-ocsp: the test app answers no OCSP URL over the network; the seal is B-LT, its revocation
    # evidence is in the document (which pdfsig does not read)
    shown = subprocess.run(
        [pdfsig, "-nssdir", str(nss), "-no-ocsp", str(tmp_path / "report.pdf")], capture_output=True, text=True
    )
    text = shown.stdout + shown.stderr
    assert text.count("Signature #") == 1, text
    assert "Signature is Valid." in text and "Certificate is Trusted." in text, text
    assert "Dấu kiểm tra" in text, text


def test_the_seal_verifies_as_a_pades_b_lt_signature(world: World, api: TestClient, report_pdf: bytes) -> None:
    verified = api.post(
        "/api/v1/verifications",
        headers={**world["verifier"].headers, "Content-Type": "application/pdf"},
        content=report_pdf,
    )
    assert verified.status_code == 201, verified.text
    body = verified.json()
    assert body["conclusion"] == "valid", json.dumps(body, ensure_ascii=False)
    (seal,) = body["signatures"]
    assert seal["level"] == "PAdES-BASELINE-LT"
    assert seal["field_name"] == "GovsignReportSeal"
    # the DSS of B-LT follows the signature: a permitted change
    assert (seal["coverage"], seal["modifications_after_signing"]) == ("entire-revision", "permitted")


def test_the_sealed_report_is_made_once_and_audited_as_a_signature(
    world: World, api: TestClient, report: dict[str, object], report_pdf: bytes, seal_serial: str
) -> None:
    again = api.get(f"/api/v1/verifications/{report['id']}?format=pdf", headers=world["auditor"].headers)
    assert again.status_code == 200 and again.content == report_pdf
    with world.services.database.read_only() as ports:
        events = ports.audit.search(AuditQuery(action="signature.create", object_id=seal_serial.lower(), limit=10))
    assert [event["actor"] for event in events] == [SEAL_ACTOR]


def test_without_a_seal_credential_the_pdf_report_is_a_problem_naming_the_setting(
    world: World, unsealed: TestClient, report: dict[str, object]
) -> None:
    other = unsealed.post(
        "/api/v1/verifications",
        headers={**world["verifier"].headers, "Content-Type": "application/pdf"},
        content=blank_pdf(),
    ).json()
    problem = assert_problem(
        unsealed.get(f"/api/v1/verifications/{other['id']}?format=pdf", headers=world["verifier"].headers), 503
    )
    assert "GOVSIGN_REPORT_SEAL_CREDENTIAL" in problem["detail"]


def test_an_unknown_report_has_no_pdf(world: World, api: TestClient) -> None:
    assert_problem(api.get(f"/api/v1/verifications/{'0' * 32}?format=pdf", headers=world["verifier"].headers), 404)
