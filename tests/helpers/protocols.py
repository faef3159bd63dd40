"""Helpers of the status-service tests: OCSP requests built with cryptography or asn1crypto, and
the outside tools (openssl, pkilint)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

VENV_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
ACTOR = "test:status"


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
