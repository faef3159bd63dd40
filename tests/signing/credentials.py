"""Signing credentials on the shared SoftHSM2 token, for the signing-core tests."""

from __future__ import annotations

import functools
import secrets

from govsign.keystore.api import KeyAlgorithm
from govsign.pki.authority import CertificateAuthority, HierarchyResult, IssuanceRequest, IssuedCertificate
from govsign.runtime import Runtime
from govsign.signing import SigningCredential

ACTOR = "test:signing"


def _issue(ca: CertificateAuthority, *, request: IssuanceRequest) -> IssuedCertificate:
    return ca.issue(request)


def issue(runtime: Runtime, request: IssuanceRequest) -> IssuedCertificate:
    """Issue a certificate in one audited transaction."""
    return runtime.execute(
        functools.partial(_issue, request=request),
        action="certificate.issue",
        actor=ACTOR,
        object_id=request.subject or "csr",
    )


def individual_credentials(
    runtime: Runtime, hierarchy: HierarchyResult, name: str
) -> dict[KeyAlgorithm, SigningCredential]:
    """An individual certificate with a key generated on the token, per key algorithm."""
    found: dict[KeyAlgorithm, SigningCredential] = {}
    for algorithm in (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA2048):
        subject = f"CN={name} {algorithm.value} {secrets.token_hex(4)},C=VN"
        request = IssuanceRequest(
            profile="individual", subject=subject, email="signer@example.gov.vn", generate_key=algorithm, actor=ACTOR
        )
        issued = issue(runtime, request)
        assert issued.record.key is not None
        found[algorithm] = SigningCredential(
            key=issued.record.key,
            certificate_der=issued.record.certificate_der,
            chain_der=(hierarchy.issuing.certificate_der, hierarchy.root.certificate_der),
        )
    return found
