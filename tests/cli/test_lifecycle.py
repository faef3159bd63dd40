"""Certificate lifecycle through the CLI: revoke, hold and release, renew and rekey, show and list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from helpers.cli import Deployment, assert_one_sentence_error

SHOW_FIELDS = {"serial", "status", "revocation_reason", "revoked_at", "certificate_pem"}
VIETNAM = dt.timezone(dt.timedelta(hours=7))


def _issue(deployment: Deployment, name: str) -> dict[str, Any]:
    return deployment.issue(
        "--profile", "individual", "--subject", f"CN={name},O=Bộ Tư pháp,C=VN", "--generate-key", "ec-p256"
    )  # fmt: skip


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _spki(pem: str) -> bytes:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _subject(pem: str) -> x509.Name:
    return x509.load_pem_x509_certificate(pem.encode()).subject


def test_revoke_with_reason_and_invalidity_date_shows_revoked(deployment: Deployment) -> None:
    issued = _issue(deployment, "Trần Văn Thu Hồi")
    serial = issued["serial"]
    compromised = _utc(issued["not_before"]).astimezone(VIETNAM)  # not before the certificate was issued
    revoked = deployment.ok(
        "cert", "revoke", serial, "--reason", "key-compromise", "--invalidity-date", compromised.isoformat()
    )  # fmt: skip
    assert revoked["status"] == "revoked"
    shown = deployment.ok("cert", "show", serial)
    assert shown.keys() >= SHOW_FIELDS
    assert shown["serial"] == serial
    assert shown["status"] == "revoked"
    assert shown["revocation_reason"] == "key-compromise"
    assert shown["revoked_at"], shown
    assert _utc(shown["revoked_at"]) >= _utc(issued["not_before"])
    assert _utc(shown["invalidity_date"]) == compromised
    assert shown["certificate_pem"] == issued["certificate_pem"]


def test_hold_release_and_revocation_of_a_held_certificate(deployment: Deployment) -> None:
    serial = _issue(deployment, "Phạm Thị Tạm Dừng")["serial"]
    held = deployment.ok("cert", "hold", serial)
    assert (held["status"], held["revocation_reason"]) == ("on-hold", "certificate-hold")
    assert held["revoked_at"]
    released = deployment.ok("cert", "release", serial)
    assert (released["status"], released["revocation_reason"], released["revoked_at"]) == ("valid", None, None)

    # certificate-hold given as a revocation reason suspends too; a held certificate can then be revoked.
    held_again = deployment.ok("cert", "revoke", serial, "--reason", "certificate-hold")
    assert (held_again["status"], held_again["revocation_reason"]) == ("on-hold", "certificate-hold")
    deployment.ok("cert", "revoke", serial, "--reason", "affiliation-changed")
    shown = deployment.ok("cert", "show", serial)
    assert (shown["status"], shown["revocation_reason"]) == ("revoked", "affiliation-changed")
    assert shown["revoked_at"]


@pytest.fixture(scope="module")
def revoked_and_valid(deployment: Deployment) -> tuple[str, str]:
    revoked = _issue(deployment, "Hoàng Văn Danh Sách")["serial"]
    deployment.ok("cert", "revoke", revoked, "--reason", "cessation-of-operation")
    valid = _issue(deployment, "Hoàng Thị Danh Sách")["serial"]
    return revoked, valid


def test_release_of_a_valid_certificate_is_refused(deployment: Deployment, revoked_and_valid: tuple[str, str]) -> None:
    _revoked, valid = revoked_and_valid
    with deployment.unchanged():
        result = deployment.run("cert", "release", valid)
    assert_one_sentence_error(result, valid, "hold")


@pytest.fixture(scope="module")
def renewed(deployment: Deployment) -> tuple[dict[str, Any], dict[str, Any]]:
    old = _issue(deployment, "Võ Văn Gia Hạn")
    return old, deployment.ok("cert", "renew", old["serial"])


def test_renew_gives_a_new_serial_with_the_same_subject_and_key(
    renewed: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    old, new = renewed
    assert new["serial"] != old["serial"]
    assert new["status"] == "valid"
    assert new["profile"] == old["profile"]
    assert _subject(new["certificate_pem"]) == _subject(old["certificate_pem"])
    assert _spki(new["certificate_pem"]) == _spki(old["certificate_pem"])
    assert _utc(new["not_after"]) >= _utc(old["not_after"])


def test_rekey_gives_a_new_serial_and_a_new_key(deployment: Deployment, csrs: dict[str, Path]) -> None:
    old = _issue(deployment, "Đỗ Văn Đổi Khóa")
    generated = deployment.ok("cert", "rekey", old["serial"], "--generate-key", "ec-p256")
    assert generated["serial"] != old["serial"]
    assert generated["key_source"] == "hsm" and generated["key_label"] != old["key_label"]
    assert _subject(generated["certificate_pem"]) == _subject(old["certificate_pem"])
    assert _spki(generated["certificate_pem"]) != _spki(old["certificate_pem"])
    assert generated["key_label"] in {block.get("label") for block in deployment.private_keys()}

    from_csr = deployment.ok("cert", "rekey", old["serial"], "--csr", str(csrs["rekey"]))
    assert from_csr["serial"] not in (old["serial"], generated["serial"])
    request = x509.load_pem_x509_csr(csrs["rekey"].read_bytes())
    assert _spki(from_csr["certificate_pem"]) == request.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    assert _subject(from_csr["certificate_pem"]) == _subject(old["certificate_pem"])


def test_renewed_certificate_shows_the_serial_it_replaces(
    deployment: Deployment, renewed: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    old, new = renewed
    assert deployment.ok("cert", "show", new["serial"])["replaces_serial"] == old["serial"]


def test_list_status_filter(deployment: Deployment, revoked_and_valid: tuple[str, str]) -> None:
    revoked, valid = revoked_and_valid
    only_revoked = deployment.ok("cert", "list", "--status", "revoked")
    assert only_revoked and {item["status"] for item in only_revoked} == {"revoked"}
    serials = {item["serial"] for item in only_revoked}
    assert revoked in serials and valid not in serials
    only_valid = {item["serial"] for item in deployment.ok("cert", "list", "--status", "valid")}
    assert valid in only_valid and revoked not in only_valid


def test_list_returns_objects_shaped_like_show(deployment: Deployment, revoked_and_valid: tuple[str, str]) -> None:
    listed = deployment.cert_list()
    assert listed
    for item in listed:
        assert item.keys() >= SHOW_FIELDS, item.keys()
    by_serial = {item["serial"]: item for item in listed}
    assert len(by_serial) == len(listed), "a serial is listed twice"
    for serial in revoked_and_valid:
        assert by_serial[serial] == deployment.ok("cert", "show", serial)


def test_the_service_certificates_are_not_revoked_as_a_subscribers_and_replacing_one_needs_two_operators(
    own_deployment: Deployment,
) -> None:
    """The fault campaign revoked the TSA certificate with one call and time-stamping stayed down."""
    deployment = own_deployment
    tsa = next(item for item in deployment.ok("cert", "list") if item["profile"] == "tsa" and item["status"] == "valid")
    refused = deployment.run("cert", "revoke", tsa["serial"], "--reason", "key-compromise")
    assert_one_sentence_error(refused, "tsa", "replace-service-certificate")
    alice, bob = {"USER": "alice", "LOGNAME": "alice"}, {"USER": "bob", "LOGNAME": "bob"}
    filed = deployment.ok("ca", "replace-service-certificate", "tsa", "--reason", "superseded", **alice)
    assert filed["status"] == "pending" and filed["requested_by"] == "operator:alice"
    listed = deployment.ok("approval", "list", "--status", "pending")
    assert filed["id"] in {item["id"] for item in listed}
    assert_one_sentence_error(deployment.run("approval", "approve", filed["id"], **alice), "different officer")
    approved = deployment.ok("approval", "approve", filed["id"], **bob)
    assert approved["status"] == "executed" and approved["decided_by"] == "operator:bob"
    new_serial = approved["result"]["serial"]
    assert new_serial != tsa["serial"]
    assert deployment.ok("cert", "show", tsa["serial"])["status"] == "revoked"
    new = deployment.ok("cert", "show", new_serial)
    assert new["status"] == "valid" and new["profile"] == "tsa"
