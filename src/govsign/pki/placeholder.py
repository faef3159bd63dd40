"""A stand-in signer that records what would be signed and returns a dummy signature.

cryptography's builders need a private key to produce a certificate or CRL. To lint the exact
to-be-signed structure before the HSM signs it, we build it once with this placeholder, which
holds no key material and whose "signature" is zeros (RSA) or (r=1, s=1) (ECDSA).
"""

from __future__ import annotations

from typing import Any, NoReturn

from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from typing_extensions import Buffer

from govsign.errors import InternalError
from govsign.keystore.api import PublicKey
from govsign.keystore.cryptography_keys import PublicHalfKey


def _placeholder_signature(public_key: PublicKey) -> bytes:
    if isinstance(public_key, rsa.RSAPublicKey):
        return b"\x00" * ((public_key.key_size + 7) // 8)
    return utils.encode_dss_signature(1, 1)


_NO_KEY = "The placeholder signer has no key."


class PlaceholderRSAKey(PublicHalfKey[rsa.RSAPublicKey], rsa.RSAPrivateKey):
    """Records what would be signed and returns a dummy signature; holds no key material."""

    no_private_material = _NO_KEY

    def __init__(self, public_key: rsa.RSAPublicKey) -> None:
        self._public = public_key
        self.signed: bytes | None = None

    def sign(self, data: bytes, padding: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        self.signed = data
        return _placeholder_signature(self._public)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        _refuse()


class PlaceholderECKey(PublicHalfKey[ec.EllipticCurvePublicKey], ec.EllipticCurvePrivateKey):
    """The EC counterpart of :class:`PlaceholderRSAKey`."""

    no_private_material = _NO_KEY

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._public = public_key
        self.signed: bytes | None = None

    def sign(self, data: Buffer, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        self.signed = bytes(data)
        return _placeholder_signature(self._public)

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        _refuse()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve


def _refuse() -> NoReturn:
    raise InternalError(_NO_KEY)


def placeholder_key(public_key: PublicKey) -> PlaceholderRSAKey | PlaceholderECKey:
    """A placeholder signer shaped like the key whose public half is given."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return PlaceholderRSAKey(public_key)
    return PlaceholderECKey(public_key)
