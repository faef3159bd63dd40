"""CAdES-B-B detached CMS SignedData (RFC 5652, ETSI EN 319 122-1) with the key in the HSM.

The signer's key signs, through the keystore, the DER signed attributes contentType (id-data),
messageDigest, signingTime (optional) and signingCertificateV2 (ESSCertIDv2 with issuerSerial).
The content is never embedded: :func:`sign_detached` hashes it chunk by chunk, :func:`sign_digest`
takes a digest computed by the client. The SignerInfo names the signer by issuerAndSerialNumber,
and every SET OF is emitted in DER order (sorted encodings), which strict decoders check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.errors import InvalidInputError
from govsign.keystore.api import HashAlgorithm, KeyRef, KeyStore, SignatureScheme

#: Digest algorithms accepted for content and signed attributes (asn1crypto names).
DIGEST_ALGORITHMS: dict[str, HashAlgorithm] = {algorithm.value: algorithm for algorithm in HashAlgorithm}

_UTC_TIME_FIRST = dt.datetime(1950, 1, 1, tzinfo=dt.UTC)
_UTC_TIME_END = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, kw_only=True)
class SigningCredential:
    """A signer: its key on the token, its certificate and the chain above it."""

    key: KeyRef
    """The signer's key pair on the token."""
    certificate_der: bytes
    """The signer's certificate (DER)."""
    chain_der: tuple[bytes, ...] = ()
    """Issuing CA and root certificates (DER), nearest first."""


@dataclass(frozen=True, kw_only=True)
class CMSSignatureSpec:
    """How a CMS signature is made."""

    digest_algorithm: str = "sha256"
    """Digest of the content and of the signed attributes (sha256, sha384, sha512)."""
    include_chain: bool = True
    """Put the chain into SignedData.certificates after the signer's certificate."""
    signing_time: bool = True
    """Add the signingTime signed attribute, from the clock."""


def hash_algorithm(name: str) -> HashAlgorithm:
    """The HashAlgorithm of an asn1crypto digest name; InvalidInputError for an unknown one."""
    algorithm = DIGEST_ALGORITHMS.get(name.lower()) if isinstance(name, str) else None
    if algorithm is None:
        accepted = ", ".join(DIGEST_ALGORITHMS)
        raise InvalidInputError(f"The digest algorithm {name!r} is not supported; use one of {accepted}.")
    return algorithm


def _checked_digest(digest: bytes, digest_algorithm: str) -> tuple[bytes, HashAlgorithm]:
    algorithm = hash_algorithm(digest_algorithm)
    if not isinstance(digest, bytes | bytearray) or len(digest) != algorithm.digest_size:
        raise InvalidInputError(
            f"A {algorithm.value} digest is {algorithm.digest_size} bytes long, and this one is not."
        )
    return bytes(digest), algorithm


def _signing_time(moment: dt.datetime) -> cms.Time:
    """UTCTime for 1950 to 2049, GeneralizedTime otherwise (RFC 5652 section 11.3)."""
    if moment.tzinfo is None:
        raise ValueError("the clock must give aware datetimes")
    moment = moment.astimezone(dt.UTC).replace(microsecond=0)
    if _UTC_TIME_FIRST <= moment < _UTC_TIME_END:
        return cms.Time(name="utc_time", value=moment)
    return cms.Time(name="generalized_time", value=moment)


def _signing_certificate_v2(certificate_der: bytes, certificate: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    """ESSCertIDv2 of the signer: SHA-256 (the default, so omitted) and issuerSerial."""
    tbs = certificate["tbs_certificate"]
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(certificate_der).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName(name="directory_name", value=tbs["issuer"])],
                        "serial_number": tbs["serial_number"].native,
                    },
                }
            ]
        }
    )


def _load_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - force a full parse
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise InvalidInputError("A certificate of the signing credential is not DER X.509.") from None
    return certificate


def _signature_algorithm(key: KeyRef, algorithm: HashAlgorithm) -> str:
    """sha256_rsa (sha256WithRSAEncryption) or sha256_ecdsa (ecdsa-with-SHA256) and so on."""
    return f"{algorithm.value}_{'rsa' if key.algorithm.is_rsa else 'ecdsa'}"


def raw_signature(digest: bytes, digest_algorithm: str, credential: SigningCredential, keystore: KeyStore) -> bytes:
    """The bare signature over a digest: PKCS#1 v1.5 (DigestInfo) for RSA, DER ECDSA for EC."""
    digest, algorithm = _checked_digest(digest, digest_algorithm)
    key = credential.key
    scheme = SignatureScheme.RSA_PKCS1V15 if key.algorithm.is_rsa else SignatureScheme.ECDSA
    return keystore.sign_digest(key, digest, scheme=scheme, hash_algorithm=algorithm)


def _signed_data(
    digest: bytes,
    algorithm: HashAlgorithm,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec,
) -> bytes:
    certificate = _load_certificate(credential.certificate_der)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [_signing_certificate_v2(credential.certificate_der, certificate)],
            }
        ),
    ]
    if spec.signing_time:
        attributes.append(cms.CMSAttribute({"type": "signing_time", "values": [_signing_time(clock.now())]}))
    signed_attrs_der = bytes(cms.CMSAttributes(attributes).dump(force=True))  # SET OF: sorted on dump
    key = credential.key
    scheme = SignatureScheme.RSA_PKCS1V15 if key.algorithm.is_rsa else SignatureScheme.ECDSA
    signature = keystore.sign(key, signed_attrs_der, scheme=scheme, hash_algorithm=algorithm)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value=cms.IssuerAndSerialNumber(
                    {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
                ),
            ),
            "digest_algorithm": {"algorithm": algorithm.value},
            "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": _signature_algorithm(key, algorithm)}),
            "signature": signature,
        }
    )
    certificates = [cms.CertificateChoices(name="certificate", value=certificate)]
    if spec.include_chain:
        seen = {credential.certificate_der}
        for der in credential.chain_der:
            if der not in seen:
                seen.add(der)
                certificates.append(cms.CertificateChoices(name="certificate", value=_load_certificate(der)))
    signed_data: dict[str, Any] = {
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": algorithm.value})],
        "encap_content_info": {"content_type": "data"},
        "certificates": certificates,
        "signer_infos": [signer_info],
    }
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
    return bytes(content_info.dump())


def sign_detached(
    content: bytes | Iterable[bytes],
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
) -> bytes:
    """A CAdES-B-B detached SignedData (DER) over content given whole or as chunks."""
    spec = spec or CMSSignatureSpec()
    algorithm = hash_algorithm(spec.digest_algorithm)
    hasher = hashlib.new(algorithm.value)
    if isinstance(content, bytes | bytearray | memoryview):
        hasher.update(content)
    else:
        for chunk in content:
            hasher.update(chunk)
    return _signed_data(hasher.digest(), algorithm, credential, keystore, clock, spec)


def sign_digest(
    digest: bytes,
    digest_algorithm: str,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
) -> bytes:
    """A CAdES-B-B detached SignedData (DER) around a digest the client computed."""
    digest, algorithm = _checked_digest(digest, digest_algorithm)
    return _signed_data(digest, algorithm, credential, keystore, clock, spec or CMSSignatureSpec())


def sign_digests(
    digests: Sequence[bytes],
    digest_algorithm: str,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
) -> list[bytes]:
    """:func:`sign_digest` for each digest; all are checked before any is signed."""
    checked = [_checked_digest(digest, digest_algorithm) for digest in digests]
    spec = spec or CMSSignatureSpec()
    return [_signed_data(digest, algorithm, credential, keystore, clock, spec) for digest, algorithm in checked]
