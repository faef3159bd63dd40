"""OpenAPI additions: the Problem schema (RFC 9457) and the bearer security scheme."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC_PREFIXES = ("/pki/", "/healthz", "/readyz", "/metrics")


def install_openapi_extras(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
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
