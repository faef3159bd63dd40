"""Signing credentials on the shared SoftHSM2 token, for the signing-core tests."""

from __future__ import annotations

import secrets

from govsign.keystore.api import KeyAlgorithm
from govsign.pki.hierarchy import HierarchyResult
from govsign.pki.issuance import IssuanceRequest
from govsign.services.bootstrap import Services
from govsign.signing import SigningCredential
from helpers.ca import issue

ACTOR = "test:signing"


def signing_credential(
    services: Services,
    hierarchy: HierarchyResult,
    *,
    subject: str,
    profile: str = "individual",
    email: str | None = "signer@example.gov.vn",
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
) -> SigningCredential:
    """A certificate with a key generated on the token, as the signing cores take it."""
    request = IssuanceRequest(profile=profile, subject=subject, email=email, key_algorithm=algorithm)
    issued = issue(services, request)
    assert issued.record.key is not None
    return SigningCredential(
        key=issued.record.key,
        certificate_der=issued.record.certificate_der,
        chain_der=(hierarchy.issuing.certificate_der, hierarchy.root.certificate_der),
    )


def individual_credentials(
    services: Services, hierarchy: HierarchyResult, name: str
) -> dict[KeyAlgorithm, SigningCredential]:
    """An individual certificate with a key generated on the token, per key algorithm."""
    return {
        algorithm: signing_credential(
            services, hierarchy, subject=f"CN={name} {algorithm.value} {secrets.token_hex(4)},C=VN", algorithm=algorithm
        )
        for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048)
    }
