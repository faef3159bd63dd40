"""Cursor pagination visits every item exactly once, in the same order as one big page:
certificates, audit events and approval requests."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from fastapi.testclient import TestClient

from govsign.storage.approvals import ApprovalRecord
from helpers.world import AGENCY_A1, World, enrol_body


def walk(client: TestClient, url: str, headers: dict[str, str], limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        page = client.get(f"{url}&limit={limit}" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert page.status_code == 200, page.text
        body: dict[str, Any] = page.json()
        ids += [str(item.get("serial") or item["id"]) for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("pagination does not end")


def test_certificate_pages(world: World, direct_api: TestClient) -> None:
    officer = world["ra-officer"]
    tag = f"page{secrets.token_hex(3)}"
    for _ in range(5):
        body = enrol_body(AGENCY_A1, subject_tag=tag)
        assert direct_api.post("/api/v1/certificates", headers=officer.headers, json=body).status_code == 201
    url = f"/api/v1/certificates?subject_contains={tag}"
    everything = walk(direct_api, url, officer.headers, 200)
    assert len(everything) == 5
    assert walk(direct_api, url, officer.headers, 2) == everything
    assert walk(direct_api, url, officer.headers, 1) == everything


def test_audit_pages(world: World, direct_api: TestClient) -> None:
    auditor = world["auditor"]
    url = f"/api/v1/audit?client_id={world['ra-officer'].client_id}"
    everything = walk(direct_api, url, auditor.headers, 200)
    assert len(everything) >= 5
    assert walk(direct_api, url, auditor.headers, 2) == everything


def test_approval_pages(world: World, direct_api: TestClient) -> None:
    # Three requests one second apart whose random ids do not follow their time order (stored
    # through the approval port with a status of their own, so that the listing holds just them).
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    suffix = secrets.token_hex(7)
    with world.services.database.unit_of_work() as ports:
        for prefix, age in (("80", 0), ("00", 1), ("ff", 2)):
            ports.approvals.add(
                ApprovalRecord(
                    id=prefix + suffix,
                    operation="publish-crls",
                    target="all",
                    parameters={},
                    agency_id=None,
                    requested_by=world["admin"].client_id,
                    requested_at=now - dt.timedelta(seconds=age),
                    status="failed",
                    decided_by=None,
                    decided_at=None,
                    result=None,
                )
            )
    url = "/api/v1/approvals?status=failed"
    everything = walk(direct_api, url, world["admin2"].headers, 200)
    assert everything[:3] == ["80" + suffix, "00" + suffix, "ff" + suffix]  # newest first
    assert walk(direct_api, url, world["admin2"].headers, 1) == everything
