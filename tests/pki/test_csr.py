"""check_csr: which PKCS#10 requests are accepted, and that everything else is refused."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from govsign.errors import InvalidCSRError
from govsign.keystore.api import KeyAlgorithm
from govsign.pki.csr import MAX_CSR_BYTES, check_csr

SUBJECT = x509.Name(
    [x509.NameAttribute(NameOID.COMMON_NAME, "Nguyễn Văn A"), x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@functools.cache
def _key(kind: str) -> PrivateKey:
    if kind.startswith("rsa"):
        bits, _, exponent = kind[3:].partition("-e")
        return rsa.generate_private_key(public_exponent=int(exponent or 65537), key_size=int(bits))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[kind]
    return ec.generate_private_key(curve)


def _csr(kind: str, algorithm: hashes.HashAlgorithm | None = None, *, der: bool = False) -> bytes:
    key = _key(kind)
    if algorithm is None and not isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = hashes.SHA256()
    request = x509.CertificateSigningRequestBuilder().subject_name(SUBJECT).sign(key, algorithm)
    return request.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


def _clean_der_csr(kind: str, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    """A DER request that does not end in a whitespace octet (see the xfail at the end)."""
    for _ in range(100):
        der = _csr(kind, algorithm, der=True)
        if not der[-1:].isspace():
            return der
        if kind.startswith("rsa"):  # PKCS#1 v1.5 signatures are deterministic: use a new key
            _key.cache_clear()
    raise AssertionError("every request ended in whitespace")


@pytest.mark.parametrize(
    ("kind", "algorithm", "expected"),
    [
        ("rsa2048", hashes.SHA256(), KeyAlgorithm.RSA2048),
        ("rsa3072", hashes.SHA384(), KeyAlgorithm.RSA3072),
        ("p256", hashes.SHA256(), KeyAlgorithm.EC_P256),
        ("p384", hashes.SHA384(), KeyAlgorithm.EC_P384),
        ("p256", hashes.SHA512(), KeyAlgorithm.EC_P256),
    ],
)
@pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
def test_accepted_requests(kind: str, algorithm: hashes.HashAlgorithm, expected: KeyAlgorithm, der: bool) -> None:
    checked = check_csr(_clean_der_csr(kind, algorithm) if der else _csr(kind, algorithm))
    assert checked.key_algorithm is expected
    assert checked.subject == SUBJECT
    assert checked.public_key == _key(kind).public_key()


def test_pem_with_surrounding_whitespace_is_accepted() -> None:
    assert check_csr(b"\n  " + _csr("p256") + b"\n\n").key_algorithm is KeyAlgorithm.EC_P256


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        ("rsa1024", "1024 bits"),
        ("rsa2048-e3", "65537"),
        ("p521", "secp521r1"),
        ("ed25519", "not accepted"),
    ],
)
def test_refused_keys(kind: str, fragment: str) -> None:
    with pytest.raises(InvalidCSRError) as caught:
        check_csr(_csr(kind))
    assert fragment in caught.value.message


def test_sha224_signature_is_refused() -> None:
    with pytest.raises(InvalidCSRError, match="not accepted"):
        check_csr(_csr("rsa2048", hashes.SHA224()))


@pytest.fixture(scope="module")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.skip("the openssl command is needed to build SHA-1 and MD5 requests")
    return path


@pytest.mark.parametrize(("digest", "name"), [("sha1", "SHA-1"), ("md5", "MD5")])
def test_weak_hash_signatures_are_refused(openssl: str, tmp_path: Path, digest: str, name: str) -> None:
    # cryptography no longer signs with SHA-1 or MD5, so OpenSSL builds these requests.
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        _key("rsa2048").private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    result = subprocess.run(
        [openssl, "req", "-new", "-key", str(key_file), f"-{digest}", "-subj", "/CN=A/C=VN", "-outform", "DER"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        pytest.skip(f"this OpenSSL does not sign requests with {digest}: {result.stderr.decode(errors='replace')}")
    with pytest.raises(InvalidCSRError) as caught:
        check_csr(result.stdout)
    assert name in caught.value.message


@pytest.mark.parametrize("kind", ["rsa2048", "p256"])
def test_altered_signature_is_refused(kind: str) -> None:
    der = bytearray(_clean_der_csr(kind))
    der[-5] ^= 0x01  # inside the signature, the last field of the request
    with pytest.raises(InvalidCSRError, match="signature does not verify"):
        check_csr(bytes(der))


def test_altered_subject_is_refused() -> None:
    der = _clean_der_csr("p256")
    altered = der.replace("Văn".encode(), "Vân".encode())
    assert altered != der
    with pytest.raises(InvalidCSRError, match="signature does not verify"):
        check_csr(altered)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage that is not a request", id="garbage"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", id="bad-pem"),
        pytest.param(b"\x30\x03\x02\x01\x01", id="wrong-der"),
        pytest.param(b"0" * (MAX_CSR_BYTES + 1), id="too-large"),
    ],
)
def test_unparseable_input_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidCSRError):
        check_csr(data)


def test_truncated_request_is_refused() -> None:
    with pytest.raises(InvalidCSRError):
        check_csr(_clean_der_csr("p256")[:-10])


def _der_csr_ending_in_whitespace() -> bytes:
    """A valid DER request whose last octet (of the signature) is an ASCII whitespace byte."""
    for _ in range(5000):  # about 1 in 43 signatures ends so; 5000 tries never all miss in practice
        der = _csr("p256", der=True)
        if der[-1:].isspace():
            return der
    raise AssertionError("no request ending in whitespace was produced")


def test_der_request_ending_in_a_whitespace_octet_is_accepted() -> None:
    der = _der_csr_ending_in_whitespace()
    assert check_csr(der).key_algorithm is KeyAlgorithm.EC_P256
