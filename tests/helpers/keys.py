"""An in-memory key store of software keys behind the keystore protocol, for pure tests of the
cores (never for the service: the service's keys are in the HSM)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from govsign.errors import HSMUnavailableError
from govsign.keystore.api import HashAlgorithm, KeyAlgorithm, KeyInfo, KeyRef, PublicKey, SignatureScheme, TokenInfo

_HASHES = {
    HashAlgorithm.SHA256: hashes.SHA256(),
    HashAlgorithm.SHA384: hashes.SHA384(),
    HashAlgorithm.SHA512: hashes.SHA512(),
}


class SoftwareKeyStore:
    """A KeyStore whose keys are cryptography keys in memory; counts every signature."""

    def __init__(self, *, down: bool = False) -> None:
        self.keys: dict[bytes, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {}
        self.sign_calls = 0
        self.calls: list[tuple[SignatureScheme, HashAlgorithm]] = []
        self.corrupt_signatures = False
        self.down = down
        """When True, every signature fails as with an unavailable HSM."""

    def add(
        self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, label: str, algorithm: KeyAlgorithm
    ) -> KeyRef:
        """A reference to ``key``, held by this store."""
        ref = KeyRef(label=label, key_id=os.urandom(16), algorithm=algorithm)
        self.keys[ref.key_id] = key
        return ref

    def generate_key_pair(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if algorithm.is_rsa:
            key = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
        else:
            key = ec.generate_private_key(ec.SECP384R1() if algorithm is KeyAlgorithm.EC_P384 else ec.SECP256R1())
        ref = KeyRef(label=label, key_id=os.urandom(16), algorithm=algorithm)
        self.keys[ref.key_id] = key
        return ref

    def find_key(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef | None:
        return None

    def public_key(self, ref: KeyRef) -> PublicKey:
        return self.keys[ref.key_id].public_key()

    def _sign(self, ref: KeyRef, data: bytes, scheme: SignatureScheme, algorithm: object) -> bytes:
        self.sign_calls += 1
        key = self.keys[ref.key_id]
        if isinstance(key, ec.EllipticCurvePrivateKey):
            signature = key.sign(data, ec.ECDSA(algorithm))  # type: ignore[arg-type]
        elif scheme is SignatureScheme.RSA_PSS:
            pss = padding.PSS(mgf=padding.MGF1(_hash_of(algorithm)), salt_length=padding.PSS.DIGEST_LENGTH)
            signature = key.sign(data, pss, algorithm)  # type: ignore[arg-type]
        else:
            signature = key.sign(data, padding.PKCS1v15(), algorithm)  # type: ignore[arg-type]
        if self.corrupt_signatures:
            signature = signature[:-1] + bytes([signature[-1] ^ 1])
        return signature

    def sign(self, ref: KeyRef, message: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm) -> bytes:
        if self.down:
            raise HSMUnavailableError("The HSM is unavailable.")
        self.calls.append((scheme, hash_algorithm))
        return self._sign(ref, message, scheme, _HASHES[hash_algorithm])

    def sign_digest(
        self, ref: KeyRef, digest: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm
    ) -> bytes:
        return self._sign(ref, digest, scheme, utils.Prehashed(_HASHES[hash_algorithm]))

    def destroy_key_pair(self, ref: KeyRef) -> None:
        self.keys.pop(ref.key_id, None)

    def list_private_keys(self) -> list[KeyInfo]:
        return []

    def token_info(self) -> TokenInfo:
        raise NotImplementedError

    def ping(self) -> None:
        if self.down:
            raise HSMUnavailableError("The HSM is unavailable.")

    @property
    def available(self) -> bool:
        return not self.down

    def probe(self) -> bool:
        return not self.down

    def close(self) -> None:
        return None

    @contextmanager
    def held(self, *, wait: bool = True) -> Iterator[bool]:
        yield True


def _hash_of(algorithm: object) -> hashes.HashAlgorithm:
    return algorithm._algorithm if isinstance(algorithm, utils.Prehashed) else algorithm  # type: ignore[return-value]
