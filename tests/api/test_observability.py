"""Operations: Prometheus metrics (requests by route and status, latency, HSM operations, CA
operations), an X-Request-ID on every response (a well-formed incoming one echoed), and audit
events of an API request carrying its client, agency and request id."""

from __future__ import annotations

import re
import secrets

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from helpers.world import AGENCY_A1, World, enrol_body

FAMILIES = {
    "govsign_http_requests_total": "counter",
    "govsign_http_request_duration_seconds": "histogram",
    "govsign_hsm_operations": "counter",
    "govsign_hsm_errors": "counter",
    "govsign_ca_operations_total": "counter",
}


def samples(client: TestClient) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        found[family.name] = [(s.name, dict(s.labels), s.value) for s in family.samples]
        found[family.name + ":type"] = [(family.type, {}, 0.0)]
    return found


def value(found: dict[str, list[tuple[str, dict[str, str], float]]], family: str, name: str, **labels: str) -> float:
    return sum(
        v for n, got, v in found.get(family, []) if n == name and all(got.get(k) == w for k, w in labels.items())
    )


def test_metrics_expose_requests_latency_hsm_and_ca_operations(world: World, direct_api: TestClient) -> None:
    officer = world["ra-officer"]
    before = samples(direct_api)
    enrolled = direct_api.post("/api/v1/certificates", headers=officer.headers, json=enrol_body(AGENCY_A1))
    assert enrolled.status_code == 201
    assert direct_api.get("/api/v1/certificates/0a0a0a0a", headers=officer.headers).status_code == 404
    after = samples(direct_api)

    for family, kind in FAMILIES.items():
        name = family.removesuffix("_total")
        assert name in after, f"{family} is not exposed"
        assert after[name + ":type"][0][0] == kind, (family, after[name + ":type"])

    route = "/api/v1/certificates"
    requests = ("govsign_http_requests", "govsign_http_requests_total")
    assert value(after, *requests, method="POST", route=route, status="201") == (
        value(before, *requests, method="POST", route=route, status="201") + 1
    )
    # Routes are labelled by template, never by serial (bounded cardinality).
    assert value(after, *requests, method="GET", route="/api/v1/certificates/{serial}", status="404") >= 1
    assert not any("0a0a0a0a" in str(labels) for _, labels, _ in after["govsign_http_requests"])
    latency = ("govsign_http_request_duration_seconds", "govsign_http_request_duration_seconds_count")
    assert value(after, *latency, method="POST", route=route) == value(before, *latency, method="POST", route=route) + 1
    hsm = ("govsign_hsm_operations", "govsign_hsm_operations_total")
    assert value(after, *hsm) > value(before, *hsm)
    ca = ("govsign_ca_operations", "govsign_ca_operations_total")
    assert value(after, *ca, action="certificate.issue", outcome="success") == (
        value(before, *ca, action="certificate.issue", outcome="success") + 1
    )


def test_metrics_can_be_protected_by_a_token(world: World) -> None:
    with world.app(metrics_token="metrics-secret-0123456789") as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer metrics-secret-0123456789"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "authenticated"),
    [
        ("GET", "/healthz", False),
        ("GET", "/readyz", False),
        ("GET", "/metrics", False),
        ("GET", "/pki/ca/issuing-1.crt", False),
        ("GET", "/api/v1/cas", True),
        ("GET", "/api/v1/cas", False),  # 401
        ("GET", "/api/v1/audit", True),  # 403 for an officer
        ("GET", "/api/v1/certificates/0a0a0a", True),  # 404
        ("GET", "/nowhere", False),  # 404 outside the API
        ("POST", "/api/v1/certificates", True),  # 422
    ],
)
def test_every_response_carries_a_request_id(
    world: World, direct_api: TestClient, method: str, path: str, authenticated: bool
) -> None:
    headers = world["ra-officer"].headers if authenticated else {}
    generated = direct_api.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"]), generated.headers
    incoming = f"dms-{secrets.token_hex(8)}"
    echoed = direct_api.request(
        method, path, headers={**headers, "X-Request-ID": incoming}, json={} if method == "POST" else None
    )
    assert echoed.headers["x-request-id"] == incoming
    for malformed in ("short", "has spaces in it", "x" * 65, "id\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"):
        replaced = direct_api.request(
            method,
            path,
            headers={**headers, "X-Request-ID": malformed.encode("utf-8")},
            json={} if method == "POST" else None,
        )
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"]), (malformed, replaced.headers)
        assert replaced.headers["x-request-id"].count(",") == 0


def test_413_from_the_middleware_carries_a_request_id(world: World) -> None:
    with world.app(max_request_bytes=1024) as client:
        response = client.post(
            "/api/v1/certificates",
            headers={**world["admin"].headers, "X-Request-ID": "dms-big-body-0001"},
            json={"csr": "A" * 4096},
        )
        assert response.status_code == 413
        assert response.headers["x-request-id"] == "dms-big-body-0001"


def test_audit_events_carry_client_agency_and_request_id(world: World, direct_api: TestClient) -> None:
    officer, auditor = world["ra-officer"], world["auditor"]
    request_id = f"dms-{secrets.token_hex(8)}"
    enrolled = direct_api.post(
        "/api/v1/certificates", headers={**officer.headers, "X-Request-ID": request_id}, json=enrol_body(AGENCY_A1)
    )
    assert enrolled.status_code == 201 and enrolled.headers["x-request-id"] == request_id
    serial = enrolled.json()["serial"]
    refused = direct_api.post(
        f"/api/v1/certificates/{serial}/release", headers={**officer.headers, "X-Request-ID": request_id + "-2"}
    )
    assert refused.status_code == 409

    events: list[dict[str, object]] = []
    cursor = None
    while True:
        url = f"/api/v1/audit?client_id={officer.client_id}&limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = direct_api.get(url, headers=auditor.headers)
        assert page.status_code == 200, page.text
        events += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert {e["client_id"] for e in events} == {officer.client_id}
    mine = [e for e in events if str(e["request_id"]).startswith(request_id)]
    assert [(e["action"], e["outcome"], e["request_id"]) for e in mine] == [
        ("certificate.issue", "success", request_id),
        ("certificate.release", "failure", request_id + "-2"),
    ], mine
    assert all(e["agency_id"] == officer.agency and e["actor"] == f"client:{officer.name}" for e in mine)
    assert mine[0]["object_id"] == serial or serial in str(mine[0]["details"]), mine[0]
    # Never a secret in the audit log.
    assert officer.token not in str(events)


def test_pre_produced_ocsp_answers_carry_a_request_id(world: World, direct_api: TestClient) -> None:
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    officer = world["ra-officer"]
    enrolled = direct_api.post("/api/v1/certificates", headers=officer.headers, json=enrol_body(AGENCY_A1))
    chain = direct_api.get(f"/api/v1/certificates/{enrolled.json()['serial']}/chain", headers=officer.headers)
    certificate, issuer = x509.load_pem_x509_certificates(chain.content)[:2]
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    answers = {
        "POST": direct_api.post("/pki/ocsp", content=request, headers={"Content-Type": "application/ocsp-request"}),
        "GET": direct_api.get("/pki/ocsp/" + base64.b64encode(request).decode("ascii")),
    }
    for method, answer in answers.items():
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/ocsp-response", method
        assert ocsp.load_der_ocsp_response(answer.content).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert all(answer.headers.get("x-request-id") for answer in answers.values()), {
        method: dict(answer.headers) for method, answer in answers.items()
    }
