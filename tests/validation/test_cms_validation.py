"""CMS/CAdES validation (ETSI EN 319 102-1 on pyHanko): what govsign signs verifies at its level,
detached over the content or over its digest; a changed content is a hash failure."""

from __future__ import annotations

import hashlib

import pytest

from govsign.errors import InvalidInputError
from govsign.keystore.api import KeyAlgorithm, KeyStore
from govsign.pki.hierarchy import HierarchyResult
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from govsign.signing.cms import CMSSignatureSpec, sign_detached
from govsign.validation.cms import content_digest, parse_signed_data, validate_cms
from govsign.validation.policy import ValidationPolicy
from govsign.validation.report import Indication, SignatureReport

DOCUMENT = "Quyết định số 123/QĐ-UBND về việc kiểm tra chữ ký số.".encode() * 200


def _sign(services: Services, credential: SigningCredential, store: KeyStore, level: str) -> bytes:
    evidence = None
    if level == "B-LT":
        evidence = services.evidence.revocation_evidence([credential.certificate_der, *credential.chain_der])
    return sign_detached(
        DOCUMENT,
        credential,
        store,
        services.clock,
        CMSSignatureSpec(level=level),  # type: ignore[arg-type]
        timestamper=services.timestamps.answer if level != "B-B" else None,
        evidence=evidence,
    )


def _validate(services: Services, hierarchy: HierarchyResult, signature: bytes, content: bytes) -> SignatureReport:
    policy = ValidationPolicy(trust_anchors=(hierarchy.root.certificate_der,), fetch_revocation=False)
    signed_data = parse_signed_data(signature)
    status = services.verifications.status
    return validate_cms(
        signed_data, content_digest(signed_data, [content]), policy, now=services.clock.now(), status=status
    )


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048], ids=["ec", "rsa"])
def test_what_govsign_signs_verifies_at_its_level(
    level: str,
    algorithm: KeyAlgorithm,
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signature = _sign(initialized_services, credentials[algorithm], store, level)
    report = _validate(initialized_services, hierarchy, signature, DOCUMENT)
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_PASSED, None), report.messages
    assert report.level == f"CAdES-BASELINE-{level[2:]}"
    assert report.integrity and report.valid_at_signing_time and report.coverage == "entire-document"
    assert report.claimed_signing_time is not None


def test_other_content_is_a_hash_failure(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signature = _sign(initialized_services, credentials[KeyAlgorithm.EC_P256], store, "B-B")
    report = _validate(initialized_services, hierarchy, signature, DOCUMENT + b" ")
    assert (report.indication, report.sub_indication) == (Indication.TOTAL_FAILED, "HASH_FAILURE")
    assert not report.integrity


def test_a_digest_the_relying_party_computed_verifies_too(
    credentials: dict[KeyAlgorithm, SigningCredential],
    store: KeyStore,
    hierarchy: HierarchyResult,
    initialized_services: Services,
) -> None:
    signature = _sign(initialized_services, credentials[KeyAlgorithm.RSA2048], store, "B-T")
    policy = ValidationPolicy(trust_anchors=(hierarchy.root.certificate_der,), fetch_revocation=False)
    status = initialized_services.verifications.status
    report = validate_cms(
        parse_signed_data(signature),
        hashlib.sha256(DOCUMENT).digest(),
        policy,
        now=initialized_services.clock.now(),
        status=status,
    )
    assert report.indication is Indication.TOTAL_PASSED, report.messages


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01\x01", b"not der at all"], ids=["empty", "not-cms", "text"])
def test_what_is_not_a_cms_signature_is_refused(garbage: bytes) -> None:
    with pytest.raises(InvalidInputError):
        parse_signed_data(garbage)
