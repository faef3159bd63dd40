"""Helpers of the API tests: callers, the shared "world" of agencies and clients, apps over the
shared token, and small HTTP assertions."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from govsign.api.app import create_app
from govsign.audit.events import AuditQuery
from govsign.config import Settings
from govsign.services.bootstrap import Services
from helpers.deployment import Deployment

PROBLEM = "application/problem+json"

#: Agencies of the world: A with its sub-unit A1, and B (ids prefixed so nothing else collides).
AGENCY_A = "plt-a"
AGENCY_A1 = "plt-a1"
AGENCY_B = "plt-b"

#: So the per-source failure limiter never turns the many deliberate 401s of a test into 429s.
NO_LIMIT = 1_000_000

#: Subscriber subjects (EC P-256 keys generated in the HSM: cheap).
INDIVIDUAL_SUBJECT = "CN=Nguyễn Văn Thử {tag},O=Bộ Tư pháp,C=VN"
ORGANIZATION_SUBJECT = "CN=Vụ Pháp chế {tag},O=Bộ Tư pháp,C=VN"

#: Text that must never appear in an error body (stack traces, internals).
LEAK_MARKERS = ("Traceback", 'File "', ".py", "sqlalchemy", "psycopg", "sqlite3", "pkcs11", "Exception")


@dataclass(frozen=True)
class Caller:
    """A registered API client and its bearer token."""

    name: str
    role: str
    agency: str
    client_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """Agencies and clients in the shared database of one backend (``initialized``)."""

    deployment: Deployment
    callers: dict[str, Caller] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return str(self.deployment.settings.database_url)

    @property
    def services(self) -> Services:
        """The shared deployment's services (what the apps of this world open is their own)."""
        return self.deployment.services

    def settings(self, **overrides: Any) -> Settings:
        """The shared deployment's settings (same token, same database) with API overrides."""
        values: dict[str, Any] = self.deployment.settings.model_dump()
        values.update(background_tasks=False, auth_failure_limit=NO_LIMIT)
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]  # validated again

    @contextmanager
    def app(self, *, client: tuple[str, int] = ("testclient", 50000), **overrides: Any) -> Iterator[TestClient]:
        """An app over this world's database, entered with its lifespan."""
        application = create_app(self.settings(**overrides))
        with TestClient(application, raise_server_exceptions=False, client=client) as test_client:
            yield test_client

    def add_caller(self, key: str, role: str, agency: str, **extra: Any) -> Caller:
        name = f"plt-{key.replace('@', '-at-')}-{secrets.token_hex(3)}"
        created = self.services.directory.add_client(name, role=role, agency_id=agency, actor="test:platform", **extra)
        caller = Caller(name=name, role=role, agency=agency, client_id=created.client.id, token=created.token)
        self.callers[key] = caller
        return caller

    def __getitem__(self, key: str) -> Caller:
        return self.callers[key]


def build_world(deployment: Deployment) -> World:
    directory = deployment.services.directory
    known = {agency.id for agency in directory.list_agencies()}
    for agency_id, name, parent in (
        (AGENCY_A, "Bộ Tư pháp", None),
        (AGENCY_A1, "Vụ Pháp chế", AGENCY_A),
        (AGENCY_B, "Bộ Tài chính", None),
    ):
        if agency_id not in known:
            directory.add_agency(agency_id, name, parent, actor="test:platform")
    world = World(deployment=deployment)
    for key, role, agency in (
        ("admin", "admin", AGENCY_A),
        ("admin2", "admin", AGENCY_A),
        ("ra-officer", "ra-officer", AGENCY_A),
        ("ra-officer2", "ra-officer", AGENCY_A),
        ("signer", "signer", AGENCY_A),
        ("verifier", "verifier", AGENCY_A),
        ("auditor", "auditor", AGENCY_A),
        ("ra-officer@B", "ra-officer", AGENCY_B),
        ("ra-officer2@B", "ra-officer", AGENCY_B),
    ):
        world.add_caller(key, role, agency)
    return world


# -- HTTP helpers ----------------------------------------------------------------------------


def tag() -> str:
    return secrets.token_hex(4)


def enrol_body(agency_id: str | None, *, profile: str = "individual", subject_tag: str | None = None) -> dict[str, Any]:
    template = ORGANIZATION_SUBJECT if profile == "organization" else INDIVIDUAL_SUBJECT
    body: dict[str, Any] = {
        "profile": profile,
        "subject": template.format(tag=subject_tag or tag()),
        "key_algorithm": "ec-p256",
    }
    if profile == "individual":
        body["email"] = "thu@moj.gov.vn"
    if agency_id is not None:
        body["agency_id"] = agency_id
    return body


def enrol(client: TestClient, caller: Caller, agency_id: str, *, profile: str = "individual") -> str:
    """Issue a fresh certificate (HSM-generated EC P-256 key) and return its serial."""
    response = client.post("/api/v1/certificates", headers=caller.headers, json=enrol_body(agency_id, profile=profile))
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem document with ``status`` and leaks nothing internal."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers.get("content-type")
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("type"), str) and body["type"], body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert body.get("status") == status, body
    for marker in LEAK_MARKERS:
        assert marker not in response.text, (marker, response.text)
    return body


# -- signing requests ------------------------------------------------------------------------


def post_document(
    api: TestClient,
    path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    media_type: str,
    activation: str | None = None,
    **params: Any,
) -> Response:
    all_headers = {**headers, "Content-Type": media_type}
    if activation is not None:
        all_headers["Govsign-Activation"] = activation
    return api.post(f"/api/v1/signatures/{path}", headers=all_headers, params=params, content=body)


def post_pdf(api: TestClient, headers: dict[str, str], pdf: bytes, **params: Any) -> Response:
    return post_document(api, "pdf", headers, pdf, media_type="application/pdf", **params)


def post_cms(api: TestClient, headers: dict[str, str], content: bytes, **params: Any) -> Response:
    return post_document(api, "cms", headers, content, media_type="application/octet-stream", **params)


def signature_events(world: World, serial: str, action: str = "signature.create") -> list[dict[str, Any]]:
    with world.services.database.read_only() as ports:
        return ports.audit.search(AuditQuery(action=action, object_id=serial, limit=1000))
