"""CA operations for tests: issue, revoke and release through the services, one audited unit of
work each, and software-made CSRs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govsign.pki.authority import CertificateView, IssuedCertificate
from govsign.pki.issuance import IssuanceRequest
from govsign.pki.records import RevocationReason
from govsign.services.authorization import Requester
from govsign.services.bootstrap import Services
from govsign.services.uow import Work

ACTOR = "test:ca"
T = TypeVar("T")


def run_ca(
    services: Services,
    operation: Callable[[Work], T],
    *,
    action: str = "test.operation",
    actor: str = ACTOR,
    object_id: str = "-",
) -> T:
    """Run a CA operation in one unit of work (audited, keys cleaned up when it fails)."""
    return services.uow.run(operation, action=action, requester=Requester.operator(actor), object_id=object_id)


def make_csr(common_name: str = "Nguyễn Văn Thử") -> bytes:
    """A PEM PKCS#10 request with a fresh EC P-256 key (made in software, not in the HSM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bộ Tư pháp"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


def issue(services: Services, request: IssuanceRequest) -> IssuedCertificate:
    """Issue a certificate in one audited transaction."""
    return run_ca(
        services,
        lambda work: work.issuance.issue(request, actor=ACTOR),
        action="certificate.issue",
        object_id=request.subject or "csr",
    )


def issue_from_csr(
    services: Services, csr: bytes | None = None, *, common_name: str = "Nguyễn Văn Thử"
) -> IssuedCertificate:
    """An individual certificate from a CSR (a fresh software key by default)."""
    return issue(services, IssuanceRequest(profile="individual", csr=csr or make_csr(common_name)))


def revoke(
    services: Services,
    serial_hex: str,
    reason: RevocationReason,
    *,
    invalidity_date: dt.datetime | None = None,
) -> CertificateView:
    return run_ca(
        services,
        lambda work: work.lifecycle.revoke(serial_hex, reason=reason, actor=ACTOR, invalidity_date=invalidity_date),
        action="certificate.revoke",
        object_id=serial_hex,
    )


def release(services: Services, serial_hex: str) -> CertificateView:
    return run_ca(
        services,
        lambda work: work.lifecycle.release(serial_hex, actor=ACTOR),
        action="certificate.release",
        object_id=serial_hex,
    )


def show(services: Services, serial_hex: str) -> CertificateView:
    return services.uow.read(lambda work: work.lifecycle.show(serial_hex))


def pem(certificate_der: bytes) -> bytes:
    return x509.load_der_x509_certificate(certificate_der).public_bytes(serialization.Encoding.PEM)
