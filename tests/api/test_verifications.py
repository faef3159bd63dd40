"""`POST /api/v1/verifications` and `GET /api/v1/verifications/{id}`: what govsign signed verifies
through the API, the report is stored and audited (the document's hash, never its content), any
verifying role may ask from any agency, and bad input is a problem document."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from govsign.audit.events import AuditQuery
from helpers.pdf import blank_pdf
from helpers.tsa import query as tsa_query
from helpers.world import AGENCY_A1, ORGANIZATION_SUBJECT, World, assert_problem, post_pdf, tag

MESSAGE_FIELDS = {"code", "severity", "en", "vi"}
COUNT_REPORTS = text("SELECT COUNT(*) FROM verifications")
CONTENT = "Công văn số 45/UBND-VP gửi các sở, ban, ngành.".encode()


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="", max_document_bytes=4 * 1024 * 1024) as client:
        yield client


@pytest.fixture(scope="module")
def seal(world: World, api: TestClient) -> str:
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=tag()),
        "key_algorithm": "ec-p256",
        "agency_id": AGENCY_A1,
    }
    response = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


def _signed(world: World, api: TestClient, seal: str, level: str) -> bytes:
    response = post_pdf(api, world["signer"].headers, blank_pdf(), credential=seal, level=level)
    assert response.status_code == 200, response.text
    return response.content


def _verify(api: TestClient, headers: dict[str, str], pdf: bytes):  # type: ignore[no-untyped-def]
    return api.post("/api/v1/verifications", headers={**headers, "Content-Type": "application/pdf"}, content=pdf)


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_a_pdf_govsign_signed_is_valid_at_its_level(world: World, api: TestClient, seal: str, level: str) -> None:
    pdf = _signed(world, api, seal, level)
    response = _verify(api, world["verifier"].headers, pdf)
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["conclusion"] == "valid", json.dumps(report["signatures"][0]["messages"], ensure_ascii=False)
    assert report["document_type"] == "pdf"
    assert report["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    (signature,) = report["signatures"]
    assert signature["indication"] == "TOTAL_PASSED" and signature["sub_indication"] is None
    assert signature["level"] == f"PAdES-BASELINE-{level[2:]}"
    assert signature["signer"]["organization"] and signature["integrity"] and signature["valid_at_signing_time"]
    assert all(set(m) == MESSAGE_FIELDS for m in signature["messages"])
    assert response.headers["location"] == f"/api/v1/verifications/{report['id']}"

    stored = api.get(f"/api/v1/verifications/{report['id']}", headers=world["auditor"].headers)
    assert stored.status_code == 200, stored.text
    assert stored.json() == report


def test_the_verification_is_audited_with_the_hash_and_never_the_content(
    world: World, api: TestClient, seal: str
) -> None:
    pdf = _signed(world, api, seal, "B-B")
    digest = hashlib.sha256(pdf).hexdigest()
    report = _verify(api, world["signer@B"].headers, pdf).json()  # another agency's signer verifies too
    with world.services.database.read_only() as ports:
        events = ports.audit.search(AuditQuery(action="document.verify", object_id=digest, limit=10))
    assert len(events) == 1
    assert events[0]["details"]["conclusion"] == report["conclusion"] == "valid"
    assert events[0]["details"]["report"] == report["id"]


def test_an_unsigned_pdf_has_no_signatures(world: World, api: TestClient) -> None:
    response = _verify(api, world["verifier"].headers, blank_pdf())
    assert response.status_code == 201, response.text
    assert response.json()["conclusion"] == "no-signatures"
    assert response.json()["signatures"] == []


def test_a_tampered_pdf_is_invalid(world: World, api: TestClient, seal: str) -> None:
    signed = bytearray(_signed(world, api, seal, "B-B"))
    position = signed.index(b"/MediaBox")
    signed[position + 1 : position + 2] = b"m"
    report = _verify(api, world["verifier"].headers, bytes(signed)).json()
    assert report["conclusion"] == "invalid"
    assert (report["signatures"][0]["indication"], report["signatures"][0]["sub_indication"]) == (
        "TOTAL_FAILED",
        "HASH_FAILURE",
    )


@pytest.mark.parametrize(
    ("body", "media_type", "status"),
    [
        (b"", "application/pdf", 422),
        (b"not a pdf at all", "application/pdf", 422),
        (b"%PDF-1.7\n1 0 obj\n<<", "application/pdf", 422),
        (b"x", "text/plain", 415),
    ],
    ids=["empty", "garbage", "truncated", "text"],
)
def test_bad_input_is_a_problem_and_nothing_is_stored(
    world: World, api: TestClient, body: bytes, media_type: str, status: int
) -> None:
    with world.services.database.read_only() as ports:
        before = ports.session.execute(COUNT_REPORTS).scalar()
    response = api.post(
        "/api/v1/verifications", headers={**world["verifier"].headers, "Content-Type": media_type}, content=body
    )
    assert_problem(response, status)
    with world.services.database.read_only() as ports:
        assert ports.session.execute(COUNT_REPORTS).scalar() == before


def test_roles_that_may_not_verify_are_refused(world: World, api: TestClient) -> None:
    response = _verify(api, world["ra-officer"].headers, blank_pdf())
    assert_problem(response, 403)
    assert_problem(api.get("/api/v1/verifications/" + "0" * 32, headers=world["verifier"].headers), 404)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def detached(world: World, api: TestClient, seal: str) -> bytes:
    response = api.post(
        "/api/v1/signatures/cms",
        headers={**world["signer"].headers, "Content-Type": "application/octet-stream"},
        params={"credential": seal, "level": "B-T"},
        content=CONTENT,
    )
    assert response.status_code == 200, response.text
    return response.content


def test_a_detached_cms_verifies_with_its_document_and_with_its_digest(
    world: World, api: TestClient, detached: bytes
) -> None:
    with_document = api.post(
        "/api/v1/verifications",
        headers=world["verifier"].headers,
        json={"signature": _b64(detached), "document": _b64(CONTENT)},
    )
    assert with_document.status_code == 201, with_document.text
    report = with_document.json()
    assert report["document_type"] == "cms" and report["conclusion"] == "valid", report
    assert report["document_sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert report["signatures"][0]["level"] == "CAdES-BASELINE-T"

    with_digest = api.post(
        "/api/v1/verifications",
        headers=world["verifier"].headers,
        json={"signature": _b64(detached), "digest": hashlib.sha256(CONTENT).hexdigest()},
    )
    assert with_digest.status_code == 201, with_digest.text
    assert with_digest.json()["conclusion"] == "valid"

    other = api.post(
        "/api/v1/verifications",
        headers=world["verifier"].headers,
        json={"signature": _b64(detached), "document": _b64(CONTENT + b"!")},
    )
    assert other.json()["signatures"][0]["sub_indication"] == "HASH_FAILURE"
    assert other.json()["conclusion"] == "invalid"


@pytest.mark.parametrize(
    "body",
    [
        {"signature": "bm90IGNtcw=="},
        {"signature": "@@@"},
        {"document": "YQ=="},
        {"signature": "YQ==", "digest": "zz"},
        {"signature": "YQ==", "surprise": 1},
    ],
    ids=["not-cms", "not-base64", "no-signature", "bad-digest", "unknown-field"],
)
def test_bad_json_is_a_problem(world: World, api: TestClient, body: dict[str, object]) -> None:
    assert_problem(api.post("/api/v1/verifications", headers=world["verifier"].headers, json=body), 422)


def test_a_detached_signature_without_its_document_is_a_problem(world: World, api: TestClient, detached: bytes) -> None:
    response = api.post("/api/v1/verifications", headers=world["verifier"].headers, json={"signature": _b64(detached)})
    problem = assert_problem(response, 422)
    assert "detached" in problem["detail"]


def test_the_etsi_xml_report_carries_our_verdict(world: World, api: TestClient, seal: str) -> None:
    for level, indication in (("B-T", "total-passed"), ("B-B", "total-passed")):
        report = _verify(api, world["verifier"].headers, _signed(world, api, seal, level)).json()
        response = api.get(f"/api/v1/verifications/{report['id']}?format=etsi", headers=world["verifier"].headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        root = ElementTree.fromstring(response.content)
        assert root.tag.endswith("ValidationReport")
        mains = [e.text for e in root.iter() if e.tag.endswith("MainIndication")]
        assert mains == [f"urn:etsi:019102:mainindication:{indication}"], response.text[:2000]

    signed = bytearray(_signed(world, api, seal, "B-B"))
    position = signed.index(b"/MediaBox")
    signed[position + 1 : position + 2] = b"m"
    tampered = _verify(api, world["verifier"].headers, bytes(signed)).json()
    xml = api.get(f"/api/v1/verifications/{tampered['id']}?format=etsi", headers=world["verifier"].headers).content
    texts = [e.text for e in ElementTree.fromstring(xml).iter()]
    assert "urn:etsi:019102:mainindication:total-failed" in texts
    assert "urn:etsi:019102:subindication:HASH_FAILURE" in texts


def test_an_unsigned_pdf_has_no_etsi_rendering(world: World, api: TestClient) -> None:
    report = _verify(api, world["verifier"].headers, blank_pdf()).json()
    response = api.get(f"/api/v1/verifications/{report['id']}?format=etsi", headers=world["verifier"].headers)
    assert_problem(response, 404)


SEAL_EMAIL = "vanthu@verify.gov.vn"
MESSAGE = (
    f"From: Văn thư <{SEAL_EMAIL}>\r\nTo: noi-nhan@example.gov.vn\r\nSubject: =?utf-8?q?C=C3=B4ng_v=C4=83n?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nKính gửi các đơn vị.\r\n"
).encode()


@pytest.fixture(scope="module")
def signed_message(world: World, api: TestClient) -> bytes:
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=tag()),
        "key_algorithm": "ec-p256",
        "agency_id": AGENCY_A1,
        "email": SEAL_EMAIL,
    }
    enrolled = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert enrolled.status_code == 201, enrolled.text
    response = api.post(
        "/api/v1/signatures/smime",
        headers={**world["signer"].headers, "Content-Type": "message/rfc822"},
        params={"credential": enrolled.json()["serial"]},
        content=MESSAGE,
    )
    assert response.status_code == 200, response.text
    return response.content


def test_an_smime_message_verifies_and_a_changed_body_does_not(
    world: World, api: TestClient, signed_message: bytes
) -> None:
    headers = {**world["verifier"].headers, "Content-Type": "message/rfc822"}
    report = api.post("/api/v1/verifications", headers=headers, content=signed_message).json()
    assert report["document_type"] == "smime" and report["conclusion"] == "valid", report
    assert report["signatures"][0]["signer"]["email"] == SEAL_EMAIL
    assert report["document_sha256"] == hashlib.sha256(signed_message).hexdigest()

    changed = bytearray(signed_message)
    entity = signed_message.index(b"\r\n\r\n", signed_message.index(b"\r\n--")) + 4  # the signed part's body
    changed[entity] = ord("A") if changed[entity] != ord("A") else ord("B")
    tampered = api.post("/api/v1/verifications", headers=headers, content=bytes(changed)).json()
    assert tampered["conclusion"] == "invalid"
    assert tampered["signatures"][0]["sub_indication"] == "HASH_FAILURE"


def test_a_message_that_is_not_smime_is_a_problem(world: World, api: TestClient) -> None:
    headers = {**world["verifier"].headers, "Content-Type": "message/rfc822"}
    assert_problem(api.post("/api/v1/verifications", headers=headers, content=MESSAGE), 422)


def test_a_detached_cms_verifies_as_a_form_with_its_document(world: World, api: TestClient, detached: bytes) -> None:
    files = {
        "signature": ("document.p7s", detached, "application/pkcs7-signature"),
        "document": ("document.txt", CONTENT, "application/octet-stream"),
    }
    response = api.post("/api/v1/verifications", headers=world["verifier"].headers, files=files)
    assert response.status_code == 201, response.text
    assert response.json()["conclusion"] == "valid"
    assert response.json()["document_sha256"] == hashlib.sha256(CONTENT).hexdigest()

    only_signature = {"signature": ("document.p7s", detached, "application/pkcs7-signature")}
    problem = assert_problem(
        api.post("/api/v1/verifications", headers=world["verifier"].headers, files=only_signature), 422
    )
    assert "part named document" in problem["detail"]


def test_a_time_stamp_verifies_over_the_document_it_stamps(world: World, api: TestClient) -> None:
    reply = world.services.timestamps.answer(
        tsa_query(digest=hashlib.sha256(CONTENT).digest(), cert_req=True, nonce=1234)
    )
    headers = world["verifier"].headers
    stamped = api.post(
        "/api/v1/verifications", headers=headers, json={"timestamp": _b64(reply), "document": _b64(CONTENT)}
    )
    assert stamped.status_code == 201, stamped.text
    report = stamped.json()
    assert report["document_type"] == "timestamp" and report["conclusion"] == "valid", report["signatures"]
    assert report["signatures"][0]["level"] == "RFC3161"

    files = {
        "timestamp": ("reply.tsr", reply, "application/timestamp-reply"),
        "document": ("d.txt", b"other", "text/plain"),
    }
    other = api.post("/api/v1/verifications", headers=headers, files=files).json()
    assert other["conclusion"] == "invalid", other
    assert other["signatures"][0]["sub_indication"] == "HASH_FAILURE"

    alone = api.post("/api/v1/verifications", headers=headers, json={"timestamp": _b64(reply)})
    assert_problem(alone, 422)
