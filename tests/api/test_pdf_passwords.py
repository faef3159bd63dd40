"""An encrypted PDF signs through the API when the request gives its password in the
`Govsign-PDF-Password` header: the result keeps the file's encryption, and the password is in
no log, audit event or stored row."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import BytesIO
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import text

from helpers.pdf import blank_pdf
from helpers.world import AGENCY_A1, ORGANIZATION_SUBJECT, World, assert_problem, post_pdf, signature_events, tag

PASSWORD = "Mật-khẩu-văn-bản-2026"


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    with world.app(dual_control="") as client:
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


def test_a_user_password_pdf_signs_with_the_password_header_and_stays_encrypted(
    world: World, api: TestClient, seal: str, caplog: pytest.LogCaptureFixture
) -> None:
    encrypted = blank_pdf(password=PASSWORD)
    headers = world["signer"].headers
    assert "password" in assert_problem(post_pdf(api, headers, encrypted, credential=seal), 422)["detail"]
    wrong = post_pdf(api, {**headers, "Govsign-PDF-Password": "sai"}, encrypted, credential=seal)
    assert "does not open" in assert_problem(wrong, 422)["detail"]

    caplog.set_level(logging.DEBUG)
    given = {**headers, "Govsign-PDF-Password": quote(PASSWORD, safe="")}
    signed = post_pdf(api, given, encrypted, credential=seal, level="B-T")
    assert signed.status_code == 200, signed.text
    reader = PdfFileReader(BytesIO(signed.content))
    assert reader.encrypted and reader.decrypt(PASSWORD.encode()).status.name == "USER"
    assert len(reader.embedded_signatures) == 1

    # it verifies with the same header, and without it is a problem
    verify = {**world["verifier"].headers, "Content-Type": "application/pdf"}
    verified = api.post("/api/v1/verifications", headers={**verify, **given}, content=signed.content)
    assert verified.status_code == 201 and verified.json()["conclusion"] == "valid", verified.text
    refused = api.post("/api/v1/verifications", headers=verify, content=signed.content)
    assert "password" in assert_problem(refused, 422)["detail"]

    assert PASSWORD not in caplog.text and quote(PASSWORD, safe="") not in caplog.text
    events = signature_events(world, seal.lower())
    assert events and all(PASSWORD not in str(event) for event in events)
    with world.services.database.read_only() as ports:
        rows = ports.session.execute(text("SELECT details_json FROM audit_events")).scalars().all()
    escaped = json.dumps(PASSWORD)[1:-1]
    assert all(PASSWORD not in row and escaped not in row for row in rows)


def test_the_password_is_not_taken_from_the_query(world: World, api: TestClient, seal: str) -> None:
    encrypted = blank_pdf(password=PASSWORD)
    response = post_pdf(api, world["signer"].headers, encrypted, credential=seal, password=PASSWORD)
    assert_problem(response, 422)
