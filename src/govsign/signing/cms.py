"""CAdES detached CMS SignedData (RFC 5652, ETSI EN 319 122-1) with the key in the HSM.

The signer's key signs, through the keystore, the DER signed attributes contentType (id-data),
messageDigest, signingTime (optional) and signingCertificateV2 (ESSCertIDv2 with issuerSerial).
The content is never embedded: :func:`sign_detached` hashes it chunk by chunk, :func:`sign_digest`
takes a digest computed by the client. The SignerInfo names the signer by issuerAndSerialNumber,
and every SET OF is emitted in DER order (sorted encodings), which strict decoders check.

Levels (:attr:`CMSSignatureSpec.level`):

* ``B-B``: the signed attributes above, nothing more.
* ``B-T``: plus the unsigned attribute signature-time-stamp (id-aa-signatureTimeStampToken), an
  RFC 3161 token over the SignerInfo signature value, asked of the given ``timestamper``
  (DER TimeStampReq in, DER TimeStampResp out; SHA-256 imprint, a nonce, certReq true).
* ``B-LT``: B-T plus the validation data in the SignedData itself: the evidence's certificates in
  SignedData.certificates, its CRLs as ``crl`` and its OCSP responses as ``other``
  (id-ri-ocsp-response) RevocationInfoChoices in SignedData.crls (SignedData version 5 then,
  RFC 5652 section 5.1). The core embeds what it is given and never fetches anything.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from asn1crypto import algos, cms, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.errors import InvalidInputError, UnavailableError
from govsign.keystore.api import HashAlgorithm, KeyRef, KeyStore, SignatureScheme
from govsign.signing.evidence import RevocationEvidence

#: Digest algorithms accepted for content and signed attributes (asn1crypto names).
DIGEST_ALGORITHMS: dict[str, HashAlgorithm] = {algorithm.value: algorithm for algorithm in HashAlgorithm}

_UTC_TIME_FIRST = dt.datetime(1950, 1, 1, tzinfo=dt.UTC)
_UTC_TIME_END = dt.datetime(2050, 1, 1, tzinfo=dt.UTC)

#: A CAdES baseline level this module makes.
CAdESLevel = Literal["B-B", "B-T", "B-LT"]
CADES_LEVELS: tuple[str, ...] = get_args(CAdESLevel)

#: An RFC 3161 time-stamping service: DER TimeStampReq in, DER TimeStampResp out
#: (``Runtime.answer_timestamp`` in the service).
TimeStampFunction = Callable[[bytes], bytes]

#: The digest of the signature-time-stamp's message imprint.
_TIMESTAMP_DIGEST = "sha256"


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
    level: CAdESLevel = "B-B"
    """CAdES baseline level: B-B, B-T (signature time-stamp) or B-LT (B-T plus validation data)."""


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


_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)


@dataclass(frozen=True, kw_only=True)
class _SignerParts:
    """What a signature needs of the signer's certificate, as DER, computed once per certificate."""

    issuer_and_serial_der: bytes
    """The SignerInfo sid (IssuerAndSerialNumber)."""
    signing_certificate_v2_der: bytes
    """The signingCertificateV2 attribute value (SigningCertificateV2)."""


@functools.lru_cache(maxsize=1024)
def _checked_certificate(der: bytes) -> bytes:
    """The DER of a certificate that parses fully and strictly (InvalidInputError otherwise);
    cached, so a credential's certificates are parsed once per process, not once per signature."""
    _load_certificate(der)
    return der


def _load_certificate(der: bytes) -> asn1_x509.Certificate:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        certificate.native  # noqa: B018 - force a full parse
    except _PARSE_ERRORS:
        raise InvalidInputError("A certificate of the signing credential is not DER X.509.") from None
    return certificate


@functools.lru_cache(maxsize=256)
def _signer_parts(certificate_der: bytes) -> _SignerParts:
    """The signer's sid and ESSCertIDv2, cached per certificate (kept as DER: asn1crypto objects
    are mutable and must not be shared between signatures or threads)."""
    certificate = _load_certificate(certificate_der)
    sid = cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number})
    return _SignerParts(
        issuer_and_serial_der=bytes(sid.dump()),
        signing_certificate_v2_der=bytes(_signing_certificate_v2(certificate_der, certificate).dump()),
    )


@functools.lru_cache(maxsize=256)
def _certificate_set(ders: tuple[bytes, ...]) -> bytes:
    """SignedData.certificates (DER) of checked certificates, encoded once per credential: a SET OF,
    which asn1crypto emits in DER order (sorted encodings)."""
    return bytes(
        cms.CertificateSet(
            [
                cms.CertificateChoices(name="certificate", value=asn1_x509.Certificate.load(_checked_certificate(der)))
                for der in ders
            ]
        ).dump()
    )


def _signature_algorithm(key: KeyRef, algorithm: HashAlgorithm) -> str:
    """sha256_rsa (sha256WithRSAEncryption) or sha256_ecdsa (ecdsa-with-SHA256) and so on."""
    return f"{algorithm.value}_{'rsa' if key.algorithm.is_rsa else 'ecdsa'}"


def raw_signature(digest: bytes, digest_algorithm: str, credential: SigningCredential, keystore: KeyStore) -> bytes:
    """The bare signature over a digest: PKCS#1 v1.5 (DigestInfo) for RSA, DER ECDSA for EC."""
    digest, algorithm = _checked_digest(digest, digest_algorithm)
    key = credential.key
    scheme = SignatureScheme.RSA_PKCS1V15 if key.algorithm.is_rsa else SignatureScheme.ECDSA
    return keystore.sign_digest(key, digest, scheme=scheme, hash_algorithm=algorithm)


@dataclass(frozen=True, kw_only=True)
class _Validation:
    """Checked B-LT validation data, ready to embed."""

    certificates: tuple[bytes, ...]
    """Extra certificates (DER), each checked."""
    crls: tuple[bytes, ...]
    """CRLs (DER CertificateList), each checked."""
    ocsp_responses: tuple[bytes, ...]
    """Successful OCSP responses (DER OCSPResponse), each checked."""


def _level_inputs(
    spec: CMSSignatureSpec, timestamper: TimeStampFunction | None, evidence: RevocationEvidence | None
) -> _Validation | None:
    """Refuse a level whose inputs are missing, before anything is signed; the checked B-LT data."""
    if spec.level not in CADES_LEVELS:
        raise InvalidInputError(
            f"The CAdES level {spec.level!r} is not supported; use one of {', '.join(CADES_LEVELS)}."
        )
    if spec.level == "B-B":
        return None
    if timestamper is None:
        raise InvalidInputError(f"A {spec.level} signature needs a time-stamping service, and none was given.")
    if spec.level == "B-T":
        return None
    if evidence is None or evidence.is_empty:
        raise InvalidInputError(
            "A B-LT signature needs revocation evidence (OCSP responses or CRLs), and none was given."
        )
    return _checked_evidence(evidence)


def _unique(items: Iterable[bytes]) -> tuple[bytes, ...]:
    return tuple(dict.fromkeys(items))


def _checked_evidence(evidence: RevocationEvidence) -> _Validation:
    for der in evidence.crls:
        try:
            asn1_crl.CertificateList.load(der, strict=True).native  # noqa: B018 - force a full parse
        except _PARSE_ERRORS:
            raise InvalidInputError("A CRL of the revocation evidence is not a DER CertificateList.") from None
    for der in evidence.ocsp_responses:
        try:
            response = asn1_ocsp.OCSPResponse.load(der, strict=True)
            response.native  # noqa: B018 - force a full parse
        except _PARSE_ERRORS:
            raise InvalidInputError("An OCSP response of the revocation evidence is not a DER OCSPResponse.") from None
        if response["response_status"].native != "successful":
            raise InvalidInputError("An OCSP response of the revocation evidence is not a successful one.")
    for der in evidence.certificates:
        try:
            _checked_certificate(der)
        except InvalidInputError:
            raise InvalidInputError("A certificate of the revocation evidence is not DER X.509.") from None
    return _Validation(
        certificates=_unique(evidence.certificates),
        crls=_unique(evidence.crls),
        ocsp_responses=_unique(evidence.ocsp_responses),
    )


def _timestamp_token(signature: bytes, timestamper: TimeStampFunction) -> cms.ContentInfo:
    """An RFC 3161 TimeStampToken over the signature value (SHA-256 imprint, nonce, certReq);
    UnavailableError when the service does not grant one that matches the request."""
    imprint = hashlib.new(_TIMESTAMP_DIGEST, signature).digest()
    nonce = secrets.randbits(64) | 1 << 63  # positive, 8 bytes of entropy
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": _TIMESTAMP_DIGEST}, "hashed_message": imprint},
            "nonce": nonce,
            "cert_req": True,
        }
    )
    reply_der = timestamper(bytes(request.dump()))
    try:
        reply = tsp.TimeStampResp.load(reply_der, strict=True)
        status = reply["status"]["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise UnavailableError(
                f"The time-stamping service refused the signature time-stamp ({status}); try again later."
            )
        token = reply["time_stamp_token"]
        signed_data = token["content"]
        encapsulated = signed_data["encap_content_info"]
        tst_info = encapsulated["content"].parsed
        granted = (
            token["content_type"].native == "signed_data"
            and encapsulated["content_type"].native == "tst_info"
            and isinstance(tst_info, tsp.TSTInfo)
            and tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native == _TIMESTAMP_DIGEST
            and tst_info["message_imprint"]["hashed_message"].native == imprint
            and tst_info["nonce"].native == nonce
        )
        token_der = bytes(token.dump())
    except UnavailableError:
        raise
    except _PARSE_ERRORS:
        raise UnavailableError(
            "The time-stamping service answered with something that is not a time-stamp response; try again later."
        ) from None
    if not granted:
        raise UnavailableError(
            "The time-stamping service answered with a token that does not match the request; try again later."
        )
    return cms.ContentInfo.load(token_der)


def _signed_data(
    digest: bytes,
    algorithm: HashAlgorithm,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec,
    timestamper: TimeStampFunction | None = None,
    validation: _Validation | None = None,
) -> bytes:
    parts = _signer_parts(credential.certificate_der)
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [tsp.SigningCertificateV2.load(parts.signing_certificate_v2_der)],
            }
        ),
    ]
    if spec.signing_time:
        attributes.append(cms.CMSAttribute({"type": "signing_time", "values": [_signing_time(clock.now())]}))
    # A new SET OF is encoded in DER order (sorted) on its first dump; dump(force=True) would re-encode
    # the parsed SigningCertificateV2 too, which costs tens of milliseconds once pyHanko is imported.
    signed_attrs_der = bytes(cms.CMSAttributes(attributes).dump())
    key = credential.key
    scheme = SignatureScheme.RSA_PKCS1V15 if key.algorithm.is_rsa else SignatureScheme.ECDSA
    signature = keystore.sign(key, signed_attrs_der, scheme=scheme, hash_algorithm=algorithm)
    signer_info_fields: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            name="issuer_and_serial_number", value=cms.IssuerAndSerialNumber.load(parts.issuer_and_serial_der)
        ),
        "digest_algorithm": {"algorithm": algorithm.value},
        "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": _signature_algorithm(key, algorithm)}),
        "signature": signature,
    }
    if spec.level != "B-B":
        if timestamper is None:  # refused by _level_inputs already
            raise InvalidInputError(f"A {spec.level} signature needs a time-stamping service, and none was given.")
        token = _timestamp_token(signature, timestamper)
        # SET OF Attribute, emitted in DER order on dump
        signer_info_fields["unsigned_attrs"] = cms.CMSAttributes(
            [cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]})]
        )
    certificate_ders = [credential.certificate_der]
    if spec.include_chain:
        certificate_ders.extend(credential.chain_der)
    if validation is not None:
        certificate_ders.extend(validation.certificates)
    certificates = cms.CertificateSet.load(_certificate_set(_unique(certificate_ders)))
    signed_data: dict[str, Any] = {
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": algorithm.value})],
        "encap_content_info": {"content_type": "data"},
        "certificates": certificates,
        "signer_infos": [cms.SignerInfo(signer_info_fields)],
    }
    if validation is not None:
        revocation = [
            cms.RevocationInfoChoice(name="crl", value=asn1_crl.CertificateList.load(der)) for der in validation.crls
        ]
        revocation.extend(
            cms.RevocationInfoChoice(
                name="other",
                value=cms.OtherRevocationInfoFormat(
                    {"other_rev_info_format": "ocsp_response", "other_rev_info": asn1_ocsp.OCSPResponse.load(der)}
                ),
            )
            for der in validation.ocsp_responses
        )
        signed_data["crls"] = revocation  # RevocationInfoChoices: a SET OF, emitted in DER order
        if validation.ocsp_responses:
            signed_data["version"] = "v5"  # an `other` RevocationInfoChoice (RFC 5652 section 5.1)
    content_info = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
    return bytes(content_info.dump())


def sign_detached(
    content: bytes | Iterable[bytes],
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
    *,
    timestamper: TimeStampFunction | None = None,
    evidence: RevocationEvidence | None = None,
) -> bytes:
    """A CAdES detached SignedData (DER) over content given whole or as chunks, at ``spec.level``:
    B-T needs ``timestamper``, B-LT also ``evidence`` (InvalidInputError without them)."""
    spec = spec or CMSSignatureSpec()
    algorithm = hash_algorithm(spec.digest_algorithm)
    validation = _level_inputs(spec, timestamper, evidence)
    hasher = hashlib.new(algorithm.value)
    if isinstance(content, bytes | bytearray | memoryview):
        hasher.update(content)
    else:
        for chunk in content:
            hasher.update(chunk)
    return _signed_data(hasher.digest(), algorithm, credential, keystore, clock, spec, timestamper, validation)


def sign_digest(
    digest: bytes,
    digest_algorithm: str,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
    *,
    timestamper: TimeStampFunction | None = None,
    evidence: RevocationEvidence | None = None,
) -> bytes:
    """A CAdES detached SignedData (DER) around a digest the client computed, at ``spec.level``
    (see :func:`sign_detached`)."""
    digest, algorithm = _checked_digest(digest, digest_algorithm)
    spec = spec or CMSSignatureSpec()
    validation = _level_inputs(spec, timestamper, evidence)
    return _signed_data(digest, algorithm, credential, keystore, clock, spec, timestamper, validation)


def sign_digests(
    digests: Sequence[bytes],
    digest_algorithm: str,
    credential: SigningCredential,
    keystore: KeyStore,
    clock: Clock,
    spec: CMSSignatureSpec | None = None,
    *,
    timestamper: TimeStampFunction | None = None,
    evidence: RevocationEvidence | None = None,
) -> list[bytes]:
    """:func:`sign_digest` for each digest; all (and the level's inputs) are checked before any
    is signed, and each signature gets its own time-stamp at B-T and B-LT."""
    checked = [_checked_digest(digest, digest_algorithm) for digest in digests]
    spec = spec or CMSSignatureSpec()
    validation = _level_inputs(spec, timestamper, evidence)
    return [
        _signed_data(digest, algorithm, credential, keystore, clock, spec, timestamper, validation)
        for digest, algorithm in checked
    ]
