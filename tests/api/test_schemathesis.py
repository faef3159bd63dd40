"""schemathesis against the app: every operation of the OpenAPI document (/api/v1 and the public
ones), authenticated as an administrator, bounded (15 derandomized examples per operation). No
server error, no response that violates the documented schema, and every /api/v1 error is a
problem document."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from io import BytesIO

import httpx
import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.python import asgi as schemathesis_asgi

from govsign.api.app import create_app
from govsign.api.openapi import openapi_document
from govsign.config import Settings
from helpers.world import AGENCY_A1, PROBLEM, World, enrol, enrol_body

MAX_EXAMPLES = 15


@pytest.fixture(scope="session")
def schemathesis_app(world: World) -> Iterator[FastAPI]:
    """The app under test (default settings: dual control on), one per backend. schemathesis' ASGI
    client enters its lifespan on the first request and keeps it until the end."""
    app = create_app(world.settings())
    try:
        yield app
    finally:
        schemathesis_asgi.shutdown_lifespans()  # closes the apps' runtimes


@schemathesis.check
def api_errors_are_problem_documents(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    if case.path.startswith("/api/") and response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM), f"{response.status_code} answered as {content_type!r}"
        body = response.json()
        assert {"type", "title", "status"} <= set(body), body
        assert body["status"] == response.status_code, body
    return True


# The document is the app's own (a dict: loading it through /openapi.json would start an app's
# lifespan at import time, and schemathesis' from_fixture loader does not run under pytest 9).
# The placeholder app only makes schemathesis use its ASGI transport; each test passes the app
# of its backend.
schemathesis.serializer.alias("application/ocsp-request", "application/octet-stream")
schemathesis.serializer.alias("application/timestamp-query", "application/octet-stream")
schemathesis.serializer.alias("application/pdf", "application/octet-stream")
schemathesis.serializer.alias("message/rfc822", "application/octet-stream")
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, world: World, schemathesis_app: FastAPI) -> None:
    case.call_and_validate(
        app=schemathesis_app,
        headers={"Authorization": f"Bearer {world['admin'].token}"},
        checks=[not_a_server_error, response_schema_conformance, api_errors_are_problem_documents],
    )


@pytest.fixture(scope="session")
def csc_access_token(world: World) -> str:
    """A CSC access token of the signer (the CSC operations answer only to such tokens)."""
    with world.app() as client:
        response = client.post("/csc/v2/auth/login", headers=world["signer"].headers, json={})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@schemathesis.check
def csc_errors_are_csc_error_objects(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    if case.path.startswith("/csc/") and response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "error_description"}, body
        assert body["error"] in ("invalid_request", "invalid_token", "access_denied", "temporarily_unavailable"), body
    return True


csc_schema = schema.include(path_regex="^/csc/")


@csc_schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_csc_api_conforms_to_its_schema(
    case: schemathesis.Case, world: World, schemathesis_app: FastAPI, csc_access_token: str
) -> None:
    """The CSC operations with a signer's access token: no server error, every answer as the
    document describes it, every error a CSC error object."""
    case.call_and_validate(
        app=schemathesis_app,
        headers={"Authorization": f"Bearer {csc_access_token}"},
        checks=[not_a_server_error, response_schema_conformance, csc_errors_are_csc_error_objects],
    )


def test_real_success_responses_conform_to_the_schema(
    world: World, direct_api: TestClient, dual_api: TestClient
) -> None:
    """Generated inputs rarely make a valid subject, so check the success bodies of real
    operations against the same document (responses of every /api/v1 operation)."""
    admin, officer, officer2, auditor = world["admin"], world["ra-officer"], world["ra-officer2"], world["auditor"]
    checked: list[tuple[str, str, int]] = []

    def check(method: str, template: str, response: httpx.Response) -> httpx.Response:
        assert response.status_code < 300, (method, template, response.status_code, response.text)
        schema[template][method].validate_response(response)
        checked.append((method, template, response.status_code))
        return response

    enrolled = check(
        "POST",
        "/api/v1/certificates",
        direct_api.post("/api/v1/certificates", headers=officer.headers, json=enrol_body(AGENCY_A1)),
    )
    serial = enrolled.json()["serial"]
    one = f"/api/v1/certificates/{serial}"
    check("GET", "/api/v1/certificates", direct_api.get("/api/v1/certificates?limit=2", headers=officer.headers))
    check("GET", "/api/v1/certificates/{serial}", direct_api.get(one, headers=officer.headers))
    for output in ("pem", "der", "pkcs7"):
        check(
            "GET",
            "/api/v1/certificates/{serial}/chain",
            direct_api.get(f"{one}/chain?format={output}", headers=officer.headers),
        )
    check("POST", "/api/v1/certificates/{serial}/hold", direct_api.post(f"{one}/hold", headers=officer.headers))
    check("POST", "/api/v1/certificates/{serial}/release", direct_api.post(f"{one}/release", headers=officer.headers))
    check(
        "POST",
        "/api/v1/certificates/{serial}/renewal",
        direct_api.post(f"{one}/renewal", headers=officer.headers, json={}),
    )
    check(
        "POST",
        "/api/v1/certificates/{serial}/revocation",
        direct_api.post(
            f"{one}/revocation",
            headers=officer.headers,
            json={"reason": "key-compromise", "invalidity_date": "2025-01-01T00:00:00Z"},
        ),
    )
    revoked = check("GET", "/api/v1/certificates/{serial}", direct_api.get(one, headers=officer.headers))
    assert revoked.json()["revocation"]["reason"] == "key-compromise"

    organization = enrol(direct_api, officer, AGENCY_A1, profile="organization")
    for action in ("approve", "reject"):
        pending = check(
            "POST",
            "/api/v1/certificates/{serial}/revocation",
            dual_api.post(
                f"/api/v1/certificates/{organization}/revocation",
                headers=officer.headers,
                json={"reason": "superseded"},
            ),
        )
        assert pending.status_code == 202
        check("GET", "/api/v1/approvals", dual_api.get("/api/v1/approvals?status=pending", headers=officer2.headers))
        check(
            "POST",
            f"/api/v1/approvals/{{approval_id}}/{action}",
            dual_api.post(f"/api/v1/approvals/{pending.json()['id']}/{action}", headers=officer2.headers),
        )
        if action == "approve":
            organization = enrol(direct_api, officer, AGENCY_A1, profile="organization")
    check("POST", "/api/v1/crls", direct_api.post("/api/v1/crls", headers=admin.headers))
    check("POST", "/api/v1/crls", dual_api.post("/api/v1/crls", headers=admin.headers))
    check("GET", "/api/v1/audit", direct_api.get("/api/v1/audit?limit=5", headers=auditor.headers))
    check("GET", "/api/v1/cas", direct_api.get("/api/v1/cas", headers=auditor.headers))
    check("GET", "/api/v1/agencies", direct_api.get("/api/v1/agencies", headers=auditor.headers))
    signer, seal = world["signer"], organization
    raw = {**signer.headers, "Content-Type": "application/pdf"}
    pdf = direct_api.post(f"/api/v1/signatures/pdf?credential={seal}", headers=raw, content=b"%PDF-1.4 not really")
    assert pdf.status_code == 422, pdf.text  # a real PDF is signed below
    writer = PdfFileWriter()
    writer.insert_page(PageObject(contents=[], media_box=generic.ArrayObject(map(generic.NumberObject, (0, 0, 9, 9)))))
    output = BytesIO()
    writer.write(output)
    check(
        "POST",
        "/api/v1/signatures/pdf",
        direct_api.post(f"/api/v1/signatures/pdf?credential={seal}&level=B-T", headers=raw, content=output.getvalue()),
    )
    check(
        "POST",
        "/api/v1/signatures/cms",
        direct_api.post(
            f"/api/v1/signatures/cms?credential={seal}",
            headers={**signer.headers, "Content-Type": "application/octet-stream"},
            content=b"schema",
        ),
    )
    digests = {"credential": seal, "digest_algorithm": "sha384", "digests": [base64.b64encode(bytes(48)).decode()]}
    check(
        "POST",
        "/api/v1/signatures/digests",
        direct_api.post("/api/v1/signatures/digests", headers=signer.headers, json=digests),
    )
    mail_seal = direct_api.post(
        "/api/v1/certificates",
        headers=officer.headers,
        json={**enrol_body(AGENCY_A1, profile="organization"), "email": "vanthu@moj.gov.vn"},
    ).json()["serial"]
    check(
        "POST",
        "/api/v1/signatures/smime",
        direct_api.post(
            f"/api/v1/signatures/smime?credential={mail_seal}",
            headers={**signer.headers, "Content-Type": "message/rfc822"},
            content=b"From: <vanthu@moj.gov.vn>\r\nSubject: schema\r\n\r\nschema\r\n",
        ),
    )
    official = enrol(direct_api, officer, AGENCY_A1)
    factors = f"/api/v1/credentials/{official}/factors"
    check(
        "POST", "/api/v1/credentials/{serial}/factors/totp", direct_api.post(f"{factors}/totp", headers=officer.headers)
    )
    check(
        "PUT",
        "/api/v1/credentials/{serial}/factors/pin",
        direct_api.put(f"{factors}/pin", headers=officer.headers, json={"pin": "739164"}),
    )
    check("GET", "/api/v1/credentials/{serial}/factors", direct_api.get(factors, headers=signer.headers))
    locked = {"hashes": [base64.b64encode(bytes(32)).decode()], "pin": "739164", "otp": "000000"}
    response = direct_api.post(f"/api/v1/credentials/{official}/activations", headers=signer.headers, json=locked)
    assert response.status_code == 403, response.text  # a wrong one-time code; a success needs the seed's code
    schema["/api/v1/credentials/{serial}/activations"]["POST"].validate_response(response)
    seal_activation = direct_api.post(
        f"/api/v1/credentials/{seal}/activations",
        headers=signer.headers,
        json={"hashes": locked["hashes"], "pin": "x" * 6},
    )
    assert seal_activation.status_code == 422, seal_activation.text
    pin_only = enrol(direct_api, officer, AGENCY_A1)
    direct_api.put(f"/api/v1/credentials/{pin_only}/factors/pin", headers=officer.headers, json={"pin": "739164"})
    check(
        "POST",
        "/api/v1/credentials/{serial}/activations",
        direct_api.post(
            f"/api/v1/credentials/{pin_only}/activations",
            headers=signer.headers,
            json={"hashes": locked["hashes"], "pin": "739164"},
        ),
    )
    from PIL import Image

    png = BytesIO()
    Image.new("RGBA", (30, 30), (200, 0, 0, 128)).save(png, format="PNG")
    check(
        "PUT",
        "/api/v1/credentials/{serial}/stamp-image",
        direct_api.put(
            f"/api/v1/credentials/{mail_seal}/stamp-image",
            headers=officer.headers,
            json={"image_png": base64.b64encode(png.getvalue()).decode()},
        ),
    )
    operations = {(m, t) for m, t, _ in checked}
    assert len(operations) == 24, sorted(operations)
