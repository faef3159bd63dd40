"""What the rest of govsign knows of key storage: references, algorithms and a small protocol.

Nothing here talks to an HSM; :mod:`govsign.keystore.pkcs11` implements :class:`KeyStore` on a
PKCS#11 token. Private key material never crosses this interface: only public keys, signatures
and references.
"""

from __future__ import annotations

import enum
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec, rsa


class KeyAlgorithm(enum.Enum):
    """Key types the service generates and accepts, named as on the command line."""

    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    RSA4096 = "rsa4096"
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa")

    @property
    def rsa_bits(self) -> int:
        if not self.is_rsa:
            raise ValueError(f"{self.value} is not an RSA algorithm")
        return int(self.value[3:])

    @property
    def curve_name(self) -> str:
        """The SEC 2 name of the curve (secp256r1, secp384r1)."""
        return {KeyAlgorithm.EC_P256: "secp256r1", KeyAlgorithm.EC_P384: "secp384r1"}[self]

    @property
    def default_hash(self) -> HashAlgorithm:
        """The hash that goes with this key size (NIST SP 800-57 strength matching)."""
        return HashAlgorithm.SHA384 if self is KeyAlgorithm.EC_P384 else HashAlgorithm.SHA256

    @property
    def default_scheme(self) -> SignatureScheme:
        return SignatureScheme.RSA_PKCS1V15 if self.is_rsa else SignatureScheme.ECDSA


class HashAlgorithm(enum.Enum):
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @property
    def digest_size(self) -> int:
        return {"sha256": 32, "sha384": 48, "sha512": 64}[self.value]


class SignatureScheme(enum.Enum):
    """How the token turns a hash into a signature: RSA PKCS#1 v1.5, RSA-PSS or ECDSA."""

    RSA_PKCS1V15 = "rsa-pkcs1v15"
    RSA_PSS = "rsa-pss"
    ECDSA = "ecdsa"


@dataclass(frozen=True, kw_only=True)
class KeyRef:
    """Names one key pair on the token."""

    label: str
    """CKA_LABEL of both halves of the pair."""
    key_id: bytes
    """CKA_ID of both halves of the pair (random, 16 bytes for keys we generate)."""
    algorithm: KeyAlgorithm
    """Type and size of the key."""

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    """Names one HMAC secret on the token (a second factor's seed, such as a TOTP key)."""

    label: str
    """CKA_LABEL of the secret key object."""
    key_id: bytes
    """CKA_ID of the secret key object (random, 16 bytes)."""


@dataclass(frozen=True, kw_only=True)
class KeyInfo:
    """What the token says about one private key."""

    ref: KeyRef
    """Which key."""
    sensitive: bool
    """CKA_SENSITIVE: the value cannot be read in the clear."""
    extractable: bool
    """CKA_EXTRACTABLE: the key can be wrapped out of the token."""
    never_extractable: bool
    """CKA_NEVER_EXTRACTABLE: the key was never extractable."""
    local: bool
    """CKA_LOCAL: the key was generated on the token."""


@dataclass(frozen=True, kw_only=True)
class TokenInfo:
    """What the PKCS#11 module and token tell about themselves."""

    module_path: str
    """The PKCS#11 library loaded."""
    library_description: str
    """The module's own description (CK_INFO)."""
    library_version: str
    """The module's version."""
    token_label: str
    """The token's label."""
    token_model: str
    """The token's model."""
    token_manufacturer: str
    """The token's manufacturer."""
    token_serial: str
    """The token's serial number."""
    private_key_count: int
    """How many private keys the token holds."""


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyStore(Protocol):
    """Key pairs held by a token; every method may raise :class:`HSMUnavailableError`."""

    def generate_key_pair(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef:
        """Generate a signing key pair inside the token (sensitive, never extractable)."""
        ...

    def find_key(self, *, label: str, algorithm: KeyAlgorithm) -> KeyRef | None:
        """The key pair with this label, if there is one."""
        ...

    def public_key(self, ref: KeyRef) -> PublicKey:
        """The public half of a key pair."""
        ...

    def sign(self, ref: KeyRef, message: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm) -> bytes:
        """Sign a message; ECDSA signatures are returned DER-encoded (RFC 3279)."""
        ...

    def sign_digest(
        self, ref: KeyRef, digest: bytes, *, scheme: SignatureScheme, hash_algorithm: HashAlgorithm
    ) -> bytes:
        """Sign a digest computed elsewhere."""
        ...

    def import_hmac_secret(self, *, label: str, secret: bytes) -> SecretRef:
        """Store an HMAC secret on the token as sensitive and never extractable."""
        ...

    def hmac_sha1(self, ref: SecretRef, message: bytes) -> bytes:
        """HMAC-SHA1 of message under the secret (computed inside the token)."""
        ...

    def generate_hmac_secret(self, *, label: str) -> SecretRef:
        """Generate a 256-bit HMAC secret inside the token (sensitive, never extractable: its value
        exists nowhere else)."""
        ...

    def hmac_sha256(self, ref: SecretRef, message: bytes) -> bytes:
        """HMAC-SHA256 of message under the secret (computed inside the token)."""
        ...

    def find_keys(self, *, label: str, algorithm: KeyAlgorithm) -> list[KeyRef]:
        """Every key pair with this label (more than one when a label was reused), by CKA_ID."""
        ...

    def destroy_secret(self, ref: SecretRef) -> None:
        """Delete an HMAC secret from the token (no error when it is already gone)."""
        ...

    def destroy_key_pair(self, ref: KeyRef) -> None:
        """Remove both halves of a key pair (used to undo a failed issuance)."""
        ...

    def list_private_keys(self) -> list[KeyInfo]:
        """Every private key on the token, with its protection attributes."""
        ...

    def token_info(self) -> TokenInfo:
        """Module and token description."""
        ...

    def ping(self) -> None:
        """Raise :class:`HSMUnavailableError` unless the token is there right now (a real check,
        not cached state); while the keystore is down it probes the token (at most once a second)."""
        ...

    @property
    def available(self) -> bool:
        """False while the keystore is down after an HSM error (cached state: for choosing a
        path, never for readiness)."""
        ...

    def probe(self) -> bool:
        """While down, try the token again when a probe is due (at most once a second); True when
        the keystore is up afterwards."""
        ...

    def held(self, *, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the HSM across several calls; with ``wait=False``, yield False at once (holding
        nothing) when another thread is using it."""
        ...

    def close(self) -> None:
        """Log out and release the module."""
        ...
