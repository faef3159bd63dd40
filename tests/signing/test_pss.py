"""RSASSA-PSS (Circular 15/2025 Appendix I) in the signing cores: PAdES verified by pyHanko,
``openssl cms -verify`` and our own verifier, CAdES detached verified by ``openssl cms -verify``
and our own verifier, bare signatures over a digest verified by ``cryptography``; the
signatureAlgorithm carries RSASSA-PSS-params (the hash, MGF1 with it, a salt as long as it,
trailerField 1); EC keys refuse the RSA schemes. (pdfsig: see test_pdf_pdfsig.py.)"""

from __future__ import annotations

import hashlib
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from pyhanko.pdf_utils.reader import PdfFileReader

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore, SignatureScheme
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import CMSSignatureSpec, SigningCredential, raw_signature, sign_detached, sign_digest
from govsign.signing.pdf import HSMSigner, LocalTimeStamper, PDFSignatureSpec, sign_pdf
from govsign.validation.cms import content_digest, parse_signed_data, validate_cms
from govsign.validation.pdf import validate_pdf
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Indication
from helpers.pdf import assert_valid, blank_pdf, openssl_verify_pdf, qpdf_check, require_tool

PSS = SignatureScheme.RSA_PSS
DOCUMENT = "Quyết định số 15/QĐ-UBND, ký bằng RSASSA-PSS.".encode() * 100


def _assert_pss_params(signature_algorithm: algos.SignedDigestAlgorithm, hash_name: str, salt: int) -> None:
    assert signature_algorithm["algorithm"].native == "rsassa_pss"
    params = signature_algorithm["parameters"]
    assert params["hash_algorithm"]["algorithm"].native == hash_name
    assert params["mask_gen_algorithm"]["algorithm"].native == "mgf1"
    assert params["mask_gen_algorithm"]["parameters"]["algorithm"].native == hash_name
    assert params["salt_length"].native == salt
    assert params["trailer_field"].native == "trailer_field_bc"
    # saltLength ([2]) ends the DER: trailerField 1 is the DEFAULT, so it is not encoded
    assert params.dump().endswith(bytes((0xA2, 3, 2, 1, salt)))


def _policy(hierarchy: HierarchyResult) -> ValidationPolicy:
    return ValidationPolicy(trust_anchors=(hierarchy.root.certificate_der,), fetch_revocation=False)


@pytest.mark.parametrize("level", ["B-B", "B-T"])
def test_pades_pss_verifies_with_pyhanko_openssl_and_our_verifier(
    level: str,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    credential = credentials[KeyAlgorithm.RSA2048]
    timestamper = LocalTimeStamper(initialized_services.timestamps.answer) if level == "B-T" else None
    spec = PDFSignatureSpec(level=level, signature_scheme=PSS)  # type: ignore[arg-type]
    signed = sign_pdf(blank_pdf(), credential, store, spec, timestamper=timestamper)
    assert signed is not None
    qpdf_check(signed, tmp_path)
    assert_valid(signed, hierarchy, 1)
    openssl_verify_pdf(signed, hierarchy, tmp_path)
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    _assert_pss_params(embedded.signer_info["signature_algorithm"], "sha256", 32)
    result = validate_pdf(
        BytesIO(signed),
        _policy(hierarchy),
        now=initialized_services.clock.now(),
        status=initialized_services.verifications.status,
    )
    (report,) = result.signatures
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages


def test_the_placeholder_of_a_pss_signature_is_its_exact_size(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    """B-B reserves the exact /Contents size; a PSS value is as long as the modulus, and pyHanko's
    own path (used for requests the fast path does not cover) names the same algorithm."""
    credential = credentials[KeyAlgorithm.RSA2048]
    signer = HSMSigner(credential, store, scheme=PSS)
    signed = sign_pdf(blank_pdf(), credential, store, PDFSignatureSpec(signature_scheme=PSS))
    assert signed is not None
    (embedded,) = PdfFileReader(BytesIO(signed)).embedded_signatures
    contents = bytes(embedded.pkcs7_content)
    assert 2 * len(contents) == signer.reserved_size("sha256")
    assert len(cms.ContentInfo.load(contents).dump()) == len(contents)  # no padding left over
    assert len(embedded.signer_info["signature"].native) == 256
    mechanism = signer.get_signature_mechanism_for_digest("sha384")
    _assert_pss_params(mechanism, "sha384", 48)
    assert HSMSigner(credential, store).get_signature_mechanism_for_digest("sha256")["algorithm"].native == "sha256_rsa"


def _openssl_cms_verify(signature: bytes, hierarchy: HierarchyResult, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    (tmp_path / "sig.p7s").write_bytes(signature)
    (tmp_path / "doc.bin").write_bytes(DOCUMENT)
    (tmp_path / "chain.pem").write_bytes(
        b"".join(
            x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
            for der in (hierarchy.issuing.certificate_der, hierarchy.root.certificate_der)
        )
    )
    result = subprocess.run(
        [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.p7s"),
         "-content", str(tmp_path / "doc.bin"), "-CAfile", str(tmp_path / "chain.pem"), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stdout + result.stderr


def test_cades_pss_verifies_with_openssl_and_our_verifier(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
    tmp_path: Path,
) -> None:
    credential, clock = credentials[KeyAlgorithm.RSA2048], initialized_services.clock
    detached = sign_detached(DOCUMENT, credential, store, clock, CMSSignatureSpec(signature_scheme=PSS, level="B-T"),
                             timestamper=initialized_services.timestamps.answer)  # fmt: skip
    around_digest = sign_digest(
        hashlib.sha384(DOCUMENT).digest(),
        "sha384",
        credential,
        store,
        clock,
        CMSSignatureSpec(digest_algorithm="sha384", signature_scheme=PSS),
    )
    for signature, hash_name, salt in ((detached, "sha256", 32), (around_digest, "sha384", 48)):
        (signer_info,) = cms.ContentInfo.load(signature)["content"]["signer_infos"]
        _assert_pss_params(signer_info["signature_algorithm"], hash_name, salt)
        _openssl_cms_verify(signature, hierarchy, tmp_path)
        signed_data = parse_signed_data(signature)
        report = validate_cms(
            signed_data,
            content_digest(signed_data, [DOCUMENT]),
            _policy(hierarchy),
            now=clock.now(),
            status=initialized_services.verifications.status,
        )
        assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages


def test_raw_pss_signature_over_a_digest_verifies_with_cryptography(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore
) -> None:
    credential = credentials[KeyAlgorithm.RSA2048]
    public_key = x509.load_der_x509_certificate(credential.certificate_der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    for name, hash_type in (("sha256", hashes.SHA256()), ("sha512", hashes.SHA512())):
        digest = hashlib.new(name, DOCUMENT).digest()
        signature = raw_signature(digest, name, credential, store, scheme=PSS)
        pss = padding.PSS(mgf=padding.MGF1(hash_type), salt_length=hash_type.digest_size)
        public_key.verify(signature, digest, pss, utils.Prehashed(hash_type))
        with pytest.raises(InvalidSignature):  # not a PKCS#1 v1.5 signature
            public_key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hash_type))


def test_an_ec_key_refuses_the_rsa_schemes(
    credentials: dict[KeyAlgorithm, SigningCredential], store: KeyStore, initialized_services: Services
) -> None:
    credential, clock = credentials[KeyAlgorithm.EC_P256], initialized_services.clock
    for scheme in (SignatureScheme.RSA_PSS, SignatureScheme.RSA_PKCS1V15):
        with pytest.raises(InvalidInputError, match=f"{scheme.value} is for RSA keys.*EC key"):
            sign_detached(DOCUMENT, credential, store, clock, CMSSignatureSpec(signature_scheme=scheme))
        with pytest.raises(InvalidInputError, match="is for RSA keys"):
            raw_signature(bytes(32), "sha256", credential, store, scheme=scheme)
        with pytest.raises(InvalidInputError, match="is for RSA keys"):
            sign_pdf(blank_pdf(), credential, store, PDFSignatureSpec(signature_scheme=scheme))
    with pytest.raises(InvalidInputError, match="ecdsa is for EC keys"):
        raw_signature(bytes(32), "sha256", credentials[KeyAlgorithm.RSA2048], store, scheme=SignatureScheme.ECDSA)
