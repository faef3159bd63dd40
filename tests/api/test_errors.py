"""Errors are RFC 9457 problem documents (application/problem+json with type, title, status), with
a stable type per kind and no internal detail: 413 over the body limit, 422 on schema violations,
404 for unknown objects and routes, 405, 409 on a double revocation."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from helpers.world import AGENCY_A1, PROBLEM, World, assert_problem, enrol, enrol_body

LIMIT = 2048


@pytest.fixture(scope="module")
def small_body_api(world: World) -> TestClient:
    with world.app(dual_control="", max_request_bytes=LIMIT) as client:
        yield client


def test_body_over_the_limit_is_413(world: World, small_body_api: TestClient) -> None:
    admin = world["admin"]
    body = enrol_body(AGENCY_A1)
    body["csr"] = "A" * (LIMIT + 10)
    response = small_body_api.post("/api/v1/certificates", headers=admin.headers, json=body)
    problem = assert_problem(response, 413)
    assert problem["type"].endswith("/too-large")
    # Refused before authentication is even looked at: no body is read.
    assert_problem(small_body_api.post("/api/v1/certificates", json=body), 413)


def test_chunked_body_over_the_limit_is_413(world: World, small_body_api: TestClient) -> None:
    body = json.dumps({**enrol_body(AGENCY_A1), "csr": "A" * (LIMIT * 4)}).encode()
    chunks = (body[i : i + 512] for i in range(0, len(body), 512))
    headers = {**world["admin"].headers, "Content-Type": "application/json"}
    response = small_body_api.post("/api/v1/certificates", headers=headers, content=chunks)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="malformed-json"),
        pytest.param(b"[]", id="array"),
        pytest.param(json.dumps({"profile": "nope", "key_algorithm": "ec-p256"}).encode(), id="unknown-profile"),
        pytest.param(json.dumps({**enrol_body(AGENCY_A1), "unexpected": 1}).encode(), id="extra-field"),
        pytest.param(json.dumps({**enrol_body(AGENCY_A1), "validity_days": 0}).encode(), id="out-of-range"),
        pytest.param(json.dumps({**enrol_body(AGENCY_A1), "csr": "x"}).encode(), id="csr-and-key"),
        pytest.param(json.dumps({**enrol_body(AGENCY_A1), "subject": "not a DN"}).encode(), id="bad-subject"),
    ],
)
def test_schema_violations_are_422(world: World, direct_api: TestClient, body: bytes) -> None:
    response = direct_api.post(
        "/api/v1/certificates",
        headers={**world["admin"].headers, "Content-Type": "application/json"},
        content=body,
    )
    problem = assert_problem(response, 422)
    assert problem["type"].endswith(("/invalid-input", "/policy-violation")), problem


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/certificates?limit=0"),
        ("GET", "/api/v1/certificates?status=bogus"),
        ("GET", "/api/v1/certificates?cursor=%%%"),
        ("GET", "/api/v1/certificates/zz-not-hex"),
        ("GET", "/api/v1/certificates/0a1b/chain?format=zip"),
        ("POST", "/api/v1/approvals/NOT-AN-ID/approve"),
        ("GET", "/api/v1/audit?since=yesterday"),
    ],
)
def test_parameter_violations_are_422(world: World, direct_api: TestClient, method: str, path: str) -> None:
    assert_problem(direct_api.request(method, path, headers=world["admin"].headers), 422)


def test_a_non_json_body_is_415(world: World, direct_api: TestClient) -> None:
    response = direct_api.post(
        "/api/v1/certificates",
        headers={**world["admin"].headers, "Content-Type": "text/plain"},
        content=json.dumps(enrol_body(AGENCY_A1)).encode(),
    )
    assert_problem(response, 415)


def test_unknown_objects_and_routes_are_404(world: World, direct_api: TestClient) -> None:
    headers = world["admin"].headers
    for path in (
        "/api/v1/certificates/0123456789abcdef0123",
        "/api/v1/certificates/0123456789abcdef0123/chain",
    ):
        assert assert_problem(direct_api.get(path, headers=headers), 404)["type"].endswith("/not-found")
    for action in ("revocation", "hold", "release", "renewal"):
        body = {"reason": "superseded"} if action == "revocation" else ({} if action == "renewal" else None)
        response = direct_api.post(f"/api/v1/certificates/0123456789abcdef0123/{action}", headers=headers, json=body)
        assert_problem(response, 404)
    assert_problem(direct_api.post("/api/v1/approvals/0123456789abcdef/approve", headers=headers), 404)
    assert_problem(direct_api.get("/api/v1/no-such-thing", headers=headers), 404)
    assert_problem(direct_api.get("/nowhere"), 404)
    assert_problem(direct_api.delete("/api/v1/certificates", headers=headers), 405)
    enrolment = direct_api.post(
        "/api/v1/certificates", headers=headers, json={**enrol_body(None), "agency_id": "no-such-agency"}
    )
    assert_problem(enrolment, 404)


def test_state_conflicts_are_409(world: World, direct_api: TestClient) -> None:
    admin = world["admin"]
    serial = enrol(direct_api, admin, AGENCY_A1)
    path = f"/api/v1/certificates/{serial}"
    assert (
        direct_api.post(f"{path}/revocation", headers=admin.headers, json={"reason": "superseded"}).status_code == 200
    )
    problem = assert_problem(
        direct_api.post(f"{path}/revocation", headers=admin.headers, json={"reason": "superseded"}), 409
    )
    assert problem["type"].endswith("/conflict") and problem.get("detail")
    assert_problem(direct_api.post(f"{path}/hold", headers=admin.headers), 409)
    assert_problem(direct_api.post(f"{path}/release", headers=admin.headers), 409)
    valid = enrol(direct_api, admin, AGENCY_A1)
    assert_problem(direct_api.post(f"/api/v1/certificates/{valid}/release", headers=admin.headers), 409)


def test_problem_types_are_stable_per_kind(world: World, direct_api: TestClient) -> None:
    admin = world["admin"]
    seen: dict[int, set[str]] = {}
    for response in (
        direct_api.get("/api/v1/certificates/0123456789abcdef0123", headers=admin.headers),
        direct_api.get("/api/v1/certificates/abcdef0123456789", headers=admin.headers),
        direct_api.get("/api/v1/audit", headers=world["signer"].headers),
        direct_api.get("/api/v1/agencies", headers=world["verifier"].headers),
        direct_api.get("/api/v1/agencies"),
        direct_api.get("/api/v1/agencies", headers={"Authorization": "Bearer x"}),
    ):
        assert response.headers["content-type"].startswith(PROBLEM)
        seen.setdefault(response.status_code, set()).add(response.json()["type"])
    assert {status: len(types) for status, types in seen.items()} == {404: 1, 403: 1, 401: 1}
