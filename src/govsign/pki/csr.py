"""Checking PKCS#10 certificate requests before anything is built from them."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import SignatureAlgorithmOID

from govsign.errors import InvalidCSRError
from govsign.keystore.api import KeyAlgorithm, PublicKey

ACCEPTED_SIGNATURE_ALGORITHMS = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.RSASSA_PSS,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_WEAK_SIGNATURE_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID._RSA_WITH_SHA1: "SHA-1",
}
MAX_CSR_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class CheckedCSR:
    """A request whose signature verified and whose key we accept."""

    subject: x509.Name
    """The subject as requested (not yet normalised)."""
    public_key: PublicKey
    """The subject's public key."""
    key_algorithm: KeyAlgorithm
    """Its type and size."""


def key_algorithm_of(public_key: object) -> KeyAlgorithm:
    """The accepted algorithm of a public key, or InvalidCSRError naming what is wrong."""
    if isinstance(public_key, rsa.RSAPublicKey):
        sizes = {2048: KeyAlgorithm.RSA2048, 3072: KeyAlgorithm.RSA3072, 4096: KeyAlgorithm.RSA4096}
        if public_key.key_size not in sizes:
            raise InvalidCSRError(
                f"RSA keys of {public_key.key_size} bits are not accepted; use 2048, 3072 or 4096 bits."
            )
        if public_key.public_numbers().e != 65537:
            raise InvalidCSRError("RSA keys must use the public exponent 65537.")
        return sizes[public_key.key_size]
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": KeyAlgorithm.EC_P256, "secp384r1": KeyAlgorithm.EC_P384}
        if public_key.curve.name not in curves:
            raise InvalidCSRError(f"EC keys on {public_key.curve.name} are not accepted; use P-256 or P-384.")
        return curves[public_key.curve.name]
    kind = {"Ed25519PublicKey": "Ed25519", "Ed448PublicKey": "Ed448", "DSAPublicKey": "DSA"}.get(
        type(public_key).__name__.removeprefix("_"), "These"
    )
    raise InvalidCSRError(f"{kind} keys are not accepted; use RSA (2048, 3072 or 4096 bits) or EC P-256/P-384.")


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    if len(data) > MAX_CSR_BYTES:
        raise InvalidCSRError(f"The CSR is larger than {MAX_CSR_BYTES // 1024} KiB.")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data.strip())
        return x509.load_der_x509_csr(data)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise InvalidCSRError("The CSR is not a valid PKCS#10 request in PEM or DER form.") from None


def check_csr(data: bytes) -> CheckedCSR:
    """Parse a PKCS#10 request and check its signature, signature algorithm and key."""
    csr = load_csr(data)
    try:
        algorithm_oid = csr.signature_algorithm_oid
    except ValueError:
        raise InvalidCSRError("The CSR's signature algorithm is not recognised.") from None
    if algorithm_oid in _WEAK_SIGNATURE_NAMES:
        raise InvalidCSRError(
            f"The CSR is signed with {_WEAK_SIGNATURE_NAMES[algorithm_oid]}, which is not accepted; "
            "sign it with SHA-256 or stronger."
        )
    if algorithm_oid not in ACCEPTED_SIGNATURE_ALGORITHMS:
        raise InvalidCSRError(
            f"The CSR's signature algorithm {algorithm_oid.dotted_string} is not accepted; "
            "use RSA or ECDSA with SHA-256 or stronger."
        )
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidCSRError("The CSR's public key cannot be read.") from None
    key_algorithm = key_algorithm_of(public_key)
    try:
        signature_ok = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        signature_ok = False
    if not signature_ok:
        raise InvalidCSRError(
            "The CSR's signature does not verify: the request was altered or not signed with its key."
        )
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return CheckedCSR(subject=csr.subject, public_key=public_key, key_algorithm=key_algorithm)
