"""The signing endpoints (`/api/v1/signatures/...`) over the platform world: PAdES B-B to B-LTA
verified by pyHanko, CAdES detached verified by ``openssl cms -verify``, digest batches, S/MIME;
agency scoping, revoked and held credentials refused, bad input refused, and one audit event per
call with the document hash and never the content."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.validation import validate_pdf_signature

from govsign.services.documents import SpooledDocument
from helpers.pdf import blank_pdf, require_tool
from helpers.pdf import chain_context as validation_context
from helpers.world import (
    AGENCY_A1,
    ORGANIZATION_SUBJECT,
    World,
    assert_problem,
    enrol,
    post_cms,
    post_document,
    post_pdf,
    signature_events,
    tag,
)

DOCUMENT = "Công văn số 123/BTP — nội dung bí mật không được ghi vào nhật ký.".encode()
SEAL_EMAIL = "vanthu@moj.gov.vn"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="", max_document_bytes=4 * 1024 * 1024) as client:
        yield client


@pytest.fixture(scope="module")
def seal(world: World, api: TestClient) -> str:
    """An organization certificate of agency A1 with an RSA-2048 key generated in the HSM."""
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=tag()),
        "key_algorithm": "rsa2048",
        "agency_id": AGENCY_A1,
        "email": SEAL_EMAIL,
    }
    response = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


@pytest.fixture(scope="module")
def chain(world: World, api: TestClient, seal: str) -> list[x509.Certificate]:
    response = api.get(f"/api/v1/certificates/{seal}/chain?format=pem", headers=world["ra-officer"].headers)
    assert response.status_code == 200, response.text
    return x509.load_pem_x509_certificates(response.content)


def assert_one_new_event(world: World, serial: str, before: int, **details: Any) -> dict[str, Any]:
    events = signature_events(world, serial)
    assert len(events) == before + 1, events
    event = events[-1]
    text = json.dumps(event, default=str)
    assert DOCUMENT.decode() not in text and _b64(DOCUMENT) not in text
    for key, value in details.items():
        assert event["details"][key] == value, event
    return event


@pytest.mark.parametrize("level", ["B-B", "B-T"])
def test_pdf_signature_verifies(
    level: str, world: World, api: TestClient, seal: str, chain: list[x509.Certificate]
) -> None:
    pdf = blank_pdf()
    before = len(signature_events(world, seal))
    response = post_pdf(
        api, world["signer"].headers, pdf, credential=seal, level=level, reason="Đóng dấu", location="Hà Nội"
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    signed = response.content
    assert response.headers["govsign-document-sha256"] == hashlib.sha256(pdf).hexdigest()
    assert response.headers["govsign-signed-sha256"] == hashlib.sha256(signed).hexdigest()
    assert response.headers["govsign-level"] == level and response.headers["govsign-credential"] == seal.lower()
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = validate_pdf_signature(embedded, validation_context(chain))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert (status.timestamp_validity is not None) == (level == "B-T")
    event = assert_one_new_event(
        world, seal, before, format="pades", level=level, document_sha256=hashlib.sha256(pdf).hexdigest(), count=1
    )
    assert event["outcome"] == "success" and event["details"]["status_checked"] == "valid"
    assert not list((Path(world.deployment.settings.data_dir) / "spool").glob("govsign-doc-*")), "temporary files left"


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_pdf_long_term_levels_embed_our_revocation_data(
    level: str, world: World, api: TestClient, seal: str, chain: list[x509.Certificate]
) -> None:
    before = len(signature_events(world, seal))
    response = post_pdf(api, world["signer"].headers, blank_pdf(), credential=seal, level=level)
    assert response.status_code == 200, response.text
    reader = PdfFileReader(BytesIO(response.content))
    assert "/DSS" in reader.root
    assert len(reader.embedded_signatures) == (2 if level == "B-LTA" else 1)
    event = assert_one_new_event(world, seal, before, format="pades", level=level)
    evidence = event["details"]["revocation_evidence"]
    assert evidence["ocsp_sha256"], event


def test_cms_and_digest_signatures(
    world: World, api: TestClient, seal: str, chain: list[x509.Certificate], tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    (tmp_path / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))

    def verify(signature: bytes, document: bytes) -> subprocess.CompletedProcess[str]:
        (tmp_path / "sig.p7s").write_bytes(signature)
        (tmp_path / "doc.bin").write_bytes(document)
        return subprocess.run(
            [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
             "-content", str(tmp_path / "doc.bin"), "-CAfile", str(tmp_path / "chain.pem"), "-purpose", "any",
             "-out", "/dev/null"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip

    for level in ("B-B", "B-T", "B-LT"):
        before = len(signature_events(world, seal))
        response = post_cms(api, world["signer"].headers, DOCUMENT, credential=seal, level=level)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pkcs7-signature"
        assert response.headers["govsign-document-sha256"] == hashlib.sha256(DOCUMENT).hexdigest()
        result = verify(response.content, DOCUMENT)
        assert result.returncode == 0, result.stdout + result.stderr
        assert verify(response.content, DOCUMENT + b"x").returncode != 0
        assert_one_new_event(
            world, seal, before, format="cades", level=level, document_sha256=hashlib.sha256(DOCUMENT).hexdigest()
        )

    documents = [DOCUMENT, b"second", b"third"]
    before = len(signature_events(world, seal))
    for output in ("cms", "raw"):
        response = api.post(
            "/api/v1/signatures/digests",
            headers=world["signer"].headers,
            json={
                "credential": seal,
                "digest_algorithm": "sha256",
                "digests": [_b64(hashlib.sha256(d).digest()) for d in documents],
                "output": output,
            },
        )
        assert response.status_code == 200, response.text
        signatures = [base64.b64decode(s) for s in response.json()["signatures"]]
        assert len(signatures) == 3
        assert_one_new_event(world, seal, before + (0 if output == "cms" else 1), count=3)
        if output == "cms":
            for signature, document in zip(signatures, documents, strict=True):
                result = verify(signature, document)
                assert result.returncode == 0, result.stdout + result.stderr


def test_smime_signature_verifies(
    world: World, api: TestClient, seal: str, chain: list[x509.Certificate], tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    message = (
        f"From: Văn thư <{SEAL_EMAIL}>\r\nTo: dan@example.vn\r\nSubject: =?utf-8?q?C=C3=B4ng_v=C4=83n?=\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Kính gửi: các cơ quan.\r\n"
    ).encode()
    response = post_document(
        api, "smime", world["signer"].headers, message, media_type="message/rfc822", credential=seal
    )
    assert response.status_code == 200, response.text
    assert b"multipart/signed" in response.content
    (tmp_path / "signed.eml").write_bytes(response.content)
    (tmp_path / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
    result = subprocess.run(
        [openssl, "smime", "-verify", "-in", str(tmp_path / "signed.eml"), "-CAfile", str(tmp_path / "chain.pem"),
         "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    forged = message.replace(SEAL_EMAIL.encode(), b"someone@moj.gov.vn")
    response = post_document(
        api, "smime", world["signer"].headers, forged, media_type="message/rfc822", credential=seal
    )
    assert "From" in assert_problem(response, 422)["detail"]


def test_other_agency_is_forbidden(world: World, api: TestClient, seal: str) -> None:
    before = len(signature_events(world, seal))
    for caller in ("signer@B", "verifier", "ra-officer"):
        response = post_cms(api, world[caller].headers, b"x", credential=seal)
        assert_problem(response, 403)
    events = signature_events(world, seal)
    assert len(events) == before + 3 and all(e["outcome"] == "denied" for e in events[before:])


def test_revoked_and_held_credentials_are_refused(world: World, api: TestClient) -> None:
    admin, signer = world["admin"], world["signer"]
    held = enrol(api, admin, AGENCY_A1, profile="organization")
    assert api.post(f"/api/v1/certificates/{held}/hold", headers=admin.headers).status_code == 200
    revoked = enrol(api, admin, AGENCY_A1, profile="organization")
    response = api.post(
        f"/api/v1/certificates/{revoked}/revocation", headers=admin.headers, json={"reason": "superseded"}
    )
    assert response.status_code == 200, response.text
    for serial, word in ((held, "on hold"), (revoked, "revoked")):
        response = post_pdf(api, signer.headers, blank_pdf(), credential=serial)
        assert word in assert_problem(response, 409)["detail"]
        response = post_cms(api, signer.headers, DOCUMENT, credential=serial)
        assert word in assert_problem(response, 409)["detail"]
        response = api.post(
            "/api/v1/signatures/digests",
            headers=signer.headers,
            json={"credential": serial, "digest_algorithm": "sha256", "digests": [_b64(bytes(32))], "output": "raw"},
        )
        assert word in assert_problem(response, 409)["detail"]
        events = signature_events(world, serial)
        assert len(events) == 3, events  # one refusal per request above, and no signature
        assert all(event["outcome"] == "failure" for event in events)


def test_bad_input_is_refused(world: World, api: TestClient, seal: str) -> None:
    signer = world["signer"]
    pdf = blank_pdf()
    for body, word in (
        (b"hello, not a PDF", "not a PDF"),
        (pdf[:200], "damaged"),
        (blank_pdf(password="secret"), "password"),
        (b"", "empty"),
    ):
        response = post_pdf(api, signer.headers, body, credential=seal)
        assert word in assert_problem(response, 422)["detail"], response.text
    assert_problem(post_pdf(api, signer.headers, b"x" * (4 * 1024 * 1024 + 1), credential=seal), 413)
    assert_problem(post_document(api, "pdf", signer.headers, pdf, media_type="text/plain", credential=seal), 415)
    assert_problem(post_pdf(api, signer.headers, pdf, credential=seal, level="B-X"), 422)
    assert_problem(post_pdf(api, signer.headers, pdf), 422)
    assert_problem(post_cms(api, signer.headers, b"", credential=seal), 422)
    for body in (
        {"digest_algorithm": "sha256", "digests": [_b64(bytes(20))], "output": "cms"},
        {"digest_algorithm": "md5", "digests": [_b64(bytes(16))]},
        {"digest_algorithm": "sha256", "digests": []},
        {"digest_algorithm": "sha256", "digests": ["@@@"]},
    ):
        response = api.post("/api/v1/signatures/digests", headers=signer.headers, json={"credential": seal, **body})
        assert_problem(response, 422)
    assert_problem(post_cms(api, signer.headers, b"x", credential="0a1b2c3d"), 404)
    assert not list((Path(world.deployment.settings.data_dir) / "spool").glob("govsign-doc-*")), "temporary files left"


def test_spooled_document_keeps_small_bodies_in_memory_and_spills_large_ones(tmp_path: Path) -> None:
    small = SpooledDocument.receive(tmp_path / "spool")
    for chunk in (b"a" * 1000, b"b" * 1000):
        small.write(chunk)
    small.close()
    assert small.in_memory == b"a" * 1000 + b"b" * 1000 and small.path is None and small.size == 2000
    assert small.digest("sha256") == hashlib.sha256(small.in_memory).digest()
    with small.open() as handle:
        assert handle.read() == small.read_all()
    small.discard()

    body = bytes(range(256)) * (5 * 1024)  # 1.25 MiB, over the in-memory limit
    large = SpooledDocument.receive(tmp_path / "spool")
    for start in range(0, len(body), 64 * 1024):
        large.write(body[start : start + 64 * 1024])
    large.close()
    assert large.in_memory is None and large.path is not None and large.path.read_bytes() == body
    assert large.size == len(body) and large.digest("sha512") == hashlib.sha512(body).digest()
    with large.open() as handle:
        assert handle.read() == body
    large.discard()
    assert not list((tmp_path / "spool").iterdir())


def test_large_documents_are_signed_through_a_file(
    world: World, api: TestClient, seal: str, chain: list[x509.Certificate], tmp_path: Path
) -> None:
    writer = PdfFileWriter()
    writer.insert_page(
        PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))
    )
    padding = generic.StreamObject(stream_data=bytes(range(256)) * (6 * 1024))  # 1.5 MiB, over the in-memory limit
    writer.root["/GovsignTestPadding"] = writer.add_object(padding)
    buffer = BytesIO()
    writer.write(buffer)
    pdf = buffer.getvalue()
    assert len(pdf) > 1024 * 1024
    response = post_pdf(api, world["signer"].headers, pdf, credential=seal)
    assert response.status_code == 200, response.text
    signed = response.content
    assert signed.startswith(pdf) and response.headers["govsign-signed-sha256"] == hashlib.sha256(signed).hexdigest()
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = validate_pdf_signature(embedded, validation_context(chain))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()

    content = bytes(range(256)) * (8 * 1024)  # 2 MiB
    response = post_cms(api, world["signer"].headers, content, credential=seal)
    assert response.status_code == 200, response.text
    assert response.headers["govsign-document-sha256"] == hashlib.sha256(content).hexdigest()
    openssl = shutil.which("openssl")
    if openssl is not None:
        (tmp_path / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
        (tmp_path / "sig.p7s").write_bytes(response.content)
        (tmp_path / "doc.bin").write_bytes(content)
        result = subprocess.run(
            [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
             "-content", str(tmp_path / "doc.bin"), "-CAfile", str(tmp_path / "chain.pem"), "-purpose", "any",
             "-out", "/dev/null"],
            capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    assert not list((Path(world.deployment.settings.data_dir) / "spool").glob("govsign-doc-*")), "temporary files left"


def test_small_documents_can_be_sent_as_json(world: World, api: TestClient, seal: str) -> None:
    signer = world["signer"].headers
    pdf = blank_pdf()
    response = api.post(
        "/api/v1/signatures/pdf",
        headers=signer,
        json={"credential": seal, "document": _b64(pdf), "level": "B-B", "reason": "Ký số"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["document_sha256"] == hashlib.sha256(pdf).hexdigest() and body["level"] == "B-B"
    assert len(PdfFileReader(BytesIO(base64.b64decode(body["document"]))).embedded_signatures) == 1
    response = api.post(
        "/api/v1/signatures/cms", headers=signer, json={"credential": seal, "document": _b64(DOCUMENT), "level": "B-T"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["document_sha256"] == hashlib.sha256(DOCUMENT).hexdigest()
    message = f"From: <{SEAL_EMAIL}>\r\nSubject: JSON\r\n\r\nHello\r\n".encode()
    response = api.post(
        "/api/v1/signatures/smime", headers=signer, json={"credential": seal, "document": _b64(message)}
    )
    assert response.status_code == 200, response.text
    assert b"multipart/signed" in base64.b64decode(response.json()["document"])
    for body in (
        {"credential": seal, "document": "not base64!"},
        {"credential": seal, "document": _b64(b"")},
        {"credential": seal},
        {"document": _b64(pdf)},
        {"credential": seal, "document": _b64(pdf), "unknown": 1},
    ):
        assert_problem(api.post("/api/v1/signatures/pdf", headers=signer, json=body), 422)
    response = api.post(
        "/api/v1/signatures/pdf",
        headers={**signer, "Content-Type": "application/json"},
        content=b'{"credential": "' + seal.encode() + b'", "document": "' + b"A" * (2 * 1024 * 1024) + b'"}',
    )
    assert_problem(response, 413)
    assert_problem(post_pdf(api, signer, pdf), 422)  # a raw body needs the credential in the query
