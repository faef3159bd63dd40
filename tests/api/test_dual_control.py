"""Dual control with the default settings (revoke-organization, ca-administration): a first
officer's request is pending and changes nothing; a second, different officer approves (and so
executes it) or rejects it; a decision is final; every step is in the audit log."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from helpers.world import AGENCY_A1, World, assert_problem, enrol


def status_of(client: TestClient, world: World, serial: str) -> str:
    response = client.get(f"/api/v1/certificates/{serial}", headers=world["admin"].headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def audit_of(client: TestClient, world: World, object_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/audit?object_id={object_id}", headers=world["auditor"].headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_defaults() -> None:
    from govsign.config import Settings

    assert Settings(_env_file=None).dual_control_operations == {"revoke-organization", "ca-administration"}


def test_revoking_an_organization_certificate_needs_a_second_officer(world: World, dual_api: TestClient) -> None:
    first, second = world["ra-officer"], world["ra-officer2"]
    serial = enrol(dual_api, first, AGENCY_A1, profile="organization")

    requested = dual_api.post(
        f"/api/v1/certificates/{serial}/revocation", headers=first.headers, json={"reason": "key-compromise"}
    )
    assert requested.status_code == 202, requested.text
    approval = requested.json()
    assert approval["status"] == "pending" and approval["operation"] == "revoke" and approval["target"] == serial
    assert approval["requested_by"] == first.client_id and approval["agency_id"] == AGENCY_A1
    assert status_of(dual_api, world, serial) == "valid"
    approval_id = approval["id"]

    pending = dual_api.get("/api/v1/approvals?status=pending&limit=200", headers=second.headers).json()["items"]
    assert approval_id in {item["id"] for item in pending}

    # The requester cannot approve, nor can roles without approval:decide or officers of another agency.
    for caller in ("ra-officer", "auditor", "signer", "ra-officer@B"):
        assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=world[caller].headers), 403)
    assert status_of(dual_api, world, serial) == "valid"

    approved = dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=second.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["serial"] == serial and approved.json()["status"] == "revoked"
    assert approved.json()["revocation"]["reason"] == "key-compromise"
    assert status_of(dual_api, world, serial) == "revoked"

    # A decision is final.
    for action in ("approve", "reject"):
        body = assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/{action}", headers=second.headers), 409)
        assert body["type"].endswith("/conflict")
    executed = dual_api.get("/api/v1/approvals?status=executed&limit=200", headers=world["auditor"].headers)
    decided = {item["id"]: item for item in executed.json()["items"]}[approval_id]
    assert decided["decided_by"] == second.client_id and decided["decided_at"] is not None

    events = audit_of(dual_api, world, approval_id)
    succeeded = [e for e in events if e["outcome"] == "success"]
    assert [(e["action"], e["client_id"], e["agency_id"]) for e in succeeded] == [
        ("approval.request", first.client_id, first.agency),
        ("approval.approve", second.client_id, second.agency),
    ]
    assert all(e["request_id"] for e in events)
    # The refused attempts are recorded too, each with its caller.
    refused = [(e["action"], e["client_id"], e["details"]["error"]) for e in events if e["outcome"] != "success"]
    assert refused == [
        *(
            ("approval.decide", world[k].client_id, "forbidden")
            for k in ("ra-officer", "auditor", "signer", "ra-officer@B")
        ),
        ("approval.decide", second.client_id, "conflict"),
        ("approval.decide", second.client_id, "conflict"),
    ]
    revocations = [e for e in audit_of(dual_api, world, serial) if e["action"] == "certificate.revoke"]
    assert len(revocations) == 1 and revocations[0]["client_id"] == second.client_id


def test_a_rejected_request_changes_nothing(world: World, dual_api: TestClient) -> None:
    first, second = world["ra-officer"], world["ra-officer2"]
    serial = enrol(dual_api, first, AGENCY_A1, profile="organization")
    requested = dual_api.post(
        f"/api/v1/certificates/{serial}/revocation", headers=first.headers, json={"reason": "superseded"}
    )
    assert requested.status_code == 202, requested.text
    approval_id = requested.json()["id"]

    assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/reject", headers=first.headers), 403)
    rejected = dual_api.post(f"/api/v1/approvals/{approval_id}/reject", headers=second.headers)
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["decided_by"] == second.client_id
    assert status_of(dual_api, world, serial) == "valid"

    for action in ("approve", "reject"):
        assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/{action}", headers=world["admin"].headers), 409)
    assert status_of(dual_api, world, serial) == "valid"
    events = audit_of(dual_api, world, approval_id)
    assert [(e["action"], e["client_id"]) for e in events if e["outcome"] == "success"] == [
        ("approval.request", first.client_id),
        ("approval.reject", second.client_id),
    ]
    assert [e["details"]["error"] for e in events if e["outcome"] != "success"] == ["forbidden", "conflict", "conflict"]

    # An individual certificate is not under dual control by default: revoked at once.
    individual = enrol(dual_api, first, AGENCY_A1)
    direct = dual_api.post(
        f"/api/v1/certificates/{individual}/revocation", headers=first.headers, json={"reason": "superseded"}
    )
    assert direct.status_code == 200 and direct.json()["status"] == "revoked", direct.text


def test_publishing_crls_needs_a_second_administrator(world: World, dual_api: TestClient) -> None:
    admin, admin2 = world["admin"], world["admin2"]
    requested = dual_api.post("/api/v1/crls", headers=admin.headers)
    assert requested.status_code == 202, requested.text
    assert requested.json()["operation"] == "publish-crls" and requested.json()["status"] == "pending"
    approval_id = requested.json()["id"]

    assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=admin.headers), 403)
    # A CA-level action is decided by administrators only.
    assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=world["ra-officer"].headers), 403)

    published = dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=admin2.headers)
    assert published.status_code == 200, published.text
    items = published.json()["items"]
    assert items and all(isinstance(item["crl_number"], int) for item in items), items
    assert_problem(dual_api.post(f"/api/v1/approvals/{approval_id}/approve", headers=admin2.headers), 409)

    events = audit_of(dual_api, world, approval_id)
    assert [(e["action"], e["client_id"]) for e in events if e["outcome"] == "success"] == [
        ("approval.request", admin.client_id),
        ("approval.approve", admin2.client_id),
    ]
    publications = dual_api.get("/api/v1/audit?action=crl.publish&limit=200", headers=world["auditor"].headers)
    assert publications.status_code == 200 and publications.json()["items"]
