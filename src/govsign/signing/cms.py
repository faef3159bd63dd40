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
from typing import Literal, get_args

from asn1crypto import algos, cms, core, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.der import der_sorted, tlv
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
#: (``TimeStampService.answer`` in the service).
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
    signature_scheme: SignatureScheme | None = None
    """How the key signs: RSA_PSS or RSA_PKCS1V15 for an RSA key; None is the key's default
    (PKCS#1 v1.5 for RSA, ECDSA for EC)."""


def signature_scheme(key: KeyRef, requested: SignatureScheme | None = None) -> SignatureScheme:
    """The scheme a key signs with: ``requested`` when it fits the key (InvalidInputError when it
    does not), else the key's default (PKCS#1 v1.5 for RSA, ECDSA for EC)."""
    if requested is None:
        return key.algorithm.default_scheme
    if key.algorithm.is_rsa == (requested is SignatureScheme.ECDSA):
        family = "an RSA" if key.algorithm.is_rsa else "an EC"
        kind = "RSA" if requested is not SignatureScheme.ECDSA else "EC"
        raise InvalidInputError(
            f"The signature algorithm {requested.value} is for {kind} keys, and the signing credential has "
            f"{family} key ({key.algorithm.value}); leave signature_algorithm out for it."
        )
    return requested


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


def _signing_time_der(moment: dt.datetime) -> bytes:
    """DER UTCTime for 1950 to 2049, GeneralizedTime otherwise (RFC 5652 section 11.3), whole seconds."""
    if moment.tzinfo is None:
        raise ValueError("the clock must give aware datetimes")
    moment = moment.astimezone(dt.UTC)
    if _UTC_TIME_FIRST <= moment < _UTC_TIME_END:
        return tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return tlv(0x18, f"{moment.year:04d}{moment.strftime('%m%d%H%M%SZ')}".encode("ascii"))


# -- DER assembled from pieces ------------------------------------------------------------------
# A signature's SignedData is spliced together from DER computed once per certificate and algorithm
# (certificates, sid, signingCertificateV2, algorithm identifiers); per signature only the digest,
# the time, the signature value and the time-stamp token are new. Building it as asn1crypto objects
# instead re-serialises the embedded certificates on every signature, work that splicing does once.


def _retag(der: bytes, tag: int) -> bytes:
    """The same element with another one-byte tag (an IMPLICIT tag of a constructed type)."""
    return bytes((tag,)) + der[1:]


def _oid(dotted: str) -> bytes:
    # core.ObjectIdentifier has no name map: instantiating a mapped class (CMSAttributeType...)
    # at import would freeze its reverse map before pyHanko registers its own attribute types.
    return bytes(core.ObjectIdentifier(dotted).dump())


_OID_DATA = _oid("1.2.840.113549.1.7.1")
_OID_MESSAGE_DIGEST = _oid("1.2.840.113549.1.9.4")
_OID_SIGNING_TIME = _oid("1.2.840.113549.1.9.5")
_OID_SIGNING_CERTIFICATE_V2 = _oid("1.2.840.113549.1.9.16.2.47")
_OID_SIGNATURE_TIME_STAMP = _oid("1.2.840.113549.1.9.16.2.14")
_ATTRIBUTE_CONTENT_TYPE_DATA = tlv(0x30, _oid("1.2.840.113549.1.9.3"), tlv(0x31, _OID_DATA))
_CONTENT_INFO_SIGNED_DATA = _oid("1.2.840.113549.1.7.2")
_ENCAP_CONTENT_DATA = tlv(0x30, _OID_DATA)
_VERSION_DER = {"v1": b"\x02\x01\x01", "v5": b"\x02\x01\x05"}


@functools.lru_cache(maxsize=32)
def _digest_algorithm_der(algorithm: HashAlgorithm) -> bytes:
    return bytes(algos.DigestAlgorithm({"algorithm": algorithm.value}).dump())


@functools.lru_cache(maxsize=32)
def signature_algorithm_der(scheme: SignatureScheme, algorithm: HashAlgorithm) -> bytes:
    """The SignerInfo signatureAlgorithm: sha256WithRSAEncryption, ecdsa-with-SHA256 (and so on),
    or id-RSASSA-PSS with RSASSA-PSS-params (RFC 4055): the hash, MGF1 with the same hash, a salt
    as long as the hash and trailerField 1 (the DEFAULT, so not encoded)."""
    if scheme is SignatureScheme.RSA_PSS:
        parameters = algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": algorithm.value},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": algorithm.value}},
                "salt_length": algorithm.digest_size,
                "trailer_field": "trailer_field_bc",
            }
        )
        return bytes(algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": parameters}).dump())
    family = "ecdsa" if scheme is SignatureScheme.ECDSA else "rsa"
    return bytes(algos.SignedDigestAlgorithm({"algorithm": f"{algorithm.value}_{family}"}).dump())


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
    signing_certificate_v2_attribute_der: bytes
    """The signingCertificateV2 signed attribute (Attribute with one SigningCertificateV2 value)."""


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
    """The signer's sid and signingCertificateV2 attribute, cached per certificate (kept as DER:
    asn1crypto objects are mutable and must not be shared between signatures or threads)."""
    certificate = _load_certificate(certificate_der)
    sid = cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number})
    value = bytes(_signing_certificate_v2(certificate_der, certificate).dump())
    return _SignerParts(
        issuer_and_serial_der=bytes(sid.dump()),
        signing_certificate_v2_attribute_der=tlv(0x30, _OID_SIGNING_CERTIFICATE_V2, tlv(0x31, value)),
    )


@functools.lru_cache(maxsize=256)
def _certificate_set(ders: tuple[bytes, ...]) -> bytes:
    """SignedData.certificates ([0] IMPLICIT CertificateSet, DER) of checked certificates, encoded
    once per credential: a SET OF in DER order."""
    return tlv(0xA0, *der_sorted(_checked_certificate(der) for der in ders))


def signed_attributes_der(digest: bytes, certificate_der: bytes, signing_time: dt.datetime | None = None) -> bytes:
    """The DER SignedAttributes (a SET OF, tag 0x31: what the key signs) of a CAdES or PAdES
    signature: contentType id-data, messageDigest, signingCertificateV2 of the signer's
    certificate and, when given, signingTime (PAdES has none: its time is the signature
    dictionary's /M)."""
    attributes = [
        _ATTRIBUTE_CONTENT_TYPE_DATA,
        tlv(0x30, _OID_MESSAGE_DIGEST, tlv(0x31, tlv(0x04, digest))),
        _signer_parts(certificate_der).signing_certificate_v2_attribute_der,
    ]
    if signing_time is not None:
        attributes.append(tlv(0x30, _OID_SIGNING_TIME, tlv(0x31, _signing_time_der(signing_time))))
    return tlv(0x31, *der_sorted(attributes))


def signature_time_stamp_attribute_der(token_der: bytes) -> bytes:
    """The unsigned attribute id-aa-signatureTimeStampToken holding one TimeStampToken (DER)."""
    return tlv(0x30, _OID_SIGNATURE_TIME_STAMP, tlv(0x31, token_der))


def signed_data_der(
    credential: SigningCredential,
    algorithm: HashAlgorithm,
    signed_attrs_der: bytes,
    signature: bytes,
    *,
    certificates: Sequence[bytes],
    unsigned_attributes: Sequence[bytes] = (),
    crls_der: bytes | None = None,
    version: Literal["v1", "v5"] = "v1",
    scheme: SignatureScheme | None = None,
) -> bytes:
    """A ContentInfo with a detached SignedData (DER) for one SignerInfo (issuerAndSerialNumber),
    spliced from DER pieces: ``signed_attrs_der`` as made by :func:`signed_attributes_der`,
    ``certificates`` (DER, checked and encoded once per set), ``unsigned_attributes`` (DER
    Attributes), ``crls_der`` a complete [1] IMPLICIT RevocationInfoChoices; ``scheme`` is the
    one ``signature`` was made with (None: the key's default)."""
    digest_algorithm = _digest_algorithm_der(algorithm)
    signer_info = [
        _VERSION_DER["v1"],
        _signer_parts(credential.certificate_der).issuer_and_serial_der,
        digest_algorithm,
        _retag(signed_attrs_der, 0xA0),
        signature_algorithm_der(signature_scheme(credential.key, scheme), algorithm),
        tlv(0x04, signature),
    ]
    if unsigned_attributes:
        signer_info.append(tlv(0xA1, *der_sorted(unsigned_attributes)))
    signed_data = [
        _VERSION_DER[version],
        tlv(0x31, digest_algorithm),
        _ENCAP_CONTENT_DATA,
        _certificate_set(_unique(certificates)),
    ]
    if crls_der is not None:
        signed_data.append(crls_der)
    signed_data.append(tlv(0x31, tlv(0x30, *signer_info)))
    return tlv(0x30, _CONTENT_INFO_SIGNED_DATA, tlv(0xA0, tlv(0x30, *signed_data)))


def raw_signature(
    digest: bytes,
    digest_algorithm: str,
    credential: SigningCredential,
    keystore: KeyStore,
    *,
    scheme: SignatureScheme | None = None,
) -> bytes:
    """The bare signature over a digest: PKCS#1 v1.5 (DigestInfo) or, with ``scheme`` RSA_PSS,
    RSASSA-PSS (MGF1 with the digest's hash, a salt as long as the digest) for RSA; DER ECDSA
    for EC."""
    digest, algorithm = _checked_digest(digest, digest_algorithm)
    key = credential.key
    chosen = signature_scheme(key, scheme)
    return keystore.sign_digest(key, digest, scheme=chosen, hash_algorithm=algorithm)


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


def _timestamp_token(signature: bytes, timestamper: TimeStampFunction) -> bytes:
    """An RFC 3161 TimeStampToken (DER) over the signature value (SHA-256 imprint, nonce, certReq);
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
        # the token's bytes as received (from a fresh parse, so that nothing is re-encoded)
        token_der = bytes(tsp.TimeStampResp.load(reply_der)["time_stamp_token"].dump())
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
    return token_der


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
    signed_attrs_der = signed_attributes_der(
        digest, credential.certificate_der, clock.now() if spec.signing_time else None
    )
    key = credential.key
    scheme = signature_scheme(key, spec.signature_scheme)
    signature = keystore.sign(key, signed_attrs_der, scheme=scheme, hash_algorithm=algorithm)
    unsigned: list[bytes] = []
    if spec.level != "B-B":
        if timestamper is None:  # refused by _level_inputs already
            raise InvalidInputError(f"A {spec.level} signature needs a time-stamping service, and none was given.")
        unsigned.append(signature_time_stamp_attribute_der(_timestamp_token(signature, timestamper)))
    certificate_ders = [credential.certificate_der]
    if spec.include_chain:
        certificate_ders.extend(credential.chain_der)
    crls_der: bytes | None = None
    version: Literal["v1", "v5"] = "v1"
    if validation is not None:
        certificate_ders.extend(validation.certificates)
        crls_der = _revocation_choices_der(validation)
        if validation.ocsp_responses:
            version = "v5"  # an `other` RevocationInfoChoice (RFC 5652 section 5.1)
    return signed_data_der(
        credential,
        algorithm,
        signed_attrs_der,
        signature,
        certificates=certificate_ders,
        unsigned_attributes=unsigned,
        crls_der=crls_der,
        version=version,
        scheme=scheme,
    )


def _revocation_choices_der(validation: _Validation) -> bytes | None:
    """SignedData.crls ([1] IMPLICIT RevocationInfoChoices, a SET OF in DER order): the CRLs as
    ``crl`` and the OCSP responses as ``other`` (id-ri-ocsp-response) choices."""
    choices = list(validation.crls)  # a CertificateList is the `crl` choice as it is
    choices.extend(
        bytes(
            cms.RevocationInfoChoice(
                name="other",
                value=cms.OtherRevocationInfoFormat(
                    {"other_rev_info_format": "ocsp_response", "other_rev_info": asn1_ocsp.OCSPResponse.load(der)}
                ),
            ).dump()
        )
        for der in validation.ocsp_responses
    )
    if not choices:
        return None
    return tlv(0xA1, *der_sorted(choices))


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
    signature_scheme(credential.key, spec.signature_scheme)  # a scheme that does not fit: before hashing
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
