"""``signature_algorithm=rsa-pss|rsa-pkcs1v15`` on the PDF, CMS and digest endpoints (Circular
15/2025 Appendix I names RSASSA-PSS): a query parameter on raw-body requests, the same name in
JSON; the default is GOVSIGN_RSA_SIGNATURE_ALGORITHM (S/MIME stays PKCS#1 v1.5); a bad value is
a 422 problem, an RSA scheme for an EC credential a 422 problem that is audited; the signature's
audit event records the algorithm."""

from __future__ import annotations

import base64
import email
import hashlib
from collections.abc import Iterator
from io import BytesIO

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader

from govsign.config import load_settings
from govsign.errors import ConfigurationError
from helpers.pdf import blank_pdf
from helpers.world import (
    AGENCY_A1,
    ORGANIZATION_SUBJECT,
    World,
    assert_problem,
    enrol,
    post_cms,
    post_document,
    post_pdf,
    signature_events,
    tag,
)

DOCUMENT = "Văn bản ký bằng RSASSA-PSS.".encode()
PSS, PKCS1 = "rsassa_pss", "sha256_rsa"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[TestClient]:
    """An app whose default for RSA keys is RSASSA-PSS (the shipped default is PKCS#1 v1.5)."""
    with world.app(dual_control="", rsa_signature_algorithm="rsa-pss") as client:
        yield client


@pytest.fixture(scope="module")
def seal(world: World, api: TestClient) -> str:
    """An organization certificate of agency A1 with an RSA-2048 key generated in the HSM."""
    body = {
        "profile": "organization",
        "subject": ORGANIZATION_SUBJECT.format(tag=tag()),
        "key_algorithm": "rsa2048",
        "agency_id": AGENCY_A1,
        "email": "vanthu@moj.gov.vn",
    }
    response = api.post("/api/v1/certificates", headers=world["ra-officer"].headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["serial"])


def _last_algorithm(world: World, serial: str) -> str:
    return str(signature_events(world, serial)[-1]["details"]["signature_algorithm"])


def _cms_algorithm(signature: bytes) -> str:
    (signer_info,) = cms.ContentInfo.load(signature)["content"]["signer_infos"]
    return str(signer_info["signature_algorithm"]["algorithm"].native)


def _pdf_algorithm(pdf: bytes) -> str:
    (embedded,) = PdfFileReader(BytesIO(pdf)).embedded_signatures
    return str(embedded.signer_info["signature_algorithm"]["algorithm"].native)


def test_the_setting_is_checked() -> None:
    assert load_settings().rsa_signature_algorithm == "rsa-pkcs1v15"
    assert load_settings(rsa_signature_algorithm="rsa-pss").rsa_signature_algorithm == "rsa-pss"
    with pytest.raises(ConfigurationError, match="GOVSIGN_RSA_SIGNATURE_ALGORITHM"):
        load_settings(rsa_signature_algorithm="rsa-x931")


def test_pdf_signature_algorithm(world: World, api: TestClient, seal: str) -> None:
    signer = world["signer"].headers
    for params, expected, audited in (
        ({}, PSS, "rsa-pss"),  # the setting's default
        ({"signature_algorithm": "rsa-pkcs1v15"}, PKCS1, "rsa-pkcs1v15"),
        ({"signature_algorithm": "rsa-pss"}, PSS, "rsa-pss"),
    ):
        response = post_pdf(api, signer, blank_pdf(), credential=seal, level="B-B", **params)
        assert response.status_code == 200, response.text
        assert _pdf_algorithm(response.content) == expected
        assert _last_algorithm(world, seal) == audited
    body = {"credential": seal, "document": _b64(blank_pdf()), "level": "B-B", "signature_algorithm": "rsa-pkcs1v15"}
    response = api.post("/api/v1/signatures/pdf", headers=signer, json=body)
    assert response.status_code == 200, response.text
    assert _pdf_algorithm(base64.b64decode(response.json()["document"])) == PKCS1
    assert "signature_algorithm" in str(
        assert_problem(post_pdf(api, signer, blank_pdf(), credential=seal, signature_algorithm="pss"), 422)
    )
    assert_problem(api.post("/api/v1/signatures/pdf", headers=signer, json={**body, "signature_algorithm": "x"}), 422)


def test_cms_signature_algorithm(world: World, api: TestClient, seal: str) -> None:
    signer = world["signer"].headers
    response = post_cms(api, signer, DOCUMENT, credential=seal, level="B-B", signature_algorithm="rsa-pkcs1v15")
    assert response.status_code == 200, response.text
    assert _cms_algorithm(response.content) == PKCS1 and _last_algorithm(world, seal) == "rsa-pkcs1v15"
    response = post_cms(api, signer, DOCUMENT, credential=seal, level="B-B")
    assert response.status_code == 200, response.text
    assert _cms_algorithm(response.content) == PSS and _last_algorithm(world, seal) == "rsa-pss"
    body = {"credential": seal, "document": _b64(DOCUMENT), "level": "B-B", "signature_algorithm": "rsa-pss"}
    response = api.post("/api/v1/signatures/cms", headers=signer, json=body)
    assert response.status_code == 200, response.text
    assert _cms_algorithm(base64.b64decode(response.json()["document"])) == PSS
    assert_problem(post_cms(api, signer, DOCUMENT, credential=seal, signature_algorithm="RSA-PSS"), 422)
    assert_problem(api.post("/api/v1/signatures/cms", headers=signer, json={**body, "signature_algorithm": 1}), 422)


def test_raw_digest_signature_is_the_bare_pss_value(
    world: World, api: TestClient, seal: str, certificate_key: rsa.RSAPublicKey
) -> None:
    digest = hashlib.sha384(DOCUMENT).digest()
    body = {"credential": seal, "digest_algorithm": "sha384", "digests": [_b64(digest)], "output": "raw"}
    response = api.post("/api/v1/signatures/digests", headers=world["signer"].headers, json=body)  # the default
    assert response.status_code == 200, response.text
    (signature,) = (base64.b64decode(value) for value in response.json()["signatures"])
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    certificate_key.verify(signature, digest, pss, utils.Prehashed(hashes.SHA384()))
    event = signature_events(world, seal)[-1]
    assert event["details"]["format"] == "raw" and event["details"]["signature_algorithm"] == "rsa-pss"
    response = api.post(
        "/api/v1/signatures/digests", headers=world["signer"].headers, json={**body, "signature_algorithm": "ecdsa"}
    )
    assert_problem(response, 422)


def test_smime_keeps_pkcs1_v15_whatever_the_setting(world: World, api: TestClient, seal: str) -> None:
    message = (
        b"From: <vanthu@moj.gov.vn>\r\nTo: dan@example.vn\r\nSubject: test\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\nKinh gui.\r\n"
    )
    response = post_document(
        api, "smime", world["signer"].headers, message, media_type="message/rfc822", credential=seal
    )
    assert response.status_code == 200, response.text
    (p7s,) = (
        part.get_payload(decode=True)
        for part in email.message_from_bytes(response.content).walk()
        if part.get_content_type() == "application/pkcs7-signature"
    )
    assert _cms_algorithm(p7s) == PKCS1 and _last_algorithm(world, seal) == "rsa-pkcs1v15"


@pytest.fixture(scope="module")
def certificate_key(world: World, api: TestClient, seal: str) -> rsa.RSAPublicKey:
    response = api.get(f"/api/v1/certificates/{seal}", headers=world["ra-officer"].headers)
    assert response.status_code == 200, response.text
    key = x509.load_pem_x509_certificate(response.json()["certificate_pem"].encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_an_rsa_scheme_for_an_ec_credential_is_refused_and_audited(world: World, api: TestClient) -> None:
    ec_seal = enrol(api, world["admin"], AGENCY_A1, profile="organization")
    signer = world["signer"].headers
    response = post_cms(api, signer, DOCUMENT, credential=ec_seal, signature_algorithm="rsa-pss")
    detail = assert_problem(response, 422)["detail"]
    assert "rsa-pss is for RSA keys" in detail and "EC key" in detail, detail
    (event,) = signature_events(world, ec_seal)
    assert event["outcome"] == "failure"
    response = post_cms(api, signer, DOCUMENT, credential=ec_seal, level="B-B")  # the RSA default does not apply
    assert response.status_code == 200, response.text
    assert _cms_algorithm(response.content) == "sha256_ecdsa" and _last_algorithm(world, ec_seal) == "ecdsa"
