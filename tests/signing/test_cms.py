"""CAdES-B-B detached CMS signatures with keys on the shared SoftHSM2 token, checked by
``openssl cms -verify`` and by decoding the DER (signed attributes, sorted SET OF)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from govsign.clock import FixedClock, SystemClock
from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.authority import CertificateAuthority, HierarchyResult, IssuanceRequest, IssuedCertificate
from govsign.runtime import Runtime
from govsign.signing import CMSSignatureSpec, SigningCredential, raw_signature, sign_detached, sign_digest, sign_digests

ACTOR = "test:signing"
KEYS = [pytest.param(KeyAlgorithm.EC_P256, id="ec-p256"), pytest.param(KeyAlgorithm.RSA2048, id="rsa2048")]
DOCUMENT = secrets.token_bytes(1024 * 1024)


def _issue(ca: CertificateAuthority, *, request: IssuanceRequest) -> IssuedCertificate:
    return ca.issue(request)


@pytest.fixture(scope="module")
def credentials(initialized_runtime: Runtime, hierarchy: HierarchyResult) -> dict[KeyAlgorithm, SigningCredential]:
    """An individual certificate with a key generated on the token, per key algorithm."""
    found: dict[KeyAlgorithm, SigningCredential] = {}
    for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048):
        subject = f"CN=CMS signer {algorithm.value} {secrets.token_hex(4)},C=VN"
        request = IssuanceRequest(
            profile="individual", subject=subject, email="signer@example.gov.vn", generate_key=algorithm, actor=ACTOR
        )
        issued = initialized_runtime.execute(
            functools.partial(_issue, request=request), action="certificate.issue", actor=ACTOR, object_id=subject
        )
        assert issued.record.key is not None
        found[algorithm] = SigningCredential(
            key=issued.record.key,
            certificate_der=issued.record.certificate_der,
            chain_der=(hierarchy.issuing.certificate_der, hierarchy.root.certificate_der),
        )
    return found


@pytest.fixture(scope="module")
def store(initialized_runtime: Runtime) -> KeyStore:
    return initialized_runtime.keystore


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
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
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
