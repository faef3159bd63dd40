"""`govsign cert issue` for each profile: the JSON it prints, the certificate checked with openssl
and pkilint, and Vietnamese subjects (UTF8String, NFC, also from NFD input)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from helpers.cli import (
    PRINTABLESTRING_TAG,
    UTF8STRING_TAG,
    VIETNAMESE_SUBJECT,
    Deployment,
    assert_lint_clean,
    assert_ok,
    nfc,
    nfd,
    openssl,
    openssl_verify,
    rfc4514_to_der_order,
    subject_attribute_encodings,
    subject_text,
)

PROFILES = ("individual", "organization", "device")
ORGANIZATION_SUBJECT = "UID=MST:0400260612,CN=Sở Y tế,O=Ủy ban nhân dân thành phố Đà Nẵng,L=Đà Nẵng,C=VN"
DEVICE_SUBJECT = "CN=Hệ thống quản lý văn bản,O=Văn phòng Chính phủ,C=VN"
CONTRACT_FIELDS = {"serial", "certificate_pem", "issuer_id", "profile", "not_before", "not_after"}


@dataclass(frozen=True)
class Issued:
    json: dict[str, Any]
    pem: Path

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.json["certificate_pem"].encode())


@pytest.fixture(scope="module")
def issued(deployment: Deployment, csrs: dict[str, Path]) -> dict[str, Issued]:
    """One certificate per profile (and one from an NFD subject), issued once per backend."""
    # An HSM-generated RSA key on the default deployment, EC on the fast one.
    individual_key = "rsa2048" if deployment.root_key.startswith("rsa") else "ec-p256"
    requests = {
        "individual": (
            "--profile", "individual", "--subject", VIETNAMESE_SUBJECT, "--email", "yen@baria.gov.vn",
            "--generate-key", individual_key,
        ),
        # No --subject: the CSR's subject is used.
        "organization": (
            "--profile", "organization", "--csr", str(csrs["organization"]), "--email", "syt@danang.gov.vn",
        ),
        "device": ("--profile", "device", "--csr", str(csrs["device"]), "--subject", DEVICE_SUBJECT),
        "nfd": ("--profile", "individual", "--subject", nfd(VIETNAMESE_SUBJECT), "--generate-key", "ec-p256"),
    }  # fmt: skip
    made = {}
    for name, args in requests.items():
        data = deployment.issue(*args)
        made[name] = Issued(json=data, pem=deployment.pem_file(f"issued-{name}", data["certificate_pem"]))
    return made


def _utc(text: str) -> dt.datetime:
    assert text.endswith("Z") or "+" in text, f"{text} carries no time zone"
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("profile", PROFILES)
def test_issue_json_has_the_contract_fields(deployment: Deployment, issued: dict[str, Issued], profile: str) -> None:
    data = issued[profile].json
    assert data.keys() >= CONTRACT_FIELDS
    assert re.fullmatch(r"[0-9a-f]+", data["serial"]), data["serial"]
    certificate = issued[profile].certificate
    assert int(data["serial"], 16) == certificate.serial_number
    assert certificate.serial_number.bit_length() >= 64
    assert data["profile"] == profile
    assert data["issuer_id"] == deployment.init_result["issuing_ca"]["id"]
    not_before, not_after = _utc(data["not_before"]), _utc(data["not_after"])
    assert not_before == certificate.not_valid_before_utc
    assert not_after == certificate.not_valid_after_utc
    assert not_before < not_after
    assert data["key_source"] == ("hsm" if profile == "individual" else "csr")


@pytest.mark.parametrize("profile", PROFILES)
def test_issued_certificate_verifies_under_root_and_issuing_ca(
    deployment: Deployment, issued: dict[str, Issued], profile: str
) -> None:
    assert_ok(openssl_verify(deployment.root_pem, issued[profile].pem, deployment.issuing_pem))


@pytest.mark.parametrize("profile", PROFILES)
def test_issued_certificate_is_pkilint_clean(deployment: Deployment, issued: dict[str, Issued], profile: str) -> None:
    assert_lint_clean(issued[profile].pem)
    assert_lint_clean(deployment.issuing_pem, issued[profile].pem, chain=True)


def test_vietnamese_subject_round_trips_through_openssl(issued: dict[str, Issued]) -> None:
    assert subject_text(issued["individual"].pem) == rfc4514_to_der_order(VIETNAMESE_SUBJECT)
    reversed_form = openssl(
        "x509", "-in", str(issued["individual"].pem), "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus,dn_rev"
    )
    assert reversed_form.stdout.strip() == f"subject={VIETNAMESE_SUBJECT}"
    assert issued["individual"].json["subject"] == VIETNAMESE_SUBJECT


def test_csr_subject_is_used_when_no_subject_is_given(issued: dict[str, Issued]) -> None:
    assert subject_text(issued["organization"].pem) == rfc4514_to_der_order(ORGANIZATION_SUBJECT)
    assert issued["organization"].json["subject"] == ORGANIZATION_SUBJECT
    assert subject_text(issued["device"].pem) == rfc4514_to_der_order(DEVICE_SUBJECT)


def _expected_attributes(subject: str) -> list[tuple[str, str]]:
    oids = {"UID": "0.9.2342.19200300.100.1.1", "CN": "2.5.4.3", "OU": "2.5.4.11", "O": "2.5.4.10", "L": "2.5.4.7"}
    oids["C"] = "2.5.4.6"
    pairs = [part.split("=", 1) for part in subject.split(",")]
    return [(oids[key], nfc(value)) for key, value in reversed(pairs)]


@pytest.mark.parametrize("name", ["individual", "nfd"], ids=["given-in-nfc", "given-in-nfd"])
def test_vietnamese_subject_is_utf8string_in_nfc(issued: dict[str, Issued], name: str) -> None:
    found = subject_attribute_encodings(issued[name].json["certificate_pem"])
    assert [(oid, value) for oid, value, _tag in found] == _expected_attributes(VIETNAMESE_SUBJECT)
    for oid, value, tag in found:
        assert value == nfc(value)
        expected_tag = PRINTABLESTRING_TAG if oid == "2.5.4.6" else UTF8STRING_TAG
        assert tag == expected_tag, f"{oid} is encoded with tag {tag:#x}"
    assert subject_text(issued[name].pem) == rfc4514_to_der_order(VIETNAMESE_SUBJECT)


def test_nfd_and_nfc_input_give_the_same_subject(issued: dict[str, Issued]) -> None:
    assert issued["nfd"].certificate.subject == issued["individual"].certificate.subject
    assert issued["nfd"].json["subject"] == VIETNAMESE_SUBJECT


def test_email_goes_into_the_subject_alternative_name(issued: dict[str, Issued]) -> None:
    san = issued["individual"].certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["yen@baria.gov.vn"]
    assert issued["individual"].json["email"] == "yen@baria.gov.vn"


def test_csr_key_is_the_certified_key(issued: dict[str, Issued], csrs: dict[str, Path]) -> None:
    for name in ("organization", "device"):
        request = x509.load_pem_x509_csr(csrs[name].read_bytes())
        spki = request.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        issued_spki = (
            issued[name].certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        )
        assert issued_spki == spki
    assert issued["organization"].certificate.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == (
        "MST:0400260612"
    )


def test_issue_with_an_agency_binds_the_certificate_to_it(sqlite_deployment: Deployment) -> None:
    """`cert issue --agency` (issue 16): the certificate belongs to the agency, so its signers
    may use it; an unknown agency is refused (exit 3) and nothing is issued."""
    import json
    import secrets

    agency = f"so-tp-{secrets.token_hex(3)}"
    assert_ok(sqlite_deployment.run("agency", "add", agency, "--name", "Sở Tư pháp"))
    issued = sqlite_deployment.run(
        "cert", "issue", "--profile", "organization", "--subject", "CN=Sở Tư pháp,O=Sở Tư pháp,C=VN",
        "--generate-key", "ec-p256", "--agency", agency, "--json",
    )  # fmt: skip
    assert_ok(issued)
    assert json.loads(issued.stdout)["agency_id"] == agency
    shown = sqlite_deployment.run("cert", "show", json.loads(issued.stdout)["serial"], "--json")
    assert json.loads(shown.stdout)["agency_id"] == agency
    unknown = sqlite_deployment.run(
        "cert", "issue", "--profile", "organization", "--subject", "CN=Không có,C=VN", "--generate-key", "ec-p256",
        "--agency", "khong-co", "--json",
    )  # fmt: skip
    assert unknown.returncode == 3 and "khong-co" in unknown.stderr, unknown.describe()


def test_out_writes_the_certificate_as_pem(sqlite_deployment: Deployment, tmp_path: Path) -> None:
    """`--out FILE` on issue, show, renew (issue 16): the certificate in PEM, the same as the JSON's."""
    import json

    issued_file, shown_file, renewed_file = tmp_path / "issued.pem", tmp_path / "shown.pem", tmp_path / "renewed.pem"
    issued = sqlite_deployment.run(
        "cert", "issue", "--profile", "device", "--subject", "CN=Máy chủ QLVB,O=Bộ Tư pháp,C=VN",
        "--generate-key", "ec-p256", "--out", str(issued_file), "--json",
    )  # fmt: skip
    assert_ok(issued)
    body = json.loads(issued.stdout)
    assert issued_file.read_text() == body["certificate_pem"]
    assert_ok(sqlite_deployment.run("cert", "show", body["serial"], "--out", str(shown_file)))
    assert shown_file.read_text() == body["certificate_pem"]
    renewed = sqlite_deployment.run("cert", "renew", body["serial"], "--out", str(renewed_file), "--json")
    assert_ok(renewed)
    assert renewed_file.read_text() == json.loads(renewed.stdout)["certificate_pem"]
    x509.load_pem_x509_certificate(renewed_file.read_bytes())
