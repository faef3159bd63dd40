"""Role x endpoint x agency: every /api/v1 endpoint, for every role, on an object of the
caller's own agency subtree and of another agency, is allowed (its 2xx) or denied (403); without
credentials every one of them is 401.

Agencies: A with sub-unit A1, and B. The callers are one client per role in A, plus an RA
officer in B. "own" is an object of agency A1 for the callers of A (so the sub-unit rule is
exercised) and of B for the officer of B; "other" is the opposite. The app runs without dual
control, so allowed operations execute directly; mutating cases that are allowed get a fresh
certificate (or approval request) each, denied ones use shared objects and check they did not
change.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient

from govsign.api.middleware import DOCUMENT_ROUTES
from helpers.pdf import blank_pdf
from helpers.world import AGENCY_A1, AGENCY_B, World, assert_problem, enrol, enrol_body

ROLES = ("admin", "ra-officer", "signer", "verifier", "auditor")

# What each role may do: "+" allow, "-" deny; first sign for an object of the caller's own
# agency (or sub-unit), second for an object of another agency. Endpoints that are not bound to
# an agency (CRLs, CAs, agencies, audit) get the same request in both columns.
# fmt: off
ALLOW: dict[str, tuple[str, str, str, str, str]] = {
    # endpoint                 admin  ra-officer  signer  verifier  auditor
    "POST certificates":      ("++",  "+-",       "--",   "--",     "--"),
    "GET certificates":       ("++",  "+-",       "--",   "--",     "++"),
    "GET certificate":        ("++",  "+-",       "--",   "--",     "++"),
    "GET chain":              ("++",  "+-",       "--",   "--",     "++"),
    "POST revocation":        ("++",  "+-",       "--",   "--",     "--"),
    "POST hold":              ("++",  "+-",       "--",   "--",     "--"),
    "POST release":           ("++",  "+-",       "--",   "--",     "--"),
    "POST renewal":           ("++",  "+-",       "--",   "--",     "--"),
    "GET approvals":          ("++",  "++",       "--",   "--",     "++"),
    "POST approve":           ("++",  "+-",       "--",   "--",     "--"),
    "POST reject":            ("++",  "+-",       "--",   "--",     "--"),
    "POST crls":              ("++",  "--",       "--",   "--",     "--"),
    "POST service cert":      ("++",  "--",       "--",   "--",     "--"),
    "GET audit":              ("++",  "--",       "--",   "--",     "++"),
    "GET cas":                ("++",  "++",       "++",   "++",     "++"),
    "GET agencies":           ("++",  "++",       "--",   "--",     "++"),
    "POST sign pdf":          ("++",  "--",       "+-",   "--",     "--"),
    "POST sign cms":          ("++",  "--",       "+-",   "--",     "--"),
    "POST sign digests":      ("++",  "--",       "+-",   "--",     "--"),
    "POST sign smime":        ("++",  "--",       "+-",   "--",     "--"),
    "POST totp":              ("++",  "+-",       "--",   "--",     "--"),
    "PUT pin":                ("++",  "+-",       "--",   "--",     "--"),
    "GET factors":            ("++",  "--",       "+-",   "--",     "--"),
    "GET credentials":        ("++",  "--",       "++",   "--",     "--"),
    "GET credential":         ("++",  "--",       "+-",   "--",     "--"),
    "POST activations":       ("++",  "--",       "+-",   "--",     "--"),
    "PUT stamp image":        ("++",  "+-",       "--",   "--",     "--"),
    "POST verifications":     ("++",  "--",       "++",   "++",     "++"),
    "GET verification":       ("++",  "--",       "++",   "++",     "++"),
}
# fmt: on

#: The status of an allowed call.
SUCCESS = {
    "POST certificates": 201,
    "POST renewal": 201,
    "POST totp": 201,
    "PUT pin": 204,
    "POST activations": 201,
    "POST verifications": 201,
    "POST service cert": 202,  # asked on the dual-control app: filed, never executed here
}
#: Endpoints asked on the app with the default dual control (executing them would replace the
#: shared deployment's own service certificates under the other tests).
DUAL_CONTROL_ENDPOINTS = frozenset({"POST service cert"})
SEAL_EMAIL = "vanthu@moj.gov.vn"
PIN = "739164"
#: A verification report id for the unauthenticated case (nothing is looked up before 401).
REPORT_ID = "feedface" * 4

#: Callers: key in the world -> its agency's "own" object agency and "other" object agency.
CALLERS = {
    "admin": (AGENCY_A1, AGENCY_B),
    "ra-officer": (AGENCY_A1, AGENCY_B),
    "signer": (AGENCY_A1, AGENCY_B),
    "verifier": (AGENCY_A1, AGENCY_B),
    "auditor": (AGENCY_A1, AGENCY_B),
    "ra-officer@B": (AGENCY_B, AGENCY_A1),
}


def expected_allowed(endpoint: str, role: str, scope: str) -> bool:
    return ALLOW[endpoint][ROLES.index(role)][0 if scope == "own" else 1] == "+"


@dataclass
class Objects:
    """Shared objects per agency (for denied cases) and factories of fresh ones."""

    world: World
    direct: TestClient
    dual: TestClient
    certificate: dict[str, str]
    held: dict[str, str]
    approval: dict[str, str]
    seal: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> Any:
        return self.world["admin"]

    def fresh_certificate(self, agency: str, *, profile: str = "individual") -> str:
        return enrol(self.direct, self.admin, agency, profile=profile)

    def fresh_held(self, agency: str) -> str:
        serial = self.fresh_certificate(agency)
        response = self.direct.post(f"/api/v1/certificates/{serial}/hold", headers=self.admin.headers)
        assert response.status_code == 200, response.text
        return serial

    def fresh_approval(self, agency: str) -> str:
        """A pending revocation of an organization certificate, requested by a second officer
        of the agency (so that no caller of the matrix is its requester)."""
        requester = self.world["ra-officer2" if agency == AGENCY_A1 else "ra-officer2@B"]
        serial = self.fresh_certificate(agency, profile="organization")
        response = self.dual.post(
            f"/api/v1/certificates/{serial}/revocation", headers=requester.headers, json={"reason": "superseded"}
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    @functools.cached_property
    def report(self) -> str:
        """A stored verification report (of an unsigned PDF)."""
        response = self.direct.post(
            "/api/v1/verifications",
            headers={**self.admin.headers, "Content-Type": "application/pdf"},
            content=blank_pdf(media_box=(0, 0, 9, 9)),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def status_of(self, serial: str) -> str:
        response = self.direct.get(f"/api/v1/certificates/{serial}", headers=self.admin.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])


@pytest.fixture(scope="session")
def objects(world: World, direct_api: TestClient, dual_api: TestClient) -> Objects:
    objects = Objects(world=world, direct=direct_api, dual=dual_api, certificate={}, held={}, approval={})
    for agency in (AGENCY_A1, AGENCY_B):
        objects.certificate[agency] = objects.fresh_certificate(agency)
        objects.held[agency] = objects.fresh_held(agency)
        objects.approval[agency] = objects.fresh_approval(agency)
        body = {**enrol_body(agency, profile="organization"), "email": SEAL_EMAIL}
        response = direct_api.post("/api/v1/certificates", headers=objects.admin.headers, json=body)
        assert response.status_code == 201, response.text
        objects.seal[agency] = str(response.json()["serial"])
    return objects


# Each request: (objects, target agency, allowed) -> (method, path, body, check of side effects);
# the body is JSON, or (media type, bytes) for the endpoints that take a raw document.
Request = tuple[str, str, dict[str, Any] | tuple[str, bytes] | None, Callable[[], None] | None]


def _unchanged(objects: Objects, serial: str, status: str) -> Callable[[], None]:
    def check() -> None:
        assert objects.status_of(serial) == status, f"a denied call changed {serial}"

    return check


def _certificate_operation(action: str, body: dict[str, Any] | None, held: bool = False) -> Callable[..., Request]:
    def build(objects: Objects, agency: str, allowed: bool) -> Request:
        if allowed:
            serial = objects.fresh_held(agency) if held else objects.fresh_certificate(agency)
            return "POST", f"/api/v1/certificates/{serial}/{action}", body, None
        serial = (objects.held if held else objects.certificate)[agency]
        check = _unchanged(objects, serial, "on-hold" if held else "valid")
        return "POST", f"/api/v1/certificates/{serial}/{action}", body, check

    return build


def _decision(action: str) -> Callable[..., Request]:
    def build(objects: Objects, agency: str, allowed: bool) -> Request:
        approval = objects.fresh_approval(agency) if allowed else objects.approval[agency]
        return "POST", f"/api/v1/approvals/{approval}/{action}", None, None

    return build


MESSAGE = f"From: <{SEAL_EMAIL}>\r\nSubject: matrix\r\n\r\nmatrix\r\n".encode()


def _signature(kind: str, body: dict[str, Any] | tuple[str, bytes], query: str = "") -> Callable[..., Request]:
    def build(objects: Objects, agency: str, allowed: bool) -> Request:
        if isinstance(body, tuple):
            return "POST", f"/api/v1/signatures/{kind}?credential={objects.seal[agency]}{query}", body, None
        return "POST", f"/api/v1/signatures/{kind}", {"credential": objects.seal[agency], **body}, None

    return build


def _seal_png() -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((2, 2, 38, 38), outline=(200, 0, 0, 255), width=3)
    output = BytesIO()
    image.save(output, format="PNG")
    return base64.b64encode(output.getvalue()).decode()


SEAL_PNG = _seal_png()


def _official(objects: Objects, agency: str, allowed: bool, *, pin: bool = False) -> str:
    """A fresh official's certificate for allowed calls (with a PIN when asked), the shared one otherwise."""
    if not allowed:
        return objects.certificate[agency]
    serial = objects.fresh_certificate(agency)
    if pin:
        response = objects.direct.put(
            f"/api/v1/credentials/{serial}/factors/pin", headers=objects.admin.headers, json={"pin": PIN}
        )
        assert response.status_code == 204, response.text
    return serial


REQUESTS: dict[str, Callable[[Objects, str, bool], Request]] = {
    "POST certificates": lambda o, agency, allowed: (
        "POST",
        "/api/v1/certificates",
        {
            "profile": "individual",
            "subject": "CN=Trần Thị Ma Trận,O=Bộ Tư pháp,C=VN",
            "key_algorithm": "ec-p256",
            "agency_id": agency,
        },
        None,
    ),
    "GET certificates": lambda o, agency, allowed: (
        "GET",
        f"/api/v1/certificates?agency_id={agency}&limit=5",
        None,
        None,
    ),
    "GET certificate": lambda o, agency, allowed: ("GET", f"/api/v1/certificates/{o.certificate[agency]}", None, None),
    "GET chain": lambda o, agency, allowed: (
        "GET",
        f"/api/v1/certificates/{o.certificate[agency]}/chain?format=pkcs7",
        None,
        None,
    ),
    "POST revocation": _certificate_operation("revocation", {"reason": "affiliation-changed"}),
    "POST hold": _certificate_operation("hold", None),
    "POST release": _certificate_operation("release", None, held=True),
    "POST renewal": _certificate_operation("renewal", {}),
    "GET approvals": lambda o, agency, allowed: ("GET", "/api/v1/approvals?status=pending&limit=200", None, None),
    "POST approve": _decision("approve"),
    "POST reject": _decision("reject"),
    "POST crls": lambda o, agency, allowed: ("POST", "/api/v1/crls", None, None),
    "POST service cert": lambda o, agency, allowed: (
        "POST",
        "/api/v1/cas/issuing-1/service-certificates/tsa/replacement",
        {"reason": "superseded"},
        None,
    ),
    "GET audit": lambda o, agency, allowed: ("GET", f"/api/v1/audit?agency_id={agency}&limit=5", None, None),
    "GET cas": lambda o, agency, allowed: ("GET", "/api/v1/cas", None, None),
    "GET agencies": lambda o, agency, allowed: ("GET", "/api/v1/agencies", None, None),
    "POST sign pdf": _signature("pdf", ("application/pdf", blank_pdf(media_box=(0, 0, 9, 9))), "&level=B-B"),
    "POST sign cms": _signature("cms", ("application/octet-stream", b"matrix"), "&level=B-B"),
    "POST sign digests": _signature(
        "digests", {"digest_algorithm": "sha256", "digests": [base64.b64encode(bytes(32)).decode()], "output": "raw"}
    ),
    "POST sign smime": _signature("smime", ("message/rfc822", MESSAGE)),
    "POST totp": lambda o, agency, allowed: (
        "POST",
        f"/api/v1/credentials/{_official(o, agency, allowed)}/factors/totp",
        None,
        None,
    ),
    "PUT pin": lambda o, agency, allowed: (
        "PUT",
        f"/api/v1/credentials/{_official(o, agency, allowed)}/factors/pin",
        {"pin": PIN},
        None,
    ),
    "GET factors": lambda o, agency, allowed: (
        "GET",
        f"/api/v1/credentials/{o.certificate[agency]}/factors",
        None,
        None,
    ),
    "GET credentials": lambda o, agency, allowed: ("GET", "/api/v1/credentials", None, None),
    "GET credential": lambda o, agency, allowed: ("GET", f"/api/v1/credentials/{o.seal[agency]}", None, None),
    "POST activations": lambda o, agency, allowed: (
        "POST",
        f"/api/v1/credentials/{_official(o, agency, allowed, pin=True)}/activations",
        {"hashes": [base64.b64encode(bytes(32)).decode()], "pin": PIN},
        None,
    ),
    "PUT stamp image": lambda o, agency, allowed: (
        "PUT",
        f"/api/v1/credentials/{o.seal[agency]}/stamp-image",
        {"image_png": SEAL_PNG},
        None,
    ),
    "POST verifications": lambda o, agency, allowed: (
        "POST",
        "/api/v1/verifications",
        ("application/pdf", blank_pdf(media_box=(0, 0, 9, 9))),
        None,
    ),
    "GET verification": lambda o, agency, allowed: ("GET", f"/api/v1/verifications/{o.report}", None, None),
}

#: Paths with placeholders, for the unauthenticated case (nothing must be looked up before 401).
ANONYMOUS_PATHS = {
    "POST certificates": ("POST", "/api/v1/certificates"),
    "GET certificates": ("GET", "/api/v1/certificates"),
    "GET certificate": ("GET", "/api/v1/certificates/0a1b2c"),
    "GET chain": ("GET", "/api/v1/certificates/0a1b2c/chain"),
    "POST revocation": ("POST", "/api/v1/certificates/0a1b2c/revocation"),
    "POST hold": ("POST", "/api/v1/certificates/0a1b2c/hold"),
    "POST release": ("POST", "/api/v1/certificates/0a1b2c/release"),
    "POST renewal": ("POST", "/api/v1/certificates/0a1b2c/renewal"),
    "GET approvals": ("GET", "/api/v1/approvals"),
    "POST approve": ("POST", "/api/v1/approvals/0123456789abcdef/approve"),
    "POST reject": ("POST", "/api/v1/approvals/0123456789abcdef/reject"),
    "POST crls": ("POST", "/api/v1/crls"),
    "POST service cert": ("POST", "/api/v1/cas/issuing-1/service-certificates/tsa/replacement"),
    "GET audit": ("GET", "/api/v1/audit"),
    "GET cas": ("GET", "/api/v1/cas"),
    "GET agencies": ("GET", "/api/v1/agencies"),
    "GET credentials": ("GET", "/api/v1/credentials"),
    "GET credential": ("GET", "/api/v1/credentials/0a1b2c"),
    "POST sign pdf": ("POST", "/api/v1/signatures/pdf"),
    "POST sign cms": ("POST", "/api/v1/signatures/cms"),
    "POST sign digests": ("POST", "/api/v1/signatures/digests"),
    "POST sign smime": ("POST", "/api/v1/signatures/smime"),
    "POST totp": ("POST", "/api/v1/credentials/0a1b2c/factors/totp"),
    "PUT pin": ("PUT", "/api/v1/credentials/0a1b2c/factors/pin"),
    "GET factors": ("GET", "/api/v1/credentials/0a1b2c/factors"),
    "POST activations": ("POST", "/api/v1/credentials/0a1b2c/activations"),
    "PUT stamp image": ("PUT", "/api/v1/credentials/0a1b2c/stamp-image"),
    "POST verifications": ("POST", "/api/v1/verifications"),
    "GET verification": ("GET", f"/api/v1/verifications/{REPORT_ID}"),
}

CASES = [
    pytest.param(endpoint, caller, scope, id=f"{endpoint}-{caller}-{scope}")
    for endpoint in ALLOW
    for caller in CALLERS
    for scope in ("own", "other")
] + [pytest.param(endpoint, None, None, id=f"{endpoint}-anonymous") for endpoint in ALLOW]


def test_the_tables_cover_every_api_v1_operation(direct_api: TestClient) -> None:
    operations = {
        (method.upper(), path)
        for path, item in direct_api.app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    }
    assert len(ALLOW) == len(REQUESTS) == len(ANONYMOUS_PATHS) == len(operations)
    templated = {
        (
            method,
            path.replace(REPORT_ID, "{verification_id}")
            .replace("0a1b2c", "{serial}")
            .replace("0123456789abcdef", "{approval_id}")
            .replace("/cas/issuing-1/service-certificates/tsa/", "/cas/{ca_id}/service-certificates/{profile}/"),
        )
        for method, path in ANONYMOUS_PATHS.values()
    }
    assert templated == operations


@pytest.mark.parametrize(("endpoint", "caller_key", "scope"), CASES)
def test_role_endpoint_agency_matrix(
    endpoint: str, caller_key: str | None, scope: str | None, world: World, objects: Objects
) -> None:
    client = objects.dual if endpoint in DUAL_CONTROL_ENDPOINTS else objects.direct
    if caller_key is None:
        method, path = ANONYMOUS_PATHS[endpoint]
        media_type = next(iter(DOCUMENT_ROUTES.get(path, ())), None)
        if media_type is not None:
            response = client.request(method, path, headers={"Content-Type": media_type}, content=b"x")
        else:
            response = client.request(method, path, json={} if method == "POST" else None)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        return

    caller = world[caller_key]
    assert scope is not None
    agency = CALLERS[caller_key][0 if scope == "own" else 1]
    allowed = expected_allowed(endpoint, caller.role, scope)
    method, path, body, check_unchanged = REQUESTS[endpoint](objects, agency, allowed)
    if isinstance(body, tuple):
        response = client.request(method, path, headers={**caller.headers, "Content-Type": body[0]}, content=body[1])
    else:
        response = client.request(method, path, headers=caller.headers, json=body)

    if allowed:
        assert response.status_code == SUCCESS.get(endpoint, 200), (response.status_code, response.text)
        if endpoint == "GET approvals":
            # Listing is allowed to everyone with approval:read, but shows only what the caller may decide on.
            visible = {item["id"] for item in response.json()["items"]}
            assert (objects.approval[agency] in visible) == (caller.role in ("admin", "auditor") or scope == "own")
        if endpoint == "POST certificates":
            assert response.json()["agency_id"] == agency
    else:
        body_json = assert_problem(response, 403)
        assert body_json["type"].endswith("/forbidden"), body_json
        if check_unchanged is not None:
            check_unchanged()
