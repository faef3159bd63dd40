"""schemathesis against the app: every operation of the OpenAPI document (/api/v1 and the public
ones), authenticated as an administrator and as a signer, bounded (15 and 8 derandomized examples
per operation), with every check schemathesis has: no server error, no response that violates the
documented schema, every /api/v1 error a problem document, and no refused request that changed
state. ``scripts/schemathesis`` runs the same with many more examples."""

from __future__ import annotations

import base64
import os
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
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, PositiveDataAcceptanceConfig
from schemathesis.python import asgi as schemathesis_asgi
from sqlalchemy import text

from govsign.api.app import create_app
from govsign.api.openapi import openapi_document
from govsign.config import Settings
from helpers.world import AGENCY_A1, PROBLEM, World, enrol, enrol_body

#: Examples per operation; scripts/schemathesis sets GOVSIGN_SCHEMATHESIS_EXAMPLES for a long run.
MAX_EXAMPLES = int(os.environ.get("GOVSIGN_SCHEMATHESIS_EXAMPLES", "15"))
#: A signer may do little, and most of it is refused early: fewer examples find the same.
SIGNER_EXAMPLES = max(1, MAX_EXAMPLES // 2)


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
# A schema-valid request may still break a rule no JSON schema states (a subject's naming rules,
# a CSR's key, a PIN policy, a PDF's content): the API answers those 422, as documented.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "422"]
)


#: The REST API and the public protocols, with the API clients' tokens (the CSC API has its own
#: access tokens: test_csc_api_conforms_to_its_schema).
rest_schema = schema.exclude(path_regex="^/csc/")


#: Tables whose rows a refused request must not change (the audit log is not among them: a refusal
#: is audited; nor the factors' failure counters, which count refused codes by design).
STATE_QUERIES = (
    "SELECT id, status FROM certificates ORDER BY id",
    "SELECT id, released_at FROM revocations ORDER BY id",
    "SELECT id, status FROM approvals ORDER BY id",
    "SELECT ca_id, crl_number FROM crls ORDER BY ca_id, crl_number",
    "SELECT id, parent_id FROM agencies ORDER BY id",
    "SELECT id, role, agency_id FROM api_clients ORDER BY id",
    "SELECT certificate_id, totp_label, pin_hash FROM credential_factors ORDER BY certificate_id",
    "SELECT certificate_id, updated_at FROM stamp_images ORDER BY certificate_id",
    "SELECT COUNT(*) FROM signature_activations",
    "SELECT COUNT(*) FROM verifications",
    "SELECT COUNT(*) FROM pending_keys",
)


def state(world: World) -> list[list[tuple[object, ...]]]:
    """What a refused request must leave as it was."""
    with world.services.database.read_only() as ports:
        return [[tuple(row) for row in ports.session.execute(text(query))] for query in STATE_QUERIES]


def _run_case(case: schemathesis.Case, world: World, app: FastAPI, caller: str) -> None:
    """Every check schemathesis has (the defaults of its configuration) and ours; a refused
    request (4xx) must have changed nothing."""
    before = state(world)
    response = case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {world[caller].token}"},
        additional_checks=[api_errors_are_problem_documents],
    )
    if response.status_code >= 400:
        assert state(world) == before, (
            f"{case.method} {case.path} was refused ({response.status_code}) but changed state"
        )


@rest_schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema_as_an_administrator(
    case: schemathesis.Case, world: World, schemathesis_app: FastAPI
) -> None:
    _run_case(case, world, schemathesis_app, "admin")


@rest_schema.parametrize()
@hypothesis.settings(
    max_examples=SIGNER_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema_as_a_signer(
    case: schemathesis.Case, world: World, schemathesis_app: FastAPI
) -> None:
    _run_case(case, world, schemathesis_app, "signer")


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


# The CSC operations answer a schema-valid request refused by a rule (an unknown credential, a SAD
# that does not fit) with 400 invalid_request, as the CSC API specifies: their own configuration.
csc_schema = schemathesis.openapi.from_dict(openapi_document()).include(path_regex="^/csc/")
csc_schema.app = schema.app
csc_schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
csc_schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "400"]
)


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
    """The CSC operations with a signer's access token: every schemathesis check (no server
    error, every answer as the document describes it...) and every error a CSC error object."""
    case.call_and_validate(
        app=schemathesis_app,
        headers={"Authorization": f"Bearer {csc_access_token}"},
        additional_checks=[csc_errors_are_csc_error_objects],
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
            json={"reason": "key-compromise", "invalidity_date": enrolled.json()["not_before"]},
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
    replacement = check(
        "POST",
        "/api/v1/cas/{ca_id}/service-certificates/{profile}/replacement",
        dual_api.post("/api/v1/cas/issuing-1/service-certificates/tsa/replacement", headers=admin.headers, json={}),
    )
    assert replacement.status_code == 202  # filed; rejected, so the shared deployment keeps its TSA
    rejected = dual_api.post(f"/api/v1/approvals/{replacement.json()['id']}/reject", headers=world["admin2"].headers)
    assert rejected.status_code == 200, rejected.text
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
    assert len(operations) == 25, sorted(operations)
