"""OpenAPI additions: the Problem schema (RFC 9457) and the bearer security scheme."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC_PREFIXES = ("/pki/", "/healthz", "/readyz", "/metrics")

DESCRIPTION = """govsign is a certificate authority whose keys never leave a PKCS#11 HSM, and a service
that signs (PAdES, CAdES, S/MIME, digests, remote signing over the CSC API) and verifies (EN 319
102-1) documents for Vietnamese state bodies.

Clients authenticate with an API client token (`Authorization: Bearer gsk_...`, from
`govsign client add`) or, behind a trusted TLS proxy, a client certificate; the CSC operations take
a CSC access token from `auth/login` or `oauth2/token`. Errors are RFC 9457 problem documents
(`application/problem+json`) on `/api/v1`, CSC error objects on `/csc`, and the protocols' own on
`/pki/ocsp` and `/pki/tsa`. An official's credential signs only with the official's signature
activation (`Govsign-Activation`), bound to exactly the hashes being signed."""

TAGS = [
    {"name": "certificates", "description": "Enrolment and the lifecycle of subscriber certificates."},
    {"name": "approvals", "description": "Dual control: requests waiting for a second officer."},
    {"name": "ca", "description": "The certificate authorities, their CRLs and the service's own certificates."},
    {"name": "directory", "description": "Agencies and their sub-units."},
    {"name": "audit", "description": "The hash-chained audit log (auditors and administrators)."},
    {"name": "signatures", "description": "PAdES, CAdES, S/MIME and digest signing, with Decree 30 stamps."},
    {"name": "sole control", "description": "Signing credentials, officials' factors and signature activations."},
    {"name": "verification", "description": "Verification reports of PDFs, CMS, S/MIME and time-stamps."},
    {"name": "public PKI", "description": "CA certificates, CRLs, OCSP (RFC 6960) and time-stamping (RFC 3161)."},
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "remote signing (CSC API v2)", "description": "The Cloud Signature Consortium API 2.0."},
    {"name": "remote signing (CSC API v1)", "description": "The CSC API 1.0.4 field names, for existing clients."},
]


def install_openapi_extras(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=DESCRIPTION,
            routes=app.routes,
            servers=[{"url": "http://127.0.0.1:8000", "description": "The embedded default (scripts/serve)."}],
            tags=TAGS,
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = {
            "type": "object",
            "description": "RFC 9457 problem details.",
            "properties": {
                "type": {"type": "string", "format": "uri"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object"}},
                "checks": {"type": "object"},
            },
            "required": ["type", "title", "status"],
        }
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "An API client token (gsk_...)."},
            "cscAccessToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A remote-signing access token (gsc_...) from auth/login or oauth2/token.",
            },
        }
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(PUBLIC_PREFIXES):
                continue
            if path.startswith("/csc/"):
                for operation in operations.values():
                    # CSC errors are CSC error objects with 400, never FastAPI's 422
                    operation.get("responses", {}).pop("422", None)
                    if path.endswith(("/info", "/oauth2/token")):
                        continue  # public; oauth2/token authenticates with the form's client_secret
                    login = path.endswith("/auth/login")
                    operation["security"] = [{"bearer": []}] if login else [{"cscAccessToken": []}]
                continue
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                # FastAPI's default 422 body is replaced by our problem document.
                if "422" in operation.get("responses", {}):
                    operation["responses"]["422"] = {
                        "description": "The request is invalid or refused by policy.",
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
