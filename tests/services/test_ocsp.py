"""The OCSP responder through Runtime.ocsp.answer: statuses, CertIDs, nonces, error statuses, the
responder's signature and certificate, pre-produced responses, lint."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from govsign.keystore.pkcs11 import OPERATION_COUNTS
from govsign.pki.authority import IssuedCertificate
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from helpers.ca import issue_from_csr as issue
from helpers.ca import revoke
from helpers.deployment import Deployment
from helpers.protocols import asn1_cert_id, asn1_request, cryptography_request, lint_ocsp_response, response_status

NEVER_ISSUED_SERIAL = 0x5EED5EED5EED5EED5EED


def _signs() -> int:
    return OPERATION_COUNTS.get("sign", 0)


def _issuing(hierarchy: HierarchyResult) -> x509.Certificate:
    return x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)


def verified(der: bytes, issuing: x509.Certificate) -> ocsp.OCSPResponse:
    """Parse a successful response and check its signature, responder and responder certificate."""
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    [responder] = response.certificates
    responder.verify_directly_issued_by(issuing)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    spki = asn1_x509.Certificate.load(responder.public_bytes(serialization.Encoding.DER)).public_key
    assert response.responder_key_hash == hashlib.sha1(spki["public_key"].contents[1:]).digest()
    public = responder.public_key()
    assert response.signature_hash_algorithm is not None
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
        )
    return response


@pytest.fixture
def certificates(initialized_services: Services) -> tuple[IssuedCertificate, IssuedCertificate]:
    """A good certificate and one revoked for keyCompromise, both issued by this test."""
    good = issue(initialized_services, common_name="Lê Thị Tốt")
    revoked = issue(initialized_services, common_name="Đỗ Văn Thu Hồi")
    revoke(initialized_services, revoked.record.serial_hex, RevocationReason.KEY_COMPROMISE)
    return good, revoked


def test_good_revoked_and_unknown_with_sha1_and_sha256_cert_ids(
    initialized_services: Services,
    hierarchy: HierarchyResult,
    certificates: tuple[IssuedCertificate, IssuedCertificate],
    tmp_path: Path,
) -> None:
    good, revoked = certificates
    issuing = _issuing(hierarchy)
    now = initialized_services.clock.now()
    for algorithm in (hashes.SHA1(), hashes.SHA256()):
        nonce = os.urandom(16)
        for certificate, expected in ((good, ocsp.OCSPCertStatus.GOOD), (revoked, ocsp.OCSPCertStatus.REVOKED)):
            for request_nonce in (None, nonce):
                request = cryptography_request(
                    certificate.certificate, issuing, algorithm=algorithm, nonce=request_nonce
                )
                answer = initialized_services.ocsp.answer(request)
                assert answer.status == "successful"
                response = verified(answer.der, issuing)
                assert response.certificate_status is expected
                assert response.serial_number == certificate.certificate.serial_number
                assert isinstance(response.hash_algorithm, type(algorithm))
                assert (
                    response.issuer_key_hash
                    == ocsp.OCSPRequestBuilder()
                    .add_certificate(certificate.certificate, issuing, algorithm)
                    .build()
                    .issuer_key_hash
                )
                assert response.this_update_utc <= now < response.next_update_utc  # type: ignore[operator]
                if expected is ocsp.OCSPCertStatus.REVOKED:
                    assert response.revocation_time_utc == now
                    assert response.revocation_reason is x509.ReasonFlags.key_compromise
                if request_nonce is not None:
                    echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
                    assert echoed == request_nonce
                else:
                    assert not any(isinstance(e.value, x509.OCSPNonce) for e in response.extensions)
                (tmp_path / f"{expected.name}.der").write_bytes(answer.der)

    unknown = asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL, "sha256")])
    answer = initialized_services.ocsp.answer(unknown)
    response = verified(answer.der, issuing)
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    (tmp_path / "UNKNOWN.der").write_bytes(answer.der)
    for name in ("GOOD", "REVOKED", "UNKNOWN"):
        assert lint_ocsp_response(tmp_path / f"{name}.der") == "", name


def test_several_cert_ids_get_single_responses_in_request_order(
    initialized_services: Services,
    hierarchy: HierarchyResult,
    certificates: tuple[IssuedCertificate, IssuedCertificate],
) -> None:
    good, revoked = certificates
    issuing = _issuing(hierarchy)
    cert_ids = [
        asn1_cert_id(issuing, revoked.certificate.serial_number, "sha256"),
        asn1_cert_id(issuing, NEVER_ISSUED_SERIAL, "sha1"),
        asn1_cert_id(issuing, good.certificate.serial_number, "sha1"),
    ]
    nonce = os.urandom(16)
    answer = initialized_services.ocsp.answer(asn1_request(cert_ids, raw_nonce_value=nonce))
    assert answer.status == "successful" and not answer.pre_produced
    response = verified(answer.der, issuing)
    singles = list(response.responses)
    assert [s.serial_number for s in singles] == [
        revoked.certificate.serial_number,
        NEVER_ISSUED_SERIAL,
        good.certificate.serial_number,
    ]
    assert [s.certificate_status for s in singles] == [
        ocsp.OCSPCertStatus.REVOKED,
        ocsp.OCSPCertStatus.UNKNOWN,
        ocsp.OCSPCertStatus.GOOD,
    ]
    assert [type(s.hash_algorithm) for s in singles] == [hashes.SHA256, hashes.SHA1, hashes.SHA1]
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


@pytest.mark.parametrize("length", [1, 16, 32])
def test_nonces_of_1_to_32_octets_are_echoed(
    initialized_services: Services, hierarchy: HierarchyResult, length: int
) -> None:
    issuing = _issuing(hierarchy)
    nonce = os.urandom(length)
    request = asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL)], raw_nonce_value=nonce)
    answer = initialized_services.ocsp.answer(request)
    assert answer.status == "successful" and answer.nonce
    response = verified(answer.der, issuing)
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce


def test_malformed_and_unauthorized_requests(
    initialized_services: Services, hierarchy: HierarchyResult, initialized: Deployment
) -> None:
    issuing = _issuing(hierarchy)
    root = x509.load_der_x509_certificate(hierarchy.root.certificate_der)
    valid = asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL)])
    unknown_issuer = x509.load_der_x509_certificate(hierarchy.ocsp_responder.certificate_der)  # not a CA of ours
    cases = {
        "empty": (b"", "malformed_request"),
        "garbage": (random.Random(5280).randbytes(300), "malformed_request"),
        "text": (b"GET / HTTP/1.1\r\n\r\n", "malformed_request"),
        "truncated": (valid[:20], "malformed_request"),
        "trailing bytes": (valid + b"\x00", "malformed_request"),
        "nonce of 0 octets": (
            asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL)], raw_nonce_value=b""),
            "malformed_request",
        ),
        "nonce of 33 octets": (
            asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL)], raw_nonce_value=os.urandom(33)),
            "malformed_request",
        ),
        "no CertID": (asn1_request([]), "malformed_request"),
        "too many CertIDs": (
            asn1_request([asn1_cert_id(issuing, n) for n in range(1, initialized.settings.ocsp_max_cert_ids + 2)]),
            "malformed_request",
        ),
        "issuer is the root CA": (asn1_request([asn1_cert_id(root, NEVER_ISSUED_SERIAL)]), "unauthorized"),
        "unknown issuer": (asn1_request([asn1_cert_id(unknown_issuer, 12345)]), "unauthorized"),
        "one unknown issuer among ours": (
            asn1_request([asn1_cert_id(issuing, NEVER_ISSUED_SERIAL), asn1_cert_id(unknown_issuer, 1)]),
            "unauthorized",
        ),
    }
    for name, (request, expected) in cases.items():
        signs = _signs()
        answer = initialized_services.ocsp.answer(request)
        assert (answer.status, response_status(answer.der)) == (expected, expected), name
        assert answer.der == bytes.fromhex("30030a01" + {"malformed_request": "01", "unauthorized": "06"}[expected])
        assert _signs() == signs, f"{name}: nothing is signed for an error status"


def test_pre_produced_responses_are_served_without_the_hsm_and_replaced_by_a_revocation(
    initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    issuing = _issuing(hierarchy)
    issued = issue(initialized_services, common_name="Phan Thị Sẵn")
    plain = {
        name: cryptography_request(issued.certificate, issuing, algorithm=algorithm)
        for name, algorithm in (("sha1", hashes.SHA1()), ("sha256", hashes.SHA256()))
    }
    for name, request in plain.items():
        signs = _signs()
        answer = initialized_services.ocsp.answer(request)
        assert _signs() == signs, f"{name}: a pre-produced response needs no HSM operation"
        assert answer.pre_produced and answer.status == "successful"
        assert verified(answer.der, issuing).certificate_status is ocsp.OCSPCertStatus.GOOD

    signs = _signs()
    answer = initialized_services.ocsp.answer(cryptography_request(issued.certificate, issuing, nonce=os.urandom(16)))
    assert _signs() == signs + 1, "a request with a nonce is signed live"
    assert not answer.pre_produced and answer.nonce

    revoke(initialized_services, issued.record.serial_hex, RevocationReason.AFFILIATION_CHANGED)
    for name, request in plain.items():
        signs = _signs()
        answer = initialized_services.ocsp.answer(request)
        assert _signs() == signs and answer.pre_produced, f"{name}: the revocation replaced the stored response"
        response = verified(answer.der, issuing)
        assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert response.revocation_reason is x509.ReasonFlags.affiliation_changed
        assert response.revocation_time_utc == initialized_services.clock.now()


def test_hold_answers_revoked_certificate_hold_and_release_answers_good_again(
    initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    from helpers.ca import release

    issuing = _issuing(hierarchy)
    issued = issue(initialized_services, common_name="Trịnh Văn Tạm")
    request = cryptography_request(issued.certificate, issuing, algorithm=hashes.SHA256())
    revoke(initialized_services, issued.record.serial_hex, RevocationReason.CERTIFICATE_HOLD)
    answer = initialized_services.ocsp.answer(request)
    response = verified(answer.der, issuing)
    assert answer.pre_produced and response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason is x509.ReasonFlags.certificate_hold
    release(initialized_services, issued.record.serial_hex)
    answer = initialized_services.ocsp.answer(request)
    assert answer.pre_produced and verified(answer.der, issuing).certificate_status is ocsp.OCSPCertStatus.GOOD
    nonce = cryptography_request(issued.certificate, issuing, nonce=os.urandom(8))
    assert verified(initialized_services.ocsp.answer(nonce).der, issuing).certificate_status is ocsp.OCSPCertStatus.GOOD
