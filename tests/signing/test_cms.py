"""CAdES-B-B, B-T and B-LT detached CMS signatures with keys on the shared SoftHSM2 token, checked
by ``openssl cms -verify``, ``openssl ts -verify`` (the signature time-stamp), pyHanko's
certvalidator (B-LT with only the embedded revocation data) and by decoding the DER (signed and
unsigned attributes, sorted SET OF)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from pyasn1_alt_modules import rfc5652
from pyasn1_fasder import decode_der  # type: ignore[import-untyped]

from govsign.clock import FixedClock, SystemClock
from govsign.errors import ErrorKind, InvalidInputError, UnavailableError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import (
    CMSSignatureSpec,
    RevocationEvidence,
    SigningCredential,
    raw_signature,
    sign_detached,
    sign_digest,
    sign_digests,
)
from govsign.tsa.authority import rejection
from helpers.pdf import require_tool

KEYS = [pytest.param(KeyAlgorithm.EC_P256, id="ec-p256"), pytest.param(KeyAlgorithm.RSA2048, id="rsa2048")]
DOCUMENT = secrets.token_bytes(1024 * 1024)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(SystemClock().now())


@pytest.fixture
def chain_pem(tmp_path: Path, hierarchy: HierarchyResult) -> Path:
    path = tmp_path / "chain.pem"
    path.write_bytes(
        b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in (hierarchy.issuing.certificate_der, hierarchy.root.certificate_der)
        )
    )
    return path


def _openssl_verify(
    signature: bytes, document: bytes, chain_pem: Path, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    openssl = require_tool("openssl")
    (tmp_path / "sig.p7s").write_bytes(signature)
    (tmp_path / "doc.bin").write_bytes(document)
    return subprocess.run(
        [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
         "-content", str(tmp_path / "doc.bin"), "-CAfile", str(chain_pem), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _assert_verified(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification successful" in result.stderr + result.stdout


@pytest.mark.parametrize("algorithm", KEYS)
def test_detached_signature_verifies_and_a_changed_document_does_not(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    chain_pem: Path,
    tmp_path: Path,
) -> None:
    signature = sign_detached(_chunks(DOCUMENT), credentials[algorithm], store, clock, CMSSignatureSpec())
    _assert_verified(_openssl_verify(signature, DOCUMENT, chain_pem, tmp_path))
    changed = bytearray(DOCUMENT)
    changed[len(changed) // 2] ^= 0x01
    result = _openssl_verify(signature, bytes(changed), chain_pem, tmp_path)
    assert result.returncode != 0
    assert "Verification successful" not in result.stdout + result.stderr


@pytest.mark.parametrize("algorithm", KEYS)
def test_signature_around_a_client_digest_verifies(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    chain_pem: Path,
    tmp_path: Path,
) -> None:
    digest = hashlib.sha256(DOCUMENT).digest()
    signature = sign_digest(digest, "sha256", credentials[algorithm], store, clock, CMSSignatureSpec())
    _assert_verified(_openssl_verify(signature, DOCUMENT, chain_pem, tmp_path))
    other = b"a second document"
    batch = sign_digests([digest, hashlib.sha256(other).digest()], "sha256", credentials[algorithm], store, clock)
    assert len(batch) == 2
    _assert_verified(_openssl_verify(batch[0], DOCUMENT, chain_pem, tmp_path))
    _assert_verified(_openssl_verify(batch[1], other, chain_pem, tmp_path))
    assert _openssl_verify(batch[1], DOCUMENT, chain_pem, tmp_path).returncode != 0


def _set_of_sorted(set_of: object) -> bool:
    encodings = [child.dump() for child in set_of]  # type: ignore[attr-defined]
    return encodings == sorted(encodings)


@pytest.mark.parametrize("algorithm", KEYS)
def test_signed_attributes_and_der_order(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
) -> None:
    credential = credentials[algorithm]
    signature = sign_detached(b"hello", credential, store, clock)
    content_info = cms.ContentInfo.load(signature, strict=True)
    assert content_info.dump(force=True) == signature  # DER all the way down
    signed_data = content_info["content"]
    assert signed_data["version"].native == "v1"
    assert signed_data["encap_content_info"]["content_type"].native == "data"
    assert signed_data["encap_content_info"]["content"].native is None  # detached
    assert [a["algorithm"].native for a in signed_data["digest_algorithms"]] == ["sha256"]
    certificates = [choice.chosen.dump() for choice in signed_data["certificates"]]
    assert sorted(certificates) == sorted(
        [credential.certificate_der, *credential.chain_der]
    ) and certificates == sorted(certificates)
    (signer_info,) = signed_data["signer_infos"]
    certificate = x509.load_der_x509_certificate(credential.certificate_der)
    assert signer_info["sid"].name == "issuer_and_serial_number"
    assert signer_info["sid"].chosen["serial_number"].native == certificate.serial_number
    expected_algorithm = "sha256_rsa" if algorithm.is_rsa else "sha256_ecdsa"
    assert signer_info["signature_algorithm"]["algorithm"].native == expected_algorithm
    attributes = signer_info["signed_attrs"]
    assert _set_of_sorted(attributes)
    assert all(_set_of_sorted(attribute["values"]) for attribute in attributes)
    values = {attribute["type"].native: attribute["values"][0] for attribute in attributes}
    assert set(values) == {"content_type", "message_digest", "signing_time", "signing_certificate_v2"}
    assert values["content_type"].native == "data"
    assert values["message_digest"].native == hashlib.sha256(b"hello").digest()
    assert values["signing_time"].name == "utc_time"
    assert values["signing_time"].native == clock.now()
    essv2 = values["signing_certificate_v2"]
    assert isinstance(essv2, tsp.SigningCertificateV2)
    (cert_id,) = essv2["certs"]
    assert cert_id["cert_hash"].native == hashlib.sha256(credential.certificate_der).digest()
    assert cert_id["issuer_serial"]["serial_number"].native == certificate.serial_number


def test_spec_options_and_generalized_time(credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    late = FixedClock(dt.datetime(2051, 3, 4, 5, 6, 7, tzinfo=dt.UTC))
    signature = sign_detached(
        b"x", credential, store, late, CMSSignatureSpec(include_chain=False, digest_algorithm="sha384")
    )
    signed_data = cms.ContentInfo.load(signature)["content"]
    assert [choice.chosen.dump() for choice in signed_data["certificates"]] == [credential.certificate_der]
    (signer_info,) = signed_data["signer_infos"]
    assert signer_info["digest_algorithm"]["algorithm"].native == "sha384"
    assert signer_info["signature_algorithm"]["algorithm"].native == "sha384_ecdsa"
    times = [a["values"][0] for a in signer_info["signed_attrs"] if a["type"].native == "signing_time"]
    assert times[0].name == "generalized_time" and times[0].native == late.now()
    plain = sign_detached(b"x", credential, store, late, CMSSignatureSpec(signing_time=False))
    (signer_info,) = cms.ContentInfo.load(plain)["content"]["signer_infos"]
    assert "signing_time" not in {a["type"].native for a in signer_info["signed_attrs"]}


def test_wrong_digests_and_algorithms_are_refused(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, clock: FixedClock
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    with pytest.raises(InvalidInputError, match="32 bytes"):
        sign_digest(b"\x00" * 31, "sha256", credential, store, clock)
    with pytest.raises(InvalidInputError, match="not supported"):
        sign_digest(b"\x00" * 16, "md5", credential, store, clock)
    with pytest.raises(InvalidInputError, match="not supported"):
        sign_detached(b"x", credential, store, clock, CMSSignatureSpec(digest_algorithm="sha3_256"))
    with pytest.raises(InvalidInputError, match="48 bytes"):
        sign_digests([b"\x00" * 48, b"\x00" * 32], "sha384", credential, store, clock)
    with pytest.raises(InvalidInputError, match="64 bytes"):
        raw_signature(b"\x00" * 32, "sha512", credential, store)


@pytest.mark.parametrize("algorithm", KEYS)
def test_raw_signature_verifies_with_the_certificate_key(
    algorithm: KeyAlgorithm, credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    credential = credentials[algorithm]
    public_key = x509.load_der_x509_certificate(credential.certificate_der).public_key()
    for name, hash_type in (("sha256", hashes.SHA256()), ("sha384", hashes.SHA384())):
        digest = hashlib.new(name, DOCUMENT).digest()
        signature = raw_signature(digest, name, credential, store)
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hash_type))
        else:
            assert isinstance(public_key, ec.EllipticCurvePublicKey)
            public_key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hash_type)))


# -- B-T and B-LT ---------------------------------------------------------------------------------


def _pem(*ders: bytes) -> bytes:
    return b"".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in ders)


def _assert_strict_der(signature: bytes) -> None:
    """Strict DER down to the time-stamp tokens: pyasn1-fasder refuses BER and unsorted SET OF.
    (asn1crypto's ``dump(force=True)`` round trip takes minutes on these once pyHanko is imported.)"""
    content_info, rest = decode_der(signature, asn1Spec=rfc5652.ContentInfo())
    assert rest == b""
    signed_data, rest = decode_der(content_info["content"].asOctets(), asn1Spec=rfc5652.SignedData())
    assert rest == b""
    for signer_info in signed_data["signerInfos"]:
        if signer_info["unsignedAttrs"].isValue:
            for attribute in signer_info["unsignedAttrs"]:
                for value in attribute["attrValues"]:
                    _assert_strict_der(value.asOctets())


def _signer_info(signature: bytes) -> cms.SignerInfo:
    (signer_info,) = cms.ContentInfo.load(signature)["content"]["signer_infos"]
    return signer_info


def _time_stamp_token(signer_info: cms.SignerInfo) -> cms.ContentInfo:
    unsigned = signer_info["unsigned_attrs"]
    assert [attribute["type"].dotted for attribute in unsigned] == ["1.2.840.113549.1.9.16.2.14"]
    (token,) = unsigned[0]["values"]
    assert isinstance(token, cms.ContentInfo)
    return token


def _openssl_ts_verify(signer_info: cms.SignerInfo, hierarchy: HierarchyResult, tmp_path: Path) -> None:
    """The signature time-stamp verifies over the signature value, against our root."""
    openssl = require_tool("openssl")
    token = _time_stamp_token(signer_info)
    (tmp_path / "signature-value.bin").write_bytes(signer_info["signature"].native)
    (tmp_path / "token.der").write_bytes(token.dump())
    (tmp_path / "root.pem").write_bytes(_pem(hierarchy.root.certificate_der))
    (tmp_path / "untrusted.pem").write_bytes(_pem(hierarchy.issuing.certificate_der, hierarchy.tsa.certificate_der))
    result = subprocess.run(
        [openssl, "ts", "-verify", "-data", str(tmp_path / "signature-value.bin"), "-in", str(tmp_path / "token.der"),
         "-token_in", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem")],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and "Verification: OK" in result.stdout, result.stdout + result.stderr
    tst_info = token["content"]["encap_content_info"]["content"].parsed
    assert tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert (
        tst_info["message_imprint"]["hashed_message"].native == hashlib.sha256(signer_info["signature"].native).digest()
    )


def _ocsp_request(certificate_der: bytes, issuer_der: bytes) -> bytes:
    certificate = asn1_x509.Certificate.load(certificate_der)
    issuer = asn1_x509.Certificate.load(issuer_der)
    cert_id = {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": issuer.subject.sha1,
        "issuer_key_hash": issuer.public_key.sha1,
        "serial_number": certificate.serial_number,
    }
    request = asn1_ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    return bytes(request.dump())


@pytest.fixture(scope="module")
def evidence(
    initialized_services: Services, hierarchy: HierarchyResult, credentials: dict[KeyAlgorithm, SigningCredential]
) -> RevocationEvidence:
    """OCSP responses for the signers from our responder, the root's ARL and the issuing CA's CRL
    (with their delta CRLs: the CRLs name them in Freshest CRL), the OCSP responder's certificate, and the issuing CA's again (embedded once all the same)."""
    responses = []
    for credential in credentials.values():
        answer = initialized_services.ocsp.answer(
            _ocsp_request(credential.certificate_der, hierarchy.issuing.certificate_der)
        )
        assert answer.status == "successful"
        responses.append(answer.der)
    initialized_services.crls.publish(force=True)
    crls = [
        initialized_services.crls.latest(ca_id, delta=delta)
        for ca_id in (hierarchy.root.id, hierarchy.issuing.id)
        for delta in (False, True)
    ]
    return RevocationEvidence(
        ocsp_responses=tuple(responses),
        crls=tuple(crl.der for crl in crls if crl is not None),
        certificates=(hierarchy.ocsp_responder.certificate_der, hierarchy.issuing.certificate_der),
    )


B_T = CMSSignatureSpec(level="B-T")
B_LT = CMSSignatureSpec(level="B-LT")


@pytest.mark.parametrize("algorithm", KEYS)
def test_b_t_signature_time_stamp_verifies(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    chain_pem: Path,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    timestamper = initialized_services.timestamps.answer
    signature = sign_detached(_chunks(DOCUMENT), credentials[algorithm], store, clock, B_T, timestamper=timestamper)
    _assert_strict_der(signature)
    content_info = cms.ContentInfo.load(signature, strict=True)
    signed_data = content_info["content"]
    assert signed_data["version"].native == "v1"
    assert not signed_data["crls"].native  # B-T: no validation data
    _assert_verified(_openssl_verify(signature, DOCUMENT, chain_pem, tmp_path))
    signer_info = _signer_info(signature)
    assert _set_of_sorted(signer_info["unsigned_attrs"])
    _openssl_ts_verify(signer_info, hierarchy, tmp_path)
    # The B-B part is unchanged: the same signed attributes as without a time-stamp.
    assert {a["type"].native for a in signer_info["signed_attrs"]} == {
        "content_type", "message_digest", "signing_time", "signing_certificate_v2"
    }  # fmt: skip
    b_b = _signer_info(sign_detached(b"x", credentials[algorithm], store, clock))
    assert not b_b["unsigned_attrs"].native


def test_b_t_around_client_digests(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    chain_pem: Path,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    credential = credentials[KeyAlgorithm.RSA2048]
    timestamper = initialized_services.timestamps.answer
    digest = hashlib.sha256(DOCUMENT).digest()
    single = sign_digest(digest, "sha256", credential, store, clock, B_T, timestamper=timestamper)
    _assert_verified(_openssl_verify(single, DOCUMENT, chain_pem, tmp_path))
    _openssl_ts_verify(_signer_info(single), hierarchy, tmp_path)
    other = b"a second document"
    batch = sign_digests(
        [digest, hashlib.sha256(other).digest()], "sha256", credential, store, clock, B_T, timestamper=timestamper
    )
    for signature, document in zip(batch, (DOCUMENT, other), strict=True):
        _assert_verified(_openssl_verify(signature, document, chain_pem, tmp_path))
        _openssl_ts_verify(_signer_info(signature), hierarchy, tmp_path)
    tokens = [_time_stamp_token(_signer_info(signature)).dump() for signature in batch]
    assert tokens[0] != tokens[1]  # one time-stamp per signature


def _revocation_data(signed_data: cms.SignedData) -> tuple[list[bytes], list[bytes]]:
    """The CRLs and OCSP responses of SignedData.crls, as DER."""
    crls: list[bytes] = []
    responses: list[bytes] = []
    for choice in signed_data["crls"]:
        if choice.name == "crl":
            crls.append(choice.chosen.dump())
        else:
            assert choice.name == "other"
            assert choice.chosen["other_rev_info_format"].dotted == "1.3.6.1.5.5.7.16.2"
            responses.append(choice.chosen["other_rev_info"].dump())
    return crls, responses


@pytest.mark.parametrize("algorithm", KEYS)
def test_b_lt_embeds_the_validation_data_and_verifies(
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    chain_pem: Path,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    evidence: RevocationEvidence,
    tmp_path: Path,
) -> None:
    credential = credentials[algorithm]
    signature = sign_detached(
        DOCUMENT, credential, store, clock, B_LT, timestamper=initialized_services.timestamps.answer, evidence=evidence
    )
    _assert_strict_der(signature)
    signed_data = cms.ContentInfo.load(signature, strict=True)["content"]
    assert signed_data["version"].native == "v5"  # an `other` RevocationInfoChoice (RFC 5652 section 5.1)
    certificates = [choice.chosen.dump() for choice in signed_data["certificates"]]
    assert certificates == sorted(certificates)
    assert sorted(certificates) == sorted(
        {credential.certificate_der, *credential.chain_der, hierarchy.ocsp_responder.certificate_der}
    )
    assert _set_of_sorted(signed_data["crls"])
    crls, responses = _revocation_data(signed_data)
    assert sorted(crls) == sorted(evidence.crls)
    assert sorted(responses) == sorted(evidence.ocsp_responses)
    _assert_verified(_openssl_verify(signature, DOCUMENT, chain_pem, tmp_path))
    _openssl_ts_verify(_signer_info(signature), hierarchy, tmp_path)
    # openssl cms uses the embedded CRLs: a full CRL check succeeds with nothing else given.
    openssl = shutil.which("openssl")
    assert openssl is not None
    result = subprocess.run(
        [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
         "-content", str(tmp_path / "doc.bin"), "-CAfile", str(tmp_path / "root.pem"), "-purpose", "any",
         "-crl_check_all", "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    _assert_verified(result)


def test_b_lt_validates_with_only_the_embedded_revocation_data(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    evidence: RevocationEvidence,
) -> None:
    """pyHanko does not read SignedData.crls itself: the test hands it exactly what the signature
    embeds (no fetching, revocation mode 'require'), for the signer and for the TSA."""
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    credential = credentials[KeyAlgorithm.EC_P256]
    signature = sign_detached(
        DOCUMENT, credential, store, clock, B_LT, timestamper=initialized_services.timestamps.answer, evidence=evidence
    )
    signed_data = cms.ContentInfo.load(signature)["content"]
    crls, responses = _revocation_data(signed_data)
    root_name = asn1_x509.Certificate.load(hierarchy.root.certificate_der).subject.dump()
    token_data = _time_stamp_token(_signer_info(signature))["content"]
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
        other_certs=[choice.chosen for choice in (*signed_data["certificates"], *token_data["certificates"])],
        crls=crls,
        ocsps=responses,
        allow_fetching=False,
        revocation_mode="require",
        moment=clock.now(),
    )
    status = asyncio.run(async_validate_detached_cms(DOCUMENT, signed_data, signer_validation_context=context))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.intact and status.timestamp_validity.trusted
    # Without the OCSP responses and the issuing CA's CRLs the signer's status is unknown.
    root_crls = [der for der in crls if asn1_crl.CertificateList.load(der).issuer.dump() == root_name]
    assert len(root_crls) == 2
    bare = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(hierarchy.root.certificate_der)],
        other_certs=[choice.chosen for choice in signed_data["certificates"]],
        crls=root_crls,
        allow_fetching=False,
        revocation_mode="require",
        moment=clock.now(),
    )
    status = asyncio.run(async_validate_detached_cms(DOCUMENT, signed_data, signer_validation_context=bare))
    assert status.intact and not status.trusted


def _stale_timestamper(services: Services) -> Callable[[bytes], bytes]:
    """A TSA that answers another request than the one it was sent."""
    other = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x00" * 32},
            "nonce": 7,
            "cert_req": True,
        }
    ).dump()
    return lambda _request: services.timestamps.answer(other)


def test_levels_refuse_missing_inputs_and_bad_time_stamps(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    clock: FixedClock,
    initialized_services: Services,
    evidence: RevocationEvidence,
) -> None:
    credential = credentials[KeyAlgorithm.EC_P256]
    timestamper = initialized_services.timestamps.answer
    digest = hashlib.sha256(b"x").digest()
    with pytest.raises(InvalidInputError, match="B-T signature needs a time-stamping service"):
        sign_detached(b"x", credential, store, clock, B_T)
    with pytest.raises(InvalidInputError, match="B-T signature needs a time-stamping service"):
        sign_digests([digest], "sha256", credential, store, clock, B_T)
    with pytest.raises(InvalidInputError, match="B-LT signature needs a time-stamping service"):
        sign_digest(digest, "sha256", credential, store, clock, B_LT, evidence=evidence)
    with pytest.raises(InvalidInputError, match="needs revocation evidence"):
        sign_detached(b"x", credential, store, clock, B_LT, timestamper=timestamper)
    with pytest.raises(InvalidInputError, match="needs revocation evidence"):
        sign_digest(
            digest, "sha256", credential, store, clock, B_LT, timestamper=timestamper, evidence=RevocationEvidence()
        )
    with pytest.raises(InvalidInputError, match="level 'B-LTA' is not supported"):
        sign_detached(b"x", credential, store, clock, CMSSignatureSpec(level="B-LTA"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="OCSP response of the revocation evidence"):
        sign_detached(
            b"x",
            credential,
            store,
            clock,
            B_LT,
            timestamper=timestamper,
            evidence=RevocationEvidence(ocsp_responses=(b"junk",)),
        )
    with pytest.raises(InvalidInputError, match="CRL of the revocation evidence"):
        sign_detached(
            b"x", credential, store, clock, B_LT, timestamper=timestamper, evidence=RevocationEvidence(crls=(b"junk",))
        )
    with pytest.raises(InvalidInputError, match="certificate of the revocation evidence"):
        sign_detached(
            b"x",
            credential,
            store,
            clock,
            B_LT,
            timestamper=timestamper,
            evidence=RevocationEvidence(crls=evidence.crls, certificates=(b"junk",)),
        )
    refused = rejection("system_failure", "The time-stamping authority is unavailable; try again later.").der
    bad_answers: list[Callable[[bytes], bytes]] = [
        lambda _request: refused,
        lambda _request: b"not DER",
        _stale_timestamper(initialized_services),
    ]
    for answer in bad_answers:
        with pytest.raises(UnavailableError) as raised:
            sign_detached(b"x", credential, store, clock, B_T, timestamper=answer)
        assert raised.value.kind is ErrorKind.UNAVAILABLE
        assert raised.value.message.endswith("try again later.")
