"""Helpers of the status-service tests: CSRs, issuance and revocation through a Runtime, OCSP
requests built with cryptography or asn1crypto, and the outside tools (openssl, pkilint)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from govsign.clock import FixedClock
from govsign.config import Settings
from govsign.pki.authority import CertificateView, HierarchyResult, IssuanceRequest, IssuedCertificate
from govsign.pki.ports import RevocationReason
from govsign.runtime import Runtime

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
ACTOR = "test:status"


# -- certificates ------------------------------------------------------------------------------


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


def issue(runtime: Runtime, csr: bytes | None = None, *, common_name: str = "Nguyễn Văn Thử") -> IssuedCertificate:
    request = IssuanceRequest(profile="individual", csr=csr or make_csr(common_name), actor=ACTOR)
    return runtime.execute(lambda ca: ca.issue(request), action="certificate.issue", actor=ACTOR, object_id="csr")


def revoke(
    runtime: Runtime,
    serial_hex: str,
    reason: RevocationReason,
    *,
    invalidity_date: dt.datetime | None = None,
) -> CertificateView:
    return runtime.execute(
        lambda ca: ca.revoke(serial_hex, reason=reason, actor=ACTOR, invalidity_date=invalidity_date),
        action="certificate.revoke",
        actor=ACTOR,
        object_id=serial_hex,
    )


def release(runtime: Runtime, serial_hex: str) -> CertificateView:
    return runtime.execute(
        lambda ca: ca.release(serial_hex, actor=ACTOR),
        action="certificate.release",
        actor=ACTOR,
        object_id=serial_hex,
    )


def pem(certificate_der: bytes) -> bytes:
    return x509.load_der_x509_certificate(certificate_der).public_bytes(serialization.Encoding.PEM)


@dataclass
class Deployment:
    """A CA hierarchy in a database of its own, on the shared token, with its own FixedClock."""

    settings: Settings
    runtime: Runtime
    hierarchy: HierarchyResult
    clock: FixedClock

    @property
    def issuing(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.hierarchy.issuing.certificate_der)

    @property
    def root(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.hierarchy.root.certificate_der)


# -- OCSP requests -----------------------------------------------------------------------------


def cryptography_request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, algorithm or hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def asn1_cert_id(issuer: x509.Certificate, serial: int, algorithm: str = "sha1") -> asn1_ocsp.CertId:
    """A CertID of ``serial`` under ``issuer`` (the issuer need not have issued it)."""
    issuer_asn1 = asn1_x509.Certificate.load(issuer.public_bytes(serialization.Encoding.DER))
    return asn1_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": algorithm},
            "issuer_name_hash": hashlib.new(algorithm, issuer_asn1.subject.dump()).digest(),
            "issuer_key_hash": hashlib.new(algorithm, issuer_asn1.public_key["public_key"].contents[1:]).digest(),
            "serial_number": serial,
        }
    )


def asn1_request(cert_ids: list[asn1_ocsp.CertId], *, raw_nonce_value: bytes | None = None) -> bytes:
    """An OCSPRequest with several CertIDs; ``raw_nonce_value`` is the nonce OCTET STRING's content."""
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id} for cert_id in cert_ids]}
    if raw_nonce_value is not None:
        tbs["request_extensions"] = [
            {"extn_id": "nonce", "critical": False, "extn_value": core.OctetString(raw_nonce_value)}
        ]
    return bytes(asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump())


def response_status(der: bytes) -> str:
    """The responseStatus of a DER OCSPResponse, as asn1crypto names it."""
    return str(asn1_ocsp.OCSPResponse.load(der)["response_status"].native)


# -- outside tools -----------------------------------------------------------------------------


def run(
    args: list[str | Path], *, timeout: float = 60, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd, check=False
    )


def lint_crl(path: Path, *, arl: bool = False) -> str:
    """pkilint's findings at WARNING or above (empty when clean)."""
    result = run([VENV_BIN / "lint_crl", "lint", "-t", "ARL" if arl else "CRL", "-p", "PKIX", "-s", "WARNING", path])
    return (result.stdout + result.stderr).strip()


def lint_ocsp_response(path: Path) -> str:
    result = run([VENV_BIN / "lint_ocsp_response", "lint", "-s", "WARNING", path])
    return (result.stdout + result.stderr).strip()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without GOVSIGN_* and SOFTHSM2_CONF of this process, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(extra)
    return env
