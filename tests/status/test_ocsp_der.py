"""The responder assembles its DER by hand on the hot path: it must be canonical DER that
strict decoders re-encode to the same bytes, and its signature must verify."""

from __future__ import annotations

import os

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from govsign.pki.authority import HierarchyResult
from govsign.pki.ports import RevocationReason
from govsign.runtime import Runtime

from .support import asn1_cert_id, asn1_request, issue, revoke


def test_live_response_is_canonical_der_and_verifies(initialized_runtime: Runtime, hierarchy: HierarchyResult) -> None:
    runtime = initialized_runtime
    good = issue(runtime, common_name="Trần Văn Chuẩn")
    revoked = issue(runtime, common_name="Lê Thị Thu Hồi")
    revoke(runtime, revoked.record.serial_hex, RevocationReason.KEY_COMPROMISE)
    issuer = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    cert_ids = [
        asn1_cert_id(issuer, good.certificate.serial_number, "sha1"),
        asn1_cert_id(issuer, revoked.certificate.serial_number, "sha256"),
        asn1_cert_id(issuer, 0x5EED5EED5EED, "sha1"),
    ]
    answer = runtime.answer_ocsp(asn1_request(cert_ids, raw_nonce_value=core.OctetString(os.urandom(16)).dump()))
    assert answer.status == "successful"

    parsed = asn1_ocsp.OCSPResponse.load(answer.der, strict=True)
    assert parsed.dump(force=True) == answer.der, "re-encoding gives the same bytes: canonical DER"

    response = ocsp.load_der_ocsp_response(answer.der)
    statuses = [single.certificate_status for single in response.responses]
    assert statuses == [ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED, ocsp.OCSPCertStatus.UNKNOWN]
    revoked_single = list(response.responses)[1]
    assert revoked_single.revocation_reason is x509.ReasonFlags.key_compromise
    responder = response.certificates[0]
    public = responder.public_key()
    assert response.signature_hash_algorithm is not None
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(
            response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm
        )
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))
