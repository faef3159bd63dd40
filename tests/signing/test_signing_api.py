"""The signing endpoints (`/api/v1/signatures/...`) over the platform world: PAdES B-B and B-T
verified by pyHanko, CAdES detached verified by ``openssl cms -verify``, digest batches; agency
scoping, individual credentials refused, revoked and held credentials refused, bad input
refused, and one audit event per call with the document hash and never the content."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from govsign.runtime import Runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))
from platform_helpers import (
    AGENCY_A1,
    AGENCY_B,
    ORGANIZATION_SUBJECT,
    World,
    assert_problem,
    build_world,
    enrol,
    tag,
)

DOCUMENT = "Công văn số 123/BTP — nội dung bí mật không được ghi vào nhật ký.".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _blank_pdf() -> bytes:
    writer = PdfFileWriter()
    writer.insert_page(
        PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 595, 842))))
    )
    output = BytesIO()
    writer.write(output)
    return output.getvalue()


@pytest.fixture(scope="module")
def world(initialized_runtime: Runtime) -> World:
    world = build_world(initialized_runtime)
    world.add_caller("signer@B", "signer", AGENCY_B)
    return world


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
        yield client


@pytest.fixture(scope="module")
def seal(world: World, api: TestClient) -> str:
    """An organization certificate of agency A1 with an RSA-2048 key generated in the HSM."""
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=tag()),
        "key_algorithm": "rsa2048",
        "agency_id": AGENCY_A1,
    }
    response = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


@pytest.fixture(scope="module")
def chain(world: World, api: TestClient, seal: str) -> list[x509.Certificate]:
    response = api.get(f"/api/v1/certificates/{seal}/chain?format=pem", headers=world["ra-officer"].headers)
    assert response.status_code == 200, response.text
    return x509.load_pem_x509_certificates(response.content)


def _signature_events(world: World, serial: str) -> list[dict[str, Any]]:
    with world.runtime.database.read_only() as ports:
        return ports.audit.search(action="signature.create", object_id=serial, limit=1000)


def _assert_one_new_event(world: World, serial: str, before: int, **details: Any) -> dict[str, Any]:
    events = _signature_events(world, serial)
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
    pdf = _blank_pdf()
    before = len(_signature_events(world, seal))
    response = api.post(
        "/api/v1/signatures/pdf",
        headers=world["signer"].headers,
        json={"credential": seal, "pdf": _b64(pdf), "level": level, "reason": "Đóng dấu", "location": "Hà Nội"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    signed = base64.b64decode(body["pdf"])
    assert body["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert body["signed_sha256"] == hashlib.sha256(signed).hexdigest()
    assert body["level"] == level and body["credential"] == seal.lower()
    der = [c.public_bytes(serialization.Encoding.DER) for c in chain]
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der[-1])],
        other_certs=[asn1_x509.Certificate.load(d) for d in der[1:-1]],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    status = validate_pdf_signature(embedded, context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert (status.timestamp_validity is not None) == (level == "B-T")
    event = _assert_one_new_event(
        world, seal, before, format="pades", level=level, document_sha256=body["document_sha256"], count=1
    )
    assert event["outcome"] == "success"


def test_cms_and_digest_signatures(
    world: World, api: TestClient, seal: str, chain: list[x509.Certificate], tmp_path: Path
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
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

    before = len(_signature_events(world, seal))
    response = api.post(
        "/api/v1/signatures/cms", headers=world["signer"].headers, json={"credential": seal, "content": _b64(DOCUMENT)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["content_sha256"] == hashlib.sha256(DOCUMENT).hexdigest()
    result = verify(base64.b64decode(body["signature"]), DOCUMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert verify(base64.b64decode(body["signature"]), DOCUMENT + b"x").returncode != 0
    _assert_one_new_event(world, seal, before, format="cades", document_sha256=body["content_sha256"], count=1)

    documents = [DOCUMENT, b"second", b"third"]
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
        _assert_one_new_event(world, seal, before + (1 if output == "cms" else 2), count=3)
    response = api.post(
        "/api/v1/signatures/digests",
        headers=world["signer"].headers,
        json={
            "credential": seal,
            "digest_algorithm": "sha256",
            "digests": [_b64(hashlib.sha256(d).digest()) for d in documents],
            "output": "cms",
        },
    )
    for signature, document in zip(response.json()["signatures"], documents, strict=True):
        result = verify(base64.b64decode(signature), document)
        assert result.returncode == 0, result.stdout + result.stderr


def test_other_agency_is_forbidden(world: World, api: TestClient, seal: str) -> None:
    before = len(_signature_events(world, seal))
    for caller in ("signer@B", "verifier", "ra-officer"):
        response = api.post(
            "/api/v1/signatures/cms", headers=world[caller].headers, json={"credential": seal, "content": _b64(b"x")}
        )
        assert_problem(response, 403)
    events = _signature_events(world, seal)
    assert len(events) == before + 3 and all(e["outcome"] == "denied" for e in events[before:])


def test_individual_revoked_and_held_credentials_are_refused(world: World, api: TestClient) -> None:
    admin, signer = world["admin"], world["signer"]
    individual = enrol(api, admin, AGENCY_A1, profile="individual")
    response = api.post(
        "/api/v1/signatures/pdf", headers=signer.headers, json={"credential": individual, "pdf": _b64(_blank_pdf())}
    )
    problem = assert_problem(response, 422)
    assert "signature activation" in problem["detail"], problem
    failed = _signature_events(world, individual)
    assert len(failed) == 1 and failed[0]["outcome"] == "failure"

    held = enrol(api, admin, AGENCY_A1, profile="organization")
    assert api.post(f"/api/v1/certificates/{held}/hold", headers=admin.headers).status_code == 200
    revoked = enrol(api, admin, AGENCY_A1, profile="organization")
    response = api.post(
        f"/api/v1/certificates/{revoked}/revocation", headers=admin.headers, json={"reason": "superseded"}
    )
    assert response.status_code == 200, response.text
    for serial, word in ((held, "on hold"), (revoked, "revoked")):
        for path, body in (
            ("cms", {"content": _b64(DOCUMENT)}),
            ("digests", {"digest_algorithm": "sha256", "digests": [_b64(bytes(32))], "output": "raw"}),
        ):
            response = api.post(
                f"/api/v1/signatures/{path}", headers=signer.headers, json={"credential": serial, **body}
            )
            problem = assert_problem(response, 409)
            assert word in problem["detail"], problem


def test_bad_input_is_refused(world: World, api: TestClient, seal: str) -> None:
    signer = world["signer"]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("pdf", {"pdf": "not base64!"}),
        ("pdf", {"pdf": _b64(b"hello, not a PDF")}),
        ("pdf", {"pdf": _b64(_blank_pdf()[:200])}),
        ("cms", {"content": "@@@"}),
        ("digests", {"digest_algorithm": "sha256", "digests": [_b64(bytes(20))], "output": "cms"}),
        ("digests", {"digest_algorithm": "md5", "digests": [_b64(bytes(16))]}),
        ("digests", {"digest_algorithm": "sha256", "digests": []}),
    ]
    for path, body in cases:
        response = api.post(f"/api/v1/signatures/{path}", headers=signer.headers, json={"credential": seal, **body})
        assert_problem(response, 422)
    response = api.post(
        "/api/v1/signatures/cms", headers=signer.headers, json={"credential": "0a1b2c3d", "content": _b64(b"x")}
    )
    assert_problem(response, 404)
