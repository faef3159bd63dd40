"""The responder assembles its DER by hand on the hot path: it must be canonical DER that
strict decoders re-encode to the same bytes, and its signature must verify."""

from __future__ import annotations

import os

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp

from govsign.der import tlv as der_tlv
from govsign.pki import ocsp_request
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.records import RevocationReason
from govsign.services.bootstrap import Services
from govsign.storage.ocsp_reader import OCSPStatusReader, StoredResponseReader
from helpers.ca import issue_from_csr as issue
from helpers.ca import revoke
from helpers.protocols import asn1_cert_id, asn1_request


def test_live_response_is_canonical_der_and_verifies(
    initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    services = initialized_services
    good = issue(services, common_name="Trần Văn Chuẩn")
    revoked = issue(services, common_name="Lê Thị Thu Hồi")
    revoke(services, revoked.record.serial_hex, RevocationReason.KEY_COMPROMISE)
    issuer = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    cert_ids = [
        asn1_cert_id(issuer, good.certificate.serial_number, "sha1"),
        asn1_cert_id(issuer, revoked.certificate.serial_number, "sha256"),
        asn1_cert_id(issuer, 0x5EED5EED5EED, "sha1"),
    ]
    answer = services.ocsp.answer(asn1_request(cert_ids, raw_nonce_value=core.OctetString(os.urandom(16)).dump()))
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


# -- the request walker ---------------------------------------------------------------------


def _request(tbs: dict[str, object], **outer: object) -> bytes:
    return bytes(asn1_ocsp.OCSPRequest({"tbs_request": tbs, **outer}).dump())


def _ordinary_requests(issuer: x509.Certificate) -> list[bytes]:
    nonce = os.urandom(16)
    one = [asn1_cert_id(issuer, 0x1234ABCD, "sha1")]
    several = [
        asn1_cert_id(issuer, serial, name) for serial, name in ((1, "sha256"), (2**159, "sha384"), (77, "sha512"))
    ]
    null_parameters = asn1_ocsp.CertId.load(one[0].dump())
    null_parameters["hash_algorithm"] = {"algorithm": "sha1", "parameters": core.Null()}
    return [
        asn1_request(one),
        asn1_request(one, raw_nonce_value=nonce),
        asn1_request(several, raw_nonce_value=b"\x00"),
        asn1_request(several, raw_nonce_value=b"\xff" * 32),
        asn1_request(one, raw_nonce_value=core.OctetString(nonce).dump()),  # wrapped twice: 18 octets
        asn1_request([null_parameters]),
        asn1_request([asn1_cert_id(issuer, 0x80, "sha256")] * 20),
    ]


def _unusual_requests(issuer: x509.Certificate) -> list[bytes]:
    cert_id = asn1_cert_id(issuer, 0x1234ABCD, "sha1")
    items = [{"req_cert": cert_id}]
    ordinary = asn1_request([cert_id])
    assert ordinary[1] < 0x80 and ordinary[3] < 0x80
    tlv = der_tlv
    nonce_extension = {"extn_id": "nonce", "critical": False, "extn_value": core.OctetString(b"n" * 8)}
    single_extension = {"extn_id": "1.3.6.1.5.5.7.48.1.2", "critical": False, "extn_value": b"\x04\x01n"}
    other_extension = {"extn_id": "acceptable_responses", "critical": False, "extn_value": ["basic_ocsp_response"]}
    md5 = asn1_ocsp.CertId.load(cert_id.dump())
    md5["hash_algorithm"] = {"algorithm": "md5"}
    negative = asn1_ocsp.CertId.load(cert_id.dump())
    negative["serial_number"] = -5
    return [
        b"",
        ordinary + b"\x00",  # trailing data
        b"\x30\x80" + ordinary[2:] + b"\x00\x00",  # indefinite length (BER)
        tlv(0x30, tlv(0x30, b"\xa0\x03\x02\x01\x00" + ordinary[4:])),  # version v1 encoded: not DER
        _request({"requestor_name": {"dns_name": "client.example"}, "request_list": items}),
        _request({"request_list": [{"req_cert": cert_id, "single_request_extensions": [single_extension]}]}),
        _request({"request_list": items, "request_extensions": [other_extension]}),
        _request({"request_list": items, "request_extensions": [other_extension, nonce_extension]}),
        _request({"request_list": items, "request_extensions": [dict(nonce_extension, critical=True)]}),
        asn1_request([cert_id], raw_nonce_value=b""),
        asn1_request([cert_id], raw_nonce_value=b"x" * 33),
        asn1_request([]),
        asn1_request([cert_id] * 21),
        asn1_request([md5]),
        asn1_request([negative]),
        _request(
            {"request_list": items},
            optional_signature={"signature_algorithm": {"algorithm": "sha256_rsa"}, "signature": b"\x00" * 8},
        ),
    ]


def _outcome(parse: object, der: bytes) -> object:
    assert callable(parse)
    try:
        return parse(der, 20)
    except ocsp_request.MalformedRequestError:
        return "malformedRequest"


def test_the_request_walker_reads_ordinary_requests_as_the_full_parser_does(hierarchy: HierarchyResult) -> None:
    issuer = x509.load_der_x509_certificate(hierarchy.issuing.certificate_der)
    for der in _ordinary_requests(issuer):
        walked = ocsp_request.walk_request(der, 20)
        assert walked is not None, der.hex()
        assert walked == ocsp_request._parse_request_asn1(der, 20)
        assert walked == ocsp_request.parse_request(der, 20)
    for der in _unusual_requests(issuer):
        assert ocsp_request.walk_request(der, 20) is None, der.hex()
        assert _outcome(ocsp_request.parse_request, der) == _outcome(ocsp_request._parse_request_asn1, der)
    # Truncations and single-byte corruptions of an ordinary request: the walker never accepts
    # what the full parser would refuse, and agrees with it on what both accept.
    base = _ordinary_requests(issuer)[1]
    for index in range(len(base)):
        for der in (base[:index], base[:index] + bytes([base[index] ^ 0x41]) + base[index + 1 :]):
            walked = ocsp_request.walk_request(der, 20)
            if walked is not None:
                assert walked == ocsp_request._parse_request_asn1(der, 20), der.hex()


def test_a_live_answer_copies_the_status_of_a_fresh_pre_produced_response_or_reads_the_tables(
    initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    services = initialized_services
    good = issue(services, common_name="Trần Văn Sao Chép")
    revoked = issue(services, common_name="Lê Thị Bảng")
    revoke(services, revoked.record.serial_hex, RevocationReason.AFFILIATION_CHANGED)
    responder = services.ocsp.responder()
    assert responder is not None
    engine = services.database.engine
    source = OCSPStatusReader(engine, StoredResponseReader(engine))
    now = services.clock.now()
    issuer_id = good.record.issuer_id

    class TablesOnly:
        def __getattr__(self, name: str) -> object:
            return getattr(source, name)

        def stored_response(self, *_args: object) -> None:
            return None

    for issued in (good, revoked):
        for algorithm in ("sha1", "sha256", "sha384"):
            cert_id = responder.directory.cert_id(issuer_id, issued.record.serial_hex, algorithm)
            assert source.stored_response(issuer_id, issued.record.serial_hex, "sha256") is not None
            copied = responder._current_cert_status(issuer_id, cert_id, now, source)
            read = responder._current_cert_status(issuer_id, cert_id, now, TablesOnly())  # type: ignore[arg-type]
            assert copied == read
            assert copied[0] == (0x80 if issued is good else 0xA1)
