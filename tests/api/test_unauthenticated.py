"""Only /pki/*, /healthz, /readyz, /metrics, the public verification page (/, /verify, /v/) and
the CSC API's info and oauth2/token answer without credentials: every other route of the app (found by walking app.routes, not the OpenAPI
document) answers 401 with a problem document (a CSC error object under /csc/) and a
WWW-Authenticate challenge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from helpers.world import assert_problem

PUBLIC_PREFIXES = ("/pki/", "/verify", "/v/")
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/readyz", "/metrics", "/csc/v1/info", "/csc/v2/info", "/csc/v2/oauth2/token"}
)
#: FastAPI's generated documentation routes.
DOCS_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})

#: Plausible values for path parameters (unknown objects: the answer must be 401 before any lookup).
SAMPLE_VALUES = {
    "serial": "0a1b2c3d",
    "approval_id": "0123456789abcdef",
    "ca_id": "issuing-1",
    "name": "issuing-1",
    "encoded": "MAA",
    "verification_id": "feedface" * 4,
    "reference": "GS-" + "A" * 26,
    "profile": "tsa",
}


def walk_routes(routes: list[Any]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI wraps them)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            for method, path in walk_routes(included.routes):
                yield method, prefix + path
            continue
        path = getattr(route, "path", None)
        if path is None:
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                yield method, path


def concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return SAMPLE_VALUES[name]

    return re.sub(r"\{([^}]+)\}", value, path)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES) or path in PUBLIC_PATHS


def test_every_route_but_the_public_ones_needs_authentication(direct_api: TestClient) -> None:
    routes = sorted(set(walk_routes(direct_api.app.routes)))
    protected = [(m, p) for m, p in routes if not is_public(p) and p not in DOCS_PATHS]
    public = [(m, p) for m, p in routes if is_public(p)]
    # The walk found the API: all 29 /api/v1 operations and the public protocol endpoints.
    assert sum(1 for _, p in protected if p.startswith("/api/v1/")) == 29, protected
    csc = [(m, p) for m, p in protected if p.startswith("/csc/")]
    assert len(csc) == 18, csc  # v1: 9 operations besides info; v2: 9 besides info and oauth2/token
    assert len(protected) == 29 + len(csc), f"routes outside /api/v1 that are neither public nor docs: {protected}"
    assert len(public) >= 7, public

    for method, path in protected:
        for body in (None, {}):
            if body is not None and method != "POST":
                continue
            response = direct_api.request(method, concrete(path), json=body)
            if path.startswith("/csc/"):
                assert response.status_code == 401 and response.json()["error"] == "invalid_token", response.text
                assert response.headers["www-authenticate"].startswith('Bearer realm="govsign-csc"'), path
            else:
                assert_problem(response, 401)
                assert response.headers["www-authenticate"] == 'Bearer realm="govsign"', (method, path)
            assert response.headers.get("x-request-id"), (method, path)

    for method, path in public:
        response = direct_api.request(method, concrete(path), content=b"" if method == "POST" else None)
        assert response.status_code not in (401, 403), (method, path, response.status_code, response.text)


def test_only_the_openapi_document_of_the_documentation_routes_is_served(direct_api: TestClient) -> None:
    """The document is public (it is in the repository too); FastAPI's generated pages with their
    CDN assets are not served."""
    answered = {path: direct_api.get(path).status_code for path in sorted(DOCS_PATHS)}
    assert answered.pop("/openapi.json") == 200
    assert all(status in (401, 404) for status in answered.values()), f"answered without credentials: {answered}"
