"""openapi/openapi.json is generated from the app and must not go stale."""

from __future__ import annotations

import json
from pathlib import Path

from govsign.api.openapi import openapi_document, render

OPENAPI_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_openapi_file_matches_the_app() -> None:
    assert OPENAPI_PATH.exists(), "run: python -m govsign.api.openapi"
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(), (
        "openapi/openapi.json is stale; regenerate it with: .venv/bin/python -m govsign.api.openapi"
    )


def test_every_operation_has_a_stable_operation_id() -> None:
    document = openapi_document()
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all(not operation_id.endswith("_get") for operation_id in ids)
    json.dumps(document)


def test_the_running_service_serves_its_document_with_description_servers_and_tags(direct_api: object) -> None:
    from fastapi.testclient import TestClient

    assert isinstance(direct_api, TestClient)
    served = direct_api.get("/openapi.json")
    assert served.status_code == 200
    document = served.json()
    assert document == json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert document["info"]["description"] and document["servers"]
    used = {
        tag
        for operations in document["paths"].values()
        for operation in operations.values()
        for tag in operation.get("tags", [])
    }
    described = {tag["name"] for tag in document["tags"] if tag.get("description")}
    assert used <= described, used - described
