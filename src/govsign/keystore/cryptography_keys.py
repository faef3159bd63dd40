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
from typing import Any, ClassVar, Generic, NoReturn, Self, TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
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


_PublicT = TypeVar("_PublicT", rsa.RSAPublicKey, ec.EllipticCurvePublicKey)


class PublicHalfKey(Generic[_PublicT]):
    """Mixin for cryptography private keys whose process holds only the public half.

    It answers from the public half what a private key may be asked about it, and refuses
    ``private_numbers()`` and ``private_bytes()`` with ``no_private_material``. Copies are the
    key itself: a copy of a key that is not in this process has nothing of its own to copy.
    """

    _public: _PublicT
    no_private_material: ClassVar[str] = "The private half of this key is not in this process."
    """The message of the refusal to give out private material."""

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> _PublicT:
        return self._public

    def private_numbers(self) -> NoReturn:
        raise InternalError(self.no_private_material)

    def private_bytes(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise InternalError(self.no_private_material)

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Self:
        return self


class _HSMKeyPair(PublicHalfKey[_PublicT]):
    """What the RSA and EC key pairs on the token share: the keystore, the ref and the guard."""

    no_private_material = "Private keys held in the HSM cannot be exported."
    _public_type: type[_PublicT]
    """The class of the public half, checked against the key found on the token."""
    _algorithm_name: ClassVar[str]
    """The algorithm family, for the error when the key on the token is of another."""

    def __init__(self, keystore: KeyStore, ref: KeyRef, *, expected_message: bytes | None = None) -> None:
        public = keystore.public_key(ref)
        if not isinstance(public, self._public_type):
            raise InternalError(f"The HSM key '{ref.label}' is not an {self._algorithm_name} key.")
        self._keystore = keystore
        self._ref = ref
        self._public = public
        self._guard = _MessageGuard(expected_message)

    @property
    def ref(self) -> KeyRef:
        return self._ref

    def _sign(self, data: bytes, scheme: SignatureScheme, hash_algorithm: HashAlgorithm, prehashed: bool) -> bytes:
        """Sign ``data`` (a digest when ``prehashed``) on the token, once the guard allows it."""
        self._guard.check(data)
        if prehashed:
            return self._keystore.sign_digest(self._ref, data, scheme=scheme, hash_algorithm=hash_algorithm)
        return self._keystore.sign(self._ref, data, scheme=scheme, hash_algorithm=hash_algorithm)


class HSMRSAPrivateKey(_HSMKeyPair[rsa.RSAPublicKey], rsa.RSAPrivateKey):
    """An RSA key pair on the token, usable wherever cryptography wants an RSAPrivateKey."""

    _public_type = rsa.RSAPublicKey
    _algorithm_name = "RSA"

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
        return self._sign(data, scheme, hash_algorithm, prehashed)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise InternalError("Signing keys in the HSM do not decrypt.")


class HSMECPrivateKey(_HSMKeyPair[ec.EllipticCurvePublicKey], ec.EllipticCurvePrivateKey):
    """An EC key pair on the token, usable wherever cryptography wants an EllipticCurvePrivateKey."""

    _public_type = ec.EllipticCurvePublicKey
    _algorithm_name = "EC"

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise InternalError("The HSM EC keys sign with ECDSA only.")
        hash_algorithm, prehashed = _hash_of(signature_algorithm.algorithm)
        return self._sign(bytes(data), SignatureScheme.ECDSA, hash_algorithm, prehashed)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise InternalError("Signing keys in the HSM do not do key agreement.")

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve


HSMPrivateKey = HSMRSAPrivateKey | HSMECPrivateKey

_PSS = padding.PSS
_PKCS1v15 = padding.PKCS1v15


def hsm_private_key(keystore: KeyStore, ref: KeyRef, *, expected_message: bytes | None = None) -> HSMPrivateKey:
    """The cryptography-shaped private key for a key pair on the token."""
    if ref.algorithm.is_rsa:
        return HSMRSAPrivateKey(keystore, ref, expected_message=expected_message)
    return HSMECPrivateKey(keystore, ref, expected_message=expected_message)
