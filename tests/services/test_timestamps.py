"""The RFC 3161 TSA through the Runtime (shared hierarchy, SoftHSM2 key): replies checked with
`openssl ts`, the strict rfc3161-client decoder and asn1crypto."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import rfc3161_client
from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from govsign.clock import FixedClock
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.tsa import TimeStampAuthority, TSAPolicy
from helpers.tsa import DOCUMENT, openssl, query, reply, signed_data, status, tst_info, write_chain

DEFAULT_POLICY = "1.3.6.1.4.1.32473.1.2"
OTHER_POLICY = "1.3.6.1.4.1.32473.1.99"


def test_openssl_query_gets_a_reply_that_openssl_verifies(
    initialized_services: Services, hierarchy: HierarchyResult, tmp_path: Path
) -> None:
    data = tmp_path / "document.txt"
    data.write_bytes(DOCUMENT)
    made = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", tmp_path / "q.tsq")
    assert made.returncode == 0, made.stderr
    answer = initialized_services.timestamps.answer((tmp_path / "q.tsq").read_bytes())
    (tmp_path / "r.tsr").write_bytes(answer)
    chain, tsa = write_chain(tmp_path, hierarchy)

    verified = openssl(
        "ts", "-verify", "-queryfile", tmp_path / "q.tsq", "-in", tmp_path / "r.tsr",
        "-CAfile", chain, "-untrusted", tsa,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verification: OK" in verified.stdout

    verified_data = openssl(
        "ts", "-verify", "-data", data, "-in", tmp_path / "r.tsr", "-CAfile", chain, "-untrusted", tsa
    )
    assert verified_data.returncode == 0, verified_data.stdout + verified_data.stderr

    text = openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-text")
    assert text.returncode == 0, text.stderr
    assert "Status: Granted." in text.stdout
    assert f"Policy OID: {DEFAULT_POLICY}" in text.stdout
    assert "Accuracy: 0x01 seconds" in text.stdout
    assert "Ordering: no" in text.stdout
    assert "Nonce: 0x" in text.stdout
    assert "TSA: DirName:" in text.stdout and "Time-Stamping Unit" in text.stdout

    # Another document's digest must not verify (openssl's exit code means something here).
    other = tmp_path / "other.txt"
    other.write_bytes(DOCUMENT + b"x")
    mismatch = openssl("ts", "-verify", "-data", other, "-in", tmp_path / "r.tsr", "-CAfile", chain, "-untrusted", tsa)
    assert mismatch.returncode != 0


def test_strict_decoder_accepts_and_verifies_the_reply(
    initialized_services: Services, hierarchy: HierarchyResult
) -> None:
    request = (
        rfc3161_client.TimestampRequestBuilder()
        .data(DOCUMENT)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    answer = initialized_services.timestamps.answer(request.as_bytes())
    decoded = rfc3161_client.decode_timestamp_response(answer)
    assert decoded.status == rfc3161_client.PKIStatus.GRANTED
    assert decoded.tst_info.nonce == request.nonce
    assert decoded.tst_info.message_imprint.message == hashlib.sha512(DOCUMENT).digest()
    verifier = (
        rfc3161_client.VerifierBuilder()
        .add_root_certificate(x509.load_der_x509_certificate(hierarchy.root.certificate_der))
        .add_intermediate_certificate(x509.load_der_x509_certificate(hierarchy.issuing.certificate_der))
        .tsa_certificate(x509.load_der_x509_certificate(hierarchy.tsa.certificate_der))
        .nonce(request.nonce)
        .policy_id(x509.ObjectIdentifier(DEFAULT_POLICY))
        .build()
    )
    assert verifier.verify_message(decoded, DOCUMENT)


def test_granted_token_fields(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    before = initialized_services.clock.now()
    answer = initialized_services.timestamps.answer(query(nonce=0x1234567890ABCDEF1234, cert_req=False))
    assert status(answer) == ("granted", set())
    info = tst_info(answer).native
    assert info["version"] == "v1"
    assert info["policy"] == DEFAULT_POLICY
    assert info["message_imprint"]["hashed_message"] == hashlib.sha256(DOCUMENT).digest()
    assert info["message_imprint"]["hash_algorithm"]["algorithm"] == "sha256"
    assert info["nonce"] == 0x1234567890ABCDEF1234
    assert info["accuracy"] == {"seconds": 1, "millis": None, "micros": None}
    assert info["ordering"] is False
    assert info["gen_time"] == before.replace(microsecond=0)
    assert info["gen_time"].tzinfo is not None and info["gen_time"] <= dt.datetime.now(dt.UTC)
    assert 0 < info["serial_number"] < 2**160
    tsa_name = tst_info(answer)["tsa"]
    assert tsa_name.name == "directory_name"
    assert tsa_name.chosen.native == asn1_x509.Certificate.load(hierarchy.tsa.certificate_der).subject.native
    # signed attributes: contentType, messageDigest, signingCertificateV2 (no signingTime)
    signer_info = signed_data(answer)["signer_infos"][0]
    types = {attribute["type"].native for attribute in signer_info["signed_attrs"]}
    assert types == {"content_type", "message_digest", "signing_certificate_v2"}
    for attribute in signer_info["signed_attrs"]:
        if attribute["type"].native == "signing_certificate_v2":
            ess = attribute["values"][0]["certs"][0]
            assert ess["cert_hash"].native == hashlib.sha256(hierarchy.tsa.certificate_der).digest()
            assert ess["issuer_serial"]["serial_number"].native == int(hierarchy.tsa.serial_hex, 16)
    assert signed_data(answer)["digest_algorithms"][0]["algorithm"].native == "sha256"


def test_nonce_absent_is_not_invented(initialized_services: Services) -> None:
    answer = initialized_services.timestamps.answer(query())
    assert tst_info(answer)["nonce"].native is None


def test_certificates_only_when_asked(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    without = signed_data(initialized_services.timestamps.answer(query(cert_req=False)))
    assert without["certificates"].native is None
    with_certs = signed_data(initialized_services.timestamps.answer(query(cert_req=True)))
    # the TSA's certificate and its issuing CA (not the root), so that a relying party trusting
    # only the root builds the path
    assert sorted(c.chosen.dump() for c in with_certs["certificates"]) == sorted(
        [hierarchy.tsa.certificate_der, hierarchy.issuing.certificate_der]
    )


def test_requested_policy(initialized_services: Services) -> None:
    answer = initialized_services.timestamps.answer(query(policy=DEFAULT_POLICY))
    assert tst_info(answer)["policy"].dotted == DEFAULT_POLICY
    assert status(initialized_services.timestamps.answer(query(policy=OTHER_POLICY))) == (
        "rejection",
        {"unaccepted_policy"},
    )
    tsa = initialized_services.timestamps.authority()
    assert tsa is not None
    wider = TimeStampAuthority(
        keystore=initialized_services.keystore,
        clock=initialized_services.clock,
        signer=tsa.signer,
        policy=TSAPolicy(policy_oid=DEFAULT_POLICY, accepted_policies=(DEFAULT_POLICY, OTHER_POLICY)),
    )
    assert tst_info(wider.respond(query(policy=OTHER_POLICY)))["policy"].dotted == OTHER_POLICY
    assert tst_info(wider.respond(query()))["policy"].dotted == DEFAULT_POLICY


def test_serials_are_unique(initialized_services: Services) -> None:
    serials = {
        tst_info(initialized_services.timestamps.answer(query(nonce=n)))["serial_number"].native for n in range(20)
    }
    assert len(serials) == 20
    assert all(s.bit_length() == 128 for s in serials)


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        pytest.param(query(algorithm="md5"), "bad_alg", id="md5"),
        pytest.param(query(algorithm="sha1"), "bad_alg", id="sha1"),
        pytest.param(query(algorithm="1.2.3.4.5", digest=b"\x01" * 32), "bad_alg", id="unknown-oid"),
        pytest.param(query(digest=b"\x01" * 20), "bad_alg", id="sha256-with-20-octets"),
        pytest.param(query(algorithm="sha512", digest=b"\x01" * 32), "bad_alg", id="sha512-with-32-octets"),
        pytest.param(query(policy=OTHER_POLICY), "unaccepted_policy", id="policy"),
        pytest.param(query(version="v2"), "bad_request", id="version-2"),
        pytest.param(b"", "bad_data_format", id="empty"),
        pytest.param(b"garbage, not DER", "bad_data_format", id="garbage"),
        pytest.param(query()[:-5], "bad_data_format", id="truncated"),
        pytest.param(query() + b"\x00\x00", "bad_data_format", id="trailing-bytes"),
        pytest.param(b"\x30\x03\x02\x01\x01", "bad_data_format", id="sequence-missing-imprint"),
    ],
)
def test_rejections(initialized_services: Services, request_der: bytes, failure: str) -> None:
    answer = initialized_services.timestamps.answer(request_der)
    parsed = reply(answer)
    assert status(answer) == ("rejection", {failure})
    assert parsed["time_stamp_token"].native is None
    text = parsed["status"]["status_string"].native
    assert len(text) == 1 and text[0].endswith(".")
    decoded = rfc3161_client.decode_timestamp_response(answer)
    assert decoded.status == rfc3161_client.PKIStatus.REJECTION


def _raw_children(set_value: core.Asn1Value) -> list[bytes]:
    """The encodings of a SET OF's elements, in the order they are in the received bytes."""
    children = [bytes(child.dump()) for child in set_value]
    assert b"".join(children) == set_value.contents  # nothing re-encoded: these are the raw bytes
    return children


def test_every_set_of_is_sorted(initialized_services: Services) -> None:
    for cert_req in (False, True):
        data = signed_data(initialized_services.timestamps.answer(query(cert_req=cert_req, nonce=7)))
        sets = [data["digest_algorithms"], data["signer_infos"], data["signer_infos"][0]["signed_attrs"]]
        if cert_req:
            sets.append(data["certificates"])
        for attribute in data["signer_infos"][0]["signed_attrs"]:
            sets.append(attribute["values"])
        for set_value in sets:
            children = _raw_children(set_value)
            assert children, set_value
            assert children == sorted(children), type(set_value).__name__
        signed_attrs = _raw_children(data["signer_infos"][0]["signed_attrs"])
        assert len(signed_attrs) == 3


def test_expired_tsa_certificate_is_not_used(initialized_services: Services, hierarchy: HierarchyResult) -> None:
    clock = initialized_services.clock
    assert isinstance(clock, FixedClock)
    assert status(initialized_services.timestamps.answer(query())) == ("granted", set())  # cached now
    moved = hierarchy.tsa.not_after - clock.now() + dt.timedelta(seconds=1)
    clock.advance(moved)
    try:
        assert status(initialized_services.timestamps.answer(query())) == ("rejection", {"system_failure"})
    finally:
        clock.advance(-moved)
    assert status(initialized_services.timestamps.answer(query())) == ("granted", set())
