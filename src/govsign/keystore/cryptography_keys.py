"""HSM keys dressed as pyca/cryptography private keys.

cryptography's ``CertificateBuilder``, ``CertificateRevocationListBuilder`` and
``OCSPResponseBuilder`` sign by calling ``private_key.sign(data, padding, algorithm)``. These
subclasses forward that call to the keystore, so every certificate, CRL and OCSP response is
built by cryptography and signed inside the HSM. The key material is never in this process:
``private_numbers()`` and ``private_bytes()`` refuse.

A key may be *bound to one message* (``expected_message``): it then signs exactly those bytes,
once, and refuses anything else. The issuer uses that to make the HSM sign only the TBS that was
linted (DESIGN.md example 3).
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from typing_extensions import Buffer

from govsign.errors import InternalError
from govsign.keystore.api import HashAlgorithm, KeyRef, KeyStore, SignatureScheme

_HASHES: dict[str, HashAlgorithm] = {
    "sha256": HashAlgorithm.SHA256,
    "sha384": HashAlgorithm.SHA384,
    "sha512": HashAlgorithm.SHA512,
}


def _hash_of(algorithm: Any) -> tuple[HashAlgorithm, bool]:
    """Our hash enum for a cryptography hash (or Prehashed wrapper), and whether it is prehashed."""
    prehashed = isinstance(algorithm, utils.Prehashed)
    name = algorithm._algorithm.name if prehashed else algorithm.name
    if name not in _HASHES:
        raise InternalError(f"The HSM keys do not sign with {name}.")
    return _HASHES[name], prehashed


class _MessageGuard:
    """Allows exactly one signature over exactly one message."""

    def __init__(self, expected: bytes | None) -> None:
        self._expected = expected
        self._used = False
        self._lock = threading.Lock()

    def check(self, message: bytes) -> None:
        if self._expected is None:
            return
        with self._lock:
            if self._used:
                raise InternalError("This issuance token has been used already.")
            if message != self._expected:
                raise InternalError("The HSM was asked to sign something other than what was linted.")
            self._used = True


def _check_pss(pss: padding.PSS, hash_algorithm: HashAlgorithm) -> None:
    """The HSM signs PSS with MGF1 over the same hash and a salt as long as the digest."""
    salt = pss._salt_length
    if not (salt is padding.PSS.DIGEST_LENGTH or salt == hash_algorithm.digest_size):
        raise InternalError("The HSM keys sign PSS with a salt as long as the digest only.")
    mgf = pss._mgf
    if not isinstance(mgf, padding.MGF1) or mgf._algorithm.name != hash_algorithm.value:
        raise InternalError("The HSM keys sign PSS with MGF1 over the signature hash only.")


def _no_private_material() -> NoReturn:
    raise InternalError("Private keys held in the HSM cannot be exported.")


class HSMRSAPrivateKey(rsa.RSAPrivateKey):
    """An RSA key pair on the token, usable wherever cryptography wants an RSAPrivateKey."""

    def __init__(self, keystore: KeyStore, ref: KeyRef, *, expected_message: bytes | None = None) -> None:
        public = keystore.public_key(ref)
        if not isinstance(public, rsa.RSAPublicKey):
            raise InternalError(f"The HSM key '{ref.label}' is not an RSA key.")
        self._keystore = keystore
        self._ref = ref
        self._public = public
        self._guard = _MessageGuard(expected_message)

    @property
    def ref(self) -> KeyRef:
        return self._ref

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: utils.Prehashed | hashes.HashAlgorithm | utils.NoDigestInfo,
    ) -> bytes:
        hash_algorithm, prehashed = _hash_of(algorithm)
        if isinstance(padding, _PSS):
            _check_pss(padding, hash_algorithm)
            scheme = SignatureScheme.RSA_PSS
        elif isinstance(padding, _PKCS1v15):
            scheme = SignatureScheme.RSA_PKCS1V15
        else:
            raise InternalError(f"The HSM keys do not sign with {padding.name} padding.")
        self._guard.check(data)
        if prehashed:
            return self._keystore.sign_digest(self._ref, data, scheme=scheme, hash_algorithm=hash_algorithm)
        return self._keystore.sign(self._ref, data, scheme=scheme, hash_algorithm=hash_algorithm)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise InternalError("Signing keys in the HSM do not decrypt.")

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        _no_private_material()

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        _no_private_material()

    def __copy__(self) -> HSMRSAPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMRSAPrivateKey:
        return self


class HSMECPrivateKey(ec.EllipticCurvePrivateKey):
    """An EC key pair on the token, usable wherever cryptography wants an EllipticCurvePrivateKey."""

    def __init__(self, keystore: KeyStore, ref: KeyRef, *, expected_message: bytes | None = None) -> None:
        public = keystore.public_key(ref)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InternalError(f"The HSM key '{ref.label}' is not an EC key.")
        self._keystore = keystore
        self._ref = ref
        self._public = public
        self._guard = _MessageGuard(expected_message)

    @property
    def ref(self) -> KeyRef:
        return self._ref

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise InternalError("The HSM EC keys sign with ECDSA only.")
        hash_algorithm, prehashed = _hash_of(signature_algorithm.algorithm)
        data = bytes(data)
        self._guard.check(data)
        if prehashed:
            return self._keystore.sign_digest(
                self._ref, data, scheme=SignatureScheme.ECDSA, hash_algorithm=hash_algorithm
            )
        return self._keystore.sign(self._ref, data, scheme=SignatureScheme.ECDSA, hash_algorithm=hash_algorithm)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise InternalError("Signing keys in the HSM do not do key agreement.")

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        _no_private_material()

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        _no_private_material()

    def __copy__(self) -> HSMECPrivateKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> HSMECPrivateKey:
        return self


HSMPrivateKey = HSMRSAPrivateKey | HSMECPrivateKey

_PSS = padding.PSS
_PKCS1v15 = padding.PKCS1v15


def hsm_private_key(keystore: KeyStore, ref: KeyRef, *, expected_message: bytes | None = None) -> HSMPrivateKey:
    """The cryptography-shaped private key for a key pair on the token."""
    if ref.algorithm.is_rsa:
        return HSMRSAPrivateKey(keystore, ref, expected_message=expected_message)
    return HSMECPrivateKey(keystore, ref, expected_message=expected_message)


def is_private_key(value: object) -> bool:
    return isinstance(value, PrivateKeyTypes.__args__)  # type: ignore[attr-defined]
