"""Input edges the fault campaign found open: an ``invalidity_date`` of 0 became 1970-01-01 in the
CRL, an auditor learned the PIN rules (422) instead of being refused (403), and TRACE (like every
405) answered without ``Allow``."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from helpers.world import AGENCY_A1, World, assert_problem, enrol


@pytest.mark.parametrize(
    "invalidity_date",
    [
        pytest.param(0, id="zero"),
        pytest.param(1_700_000_000, id="unix-seconds"),
        pytest.param("0", id="zero-string"),
        pytest.param("1970-01-01T00:00:00Z", id="epoch"),
        pytest.param("2999-01-01T00:00:00Z", id="future"),
    ],
)
def test_an_invalidity_date_not_between_issuance_and_now_is_refused(
    world: World, direct_api: TestClient, invalidity_date: object
) -> None:
    officer = world["ra-officer"]
    serial = enrol(direct_api, officer, AGENCY_A1)
    response = direct_api.post(
        f"/api/v1/certificates/{serial}/revocation",
        headers=officer.headers,
        json={"reason": "key-compromise", "invalidity_date": invalidity_date},
    )
    assert_problem(response, 422)
    shown = direct_api.get(f"/api/v1/certificates/{serial}", headers=officer.headers).json()
    assert shown["status"] == "valid" and shown.get("revocation") is None


def _audit_count(world: World) -> int:
    with world.services.database.read_only() as ports:
        return ports.audit.count()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(json.dumps({"pin": "1"}).encode(), id="pin-too-short"),
        pytest.param(b"{not json", id="malformed-json"),
        pytest.param(json.dumps({"pin": 123456, "extra": True}).encode(), id="wrong-types"),
    ],
)
def test_a_role_without_the_permission_gets_403_before_the_body_is_judged(
    world: World, direct_api: TestClient, body: bytes
) -> None:
    officer, auditor = world["ra-officer"], world["auditor"]
    serial = enrol(direct_api, officer, AGENCY_A1)
    url = f"/api/v1/credentials/{serial}/factors/pin"
    headers = {"Content-Type": "application/json"}
    before = _audit_count(world)
    problem = assert_problem(direct_api.put(url, headers={**auditor.headers, **headers}, content=body), 403)
    assert "pin" not in problem.get("detail", "").lower()
    assert _audit_count(world) == before + 1, "the refusal is audited"
    # without credentials: 401, not 422
    assert_problem(direct_api.put(url, headers=headers, content=body), 401)
    # an officer who may set PINs learns what is wrong with the request
    assert_problem(direct_api.put(url, headers={**officer.headers, **headers}, content=body), 422)


def test_a_signer_sending_a_broken_enrolment_gets_403(world: World, direct_api: TestClient) -> None:
    response = direct_api.post("/api/v1/certificates", headers=world["signer"].headers, json={"profile": 5})
    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("TRACE", "/api/v1/certificates", {"GET", "POST"}, id="trace-certificates"),
        pytest.param("DELETE", "/api/v1/certificates", {"GET", "POST"}, id="delete-certificates"),
        pytest.param("PUT", "/api/v1/certificates/01", {"GET"}, id="put-certificate"),
        pytest.param("GET", "/api/v1/crls", {"POST"}, id="get-crls"),
        pytest.param("TRACE", "/healthz", {"GET"}, id="trace-healthz"),
        pytest.param("DELETE", "/pki/tsa", {"POST"}, id="delete-tsa"),
        pytest.param("PATCH", "/api/v1/credentials/01/factors/pin", {"PUT"}, id="patch-pin"),
    ],
)
def test_every_405_has_an_allow_header_listing_every_method_of_the_path(
    world: World, direct_api: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = direct_api.request(method, path, headers=world["admin"].headers)
    assert response.status_code == 405, response.text
    assert "allow" in response.headers, response.headers
    assert {part.strip() for part in response.headers["allow"].split(",")} == allowed


def test_a_number_is_not_a_date_time(world: World, direct_api: TestClient) -> None:
    for value in ("0", "0.5", "1700000000"):
        response = direct_api.get(f"/api/v1/audit?until={value}", headers=world["auditor"].headers)
        assert_problem(response, 422)
    assert direct_api.get(
        "/api/v1/audit?until=2026-01-01T00:00:00Z&limit=1", headers=world["auditor"].headers
    ).is_success


def test_a_body_that_is_not_utf8_is_invalid_input_after_the_role_is_checked(
    world: World, direct_api: TestClient
) -> None:
    url = "/api/v1/cas/issuing-1/service-certificates/tsa/replacement"
    headers = {"Content-Type": "application/json"}
    assert_problem(direct_api.post(url, headers={**world["auditor"].headers, **headers}, content=b"\xff\xfe"), 403)
    assert_problem(direct_api.post(url, headers={**world["admin"].headers, **headers}, content=b"\xff\xfe"), 422)


@pytest.mark.parametrize("path", ["/api/v1/signatures/pdf", "/api/v1/verifications"])
def test_an_undeclared_method_on_a_document_route_is_405_not_415(
    world: World, direct_api: TestClient, path: str
) -> None:
    response = direct_api.put(path, headers={**world["admin"].headers, "Content-Type": "application/pdf"}, content=b"x")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("caller", "path", "content_type", "body"),
    [
        pytest.param(
            "auditor", "/api/v1/signatures/pdf", "application/json", b"{broken", id="auditor-signs-broken-json"
        ),
        pytest.param(
            "auditor", "/api/v1/signatures/pdf", "application/pdf", b"", id="auditor-signs-without-credential"
        ),
        pytest.param("auditor", "/api/v1/signatures/smime", "message/rfc822", b"x", id="auditor-signs-mail"),
        pytest.param("ra-officer", "/api/v1/verifications", "application/pdf", b"", id="officer-verifies-empty"),
    ],
)
def test_the_document_routes_decide_the_role_before_the_document(
    world: World, direct_api: TestClient, caller: str, path: str, content_type: str, body: bytes
) -> None:
    headers = {**world[caller].headers, "Content-Type": content_type}
    assert_problem(direct_api.post(path, headers=headers, content=body), 403)


def test_a_query_parameter_the_operation_does_not_declare_is_refused(world: World, direct_api: TestClient) -> None:
    """As a JSON body with an unknown field is; schemathesis sent ``?agency_id=&=`` and got 200."""
    admin, signer = world["admin"], world["signer"]
    problem = assert_problem(direct_api.get("/api/v1/certificates?agency_id=&=", headers=admin.headers), 422)
    assert "''" in problem["detail"]
    assert_problem(direct_api.get("/api/v1/certificates?colour=red", headers=admin.headers), 422)
    assert_problem(direct_api.get("/api/v1/certificates?colour=red", headers=signer.headers), 403)
    assert_problem(direct_api.get("/api/v1/certificates?colour=red"), 401)
    assert direct_api.get("/api/v1/certificates?limit=1&status=valid", headers=admin.headers).status_code == 200
    twice = direct_api.get("/api/v1/audit?object_id=a&object_id=b", headers=world["auditor"].headers)
    assert "one value" in assert_problem(twice, 422)["detail"]
