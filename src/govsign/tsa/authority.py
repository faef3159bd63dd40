"""RFC 3161 Time-Stamping Authority with the TSA key in the HSM.

Ordinary requests are read by a small DER walker (:mod:`govsign.tsa.request`), anything else is
parsed in full with asn1crypto. Replies are TimeStampResp structures whose token is a CMS
SignedData (RFC 5652) over a TSTInfo, signed by the TSA key through the keystore; they are
assembled from DER pieces encoded once per TSA credential and the per-request parts, with no
asn1crypto work per reply, and no shared object mutated (so answering is thread-safe). Every SET
OF is emitted in DER order (sorted encodings), which strict decoders such as rfc3161-client check.

* Granted: policy = the requested one when accepted, else the default; the messageImprint is
  copied; a random 128-bit serial; genTime in whole seconds with the stated accuracy; the nonce
  echoed; the TSA named by its certificate's subject; on certReq the TSA certificate and the CAs
  below the root;
  signed attributes contentType, messageDigest and signingCertificateV2 (ESSCertIDv2).
* Rejection (PKIStatus rejection with PKIFailureInfo): badAlg for a hash algorithm not accepted
  or a digest of the wrong length, unacceptedPolicy, unacceptedExtension, badDataFormat for bytes
  that are not one DER TimeStampReq, badRequest for a nonce over 32 octets and other bad requests, systemFailure when the
  HSM is unavailable or anything unexpected happens. :meth:`TimeStampAuthority.respond` never raises.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.der import der_sorted, generalized_time, integer, tlv
from govsign.errors import GovsignError, HSMUnavailableError
from govsign.keystore.api import KeyRef, KeyStore, SignatureScheme
from govsign.tsa.request import MAX_NONCE_OCTETS, walk_request

log = logging.getLogger(__name__)

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64, "sha224": 28, "sha1": 20}


def random_serial() -> int:
    """A random positive 128-bit serial number (top bit set, so always 16 octets of entropy)."""
    return secrets.randbits(128) | (1 << 127)


@dataclass(frozen=True, kw_only=True)
class TSAPolicy:
    """What the TSA states and what requests it accepts."""

    policy_oid: str
    """The TSA policy placed in TSTInfo when the request names none (or names an unaccepted one)."""
    accuracy_seconds: int = 1
    """Accuracy of genTime, stated in every TSTInfo."""
    accepted_hash_algorithms: tuple[str, ...] = ("sha256", "sha384", "sha512")
    """messageImprint hash algorithms accepted (asn1crypto names)."""
    accepted_policies: tuple[str, ...] = field(default=())
    """reqPolicy values accepted; empty means the default policy only."""

    def __post_init__(self) -> None:
        if not self.accepted_policies:
            object.__setattr__(self, "accepted_policies", (self.policy_oid,))


@dataclass(frozen=True, kw_only=True)
class TSASigner:
    """The TSA's credential: its key in the HSM, its certificate and the chain above it."""

    key: KeyRef
    """The TSA key on the token."""
    certificate_der: bytes
    """The TSA certificate (critical EKU id-kp-timeStamping)."""
    chain_der: tuple[bytes, ...] = ()
    """Issuing CA and root certificates, nearest first (for in-process users and verifiers)."""

    @functools.cached_property
    def asn1_certificate(self) -> asn1_x509.Certificate:
        """The parsed certificate, for readers only: never dump it again or put it into new
        structures that another thread may encode at the same time (asn1crypto objects are not
        thread-safe)."""
        return asn1_x509.Certificate.load(self.certificate_der)

    @functools.cached_property
    def signing_certificate_v2_der(self) -> bytes:
        """ESSCertIDv2 of the TSA certificate, DER: SHA-256 (the default, so omitted) and issuerSerial."""
        tbs = asn1_x509.Certificate.load(self.certificate_der)["tbs_certificate"]  # a private copy
        value = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "cert_hash": hashlib.sha256(self.certificate_der).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName(name="directory_name", value=tbs["issuer"])],
                            "serial_number": tbs["serial_number"].native,
                        },
                    }
                ]
            }
        )
        return bytes(value.dump())


class TimeStampResponse(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """TimeStampResp as RFC 3161 defines it: asn1crypto's own class does not mark the token
    optional, so it can neither build nor read a rejection."""

    _fields = [  # noqa: RUF012 - asn1crypto's class attribute
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


class _RejectedError(Exception):
    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


@dataclass(frozen=True, kw_only=True)
class TimeStampReply:
    """A reply and what metrics need to know of it."""

    der: bytes
    """The DER TimeStampResp."""
    outcome: str
    """granted, or the PKIFailureInfo name of a rejection (bad_alg, system_failure...)."""


@functools.lru_cache(maxsize=256)
def rejection(failure: str, text: str) -> TimeStampReply:
    """A TimeStampResp with PKIStatus rejection, one failure bit and one sentence of text."""
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({failure})}
    )
    return TimeStampReply(der=bytes(TimeStampResponse({"status": status}).dump()), outcome=failure)


class TimeStampAuthority:
    """Answers RFC 3161 time-stamp requests with one TSA credential.

    Every constant part of a reply (TSA name, accuracy, signer identifier, algorithm identifiers,
    signingCertificateV2, certificates) is encoded once here; a reply is then the concatenation
    of those bytes with the per-request ones (message imprint copied from the request, serial,
    genTime, nonce, messageDigest, signature). Nothing shared is mutated after ``__init__``, so
    one instance answers from any number of threads at once.
    """

    def __init__(
        self,
        *,
        keystore: KeyStore,
        clock: Clock,
        signer: TSASigner,
        policy: TSAPolicy,
        serial_source: Callable[[], int] = random_serial,
    ) -> None:
        self._keystore = keystore
        self._clock = clock
        self._signer = signer
        self._policy = policy
        self._serial_source = serial_source
        certificate = asn1_x509.Certificate.load(signer.certificate_der)  # this instance's own copy
        self._not_after: dt.datetime = certificate.not_valid_after
        self._hash = signer.key.algorithm.default_hash
        self._scheme = signer.key.algorithm.default_scheme
        self._hash_new = functools.partial(hashlib.new, self._hash.value)
        signature_algorithm = f"{self._hash.value}_{'rsa' if self._scheme is SignatureScheme.RSA_PKCS1V15 else 'ecdsa'}"
        self._digest_sizes = {
            bytes(algos.DigestAlgorithmId(name).dump()): DIGEST_SIZES.get(name) or hashlib.new(name).digest_size
            for name in policy.accepted_hash_algorithms
        }
        self._policies = {
            bytes(core.ObjectIdentifier(oid).dump()): oid for oid in (policy.policy_oid, *policy.accepted_policies)
        }
        self._default_policy = bytes(core.ObjectIdentifier(policy.policy_oid).dump())
        self._policy_tlvs = {oid: tlv_ for tlv_, oid in self._policies.items()}
        # TSTInfo: version before the policy; accuracy, (ordering FALSE is the default: omitted), tsa name.
        self._tst_version = bytes(core.Integer(1).dump())
        self._tst_accuracy = bytes(tsp.Accuracy({"seconds": policy.accuracy_seconds}).dump())
        tsa_name = asn1_x509.GeneralName(name="directory_name", value=certificate.subject)
        self._tst_tsa = tlv(0xA0, bytes(tsa_name.dump()))  # [0] EXPLICIT GeneralName
        # Signed attributes: contentType and signingCertificateV2 whole, messageDigest but its value.
        self._attr_content_type = bytes(cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump())
        size = hashlib.new(self._hash.value).digest_size
        digest_attr = bytes(cms.CMSAttribute({"type": "message_digest", "values": [b"\0" * size]}).dump())
        self._attr_digest_prefix = digest_attr[:-size]
        scv2 = tsp.SigningCertificateV2.load(signer.signing_certificate_v2_der)
        self._attr_signing_certificate = bytes(
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [scv2]}).dump()
        )
        # SignerInfo and SignedData around them.
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value=cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number}),
        )
        digest_algorithm = algos.DigestAlgorithm({"algorithm": self._hash.value})
        self._signer_info_head = bytes(core.Integer(1).dump()) + bytes(sid.dump()) + bytes(digest_algorithm.dump())
        self._signature_algorithm = bytes(algos.SignedDigestAlgorithm({"algorithm": signature_algorithm}).dump())
        self._signed_data_head = bytes(core.Integer(3).dump()) + tlv(0x31, bytes(digest_algorithm.dump()))
        self._tst_info_type = bytes(cms.ContentType("tst_info").dump())
        # certReq: the TSA certificate and the CAs between it and the root (a relying party that
        # trusts only the root can then build the path; RFC 3161 2.4.1 allows more than the
        # TSA's own), as a DER SET OF (sorted)
        intermediates = tuple(der for der in signer.chain_der if not _self_issued(der))
        self._certificates = tlv(0xA0, *der_sorted((signer.certificate_der, *intermediates)))
        self._signed_data_type = bytes(cms.ContentType("signed_data").dump())
        self._granted = bytes(tsp.PKIStatusInfo({"status": "granted"}).dump())

    @property
    def signer(self) -> TSASigner:
        return self._signer

    @property
    def policy(self) -> TSAPolicy:
        return self._policy

    @property
    def not_after(self) -> dt.datetime:
        """The end of the TSA certificate's validity."""
        return self._not_after

    def respond(self, query_der: bytes) -> bytes:
        """The DER TimeStampResp for a DER TimeStampReq; never raises."""
        return self.answer(query_der).der

    def answer(self, query_der: bytes) -> TimeStampReply:
        """Like :meth:`respond`, with the outcome; never raises."""
        try:
            walked = walk_request(query_der, self._digest_sizes)
            if walked is not None and (walked.policy is None or walked.policy in self._policies):
                parts = (walked.imprint, walked.policy or self._default_policy, walked.nonce, walked.cert_req)
            else:  # anything unusual: the full parse decides (and names the rejection)
                parts = self._parts(_parse(query_der))
            return TimeStampReply(der=self._grant(*parts), outcome="granted")
        except _RejectedError as exc:
            return rejection(exc.failure, exc.text)
        except HSMUnavailableError:
            return rejection("system_failure", "The time-stamping key is unavailable; try again later.")
        except GovsignError as exc:
            log.warning("time-stamp request failed: %s", exc.message)
            return rejection("system_failure", "The time-stamping authority could not sign the reply.")
        except Exception:
            log.exception("time-stamp request failed")
            return rejection("system_failure", "The time-stamping authority could not sign the reply.")

    def _parts(self, request: tsp.TimeStampReq) -> tuple[bytes, bytes, bytes, bool]:
        """(message imprint, policy, nonce, certReq) of a fully parsed request, re-encoded in DER."""
        policy_oid = self._check(request)
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]
        parameters = b"\x05\x00" if isinstance(algorithm["parameters"], core.Null) else b""
        algorithm_id = tlv(0x30, bytes(core.ObjectIdentifier(algorithm["algorithm"].dotted).dump()) + parameters)
        imprint_der = tlv(0x30, algorithm_id + tlv(0x04, bytes(imprint["hashed_message"].native)))
        nonce = request["nonce"].native
        return (
            imprint_der,
            self._policy_tlvs[policy_oid],
            integer(nonce) if nonce is not None else b"",
            bool(request["cert_req"].native),
        )

    def _check(self, request: tsp.TimeStampReq) -> str:
        if request["version"].native != "v1":
            raise _RejectedError("bad_request", "Only version 1 time-stamp requests are supported.")
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm not in self._policy.accepted_hash_algorithms:
            raise _RejectedError("bad_alg", f"The hash algorithm {algorithm} is not accepted.")
        parameters = imprint["hash_algorithm"]["parameters"]
        if parameters.native is not None:
            raise _RejectedError("bad_alg", "The hash algorithm must have absent or NULL parameters.")
        if len(imprint["hashed_message"].native) != DIGEST_SIZES.get(algorithm, hashlib.new(algorithm).digest_size):
            raise _RejectedError("bad_alg", f"The hashed message is not the length of a {algorithm} digest.")
        if request["extensions"].native is not None:
            raise _RejectedError("unaccepted_extensions", "Time-stamp request extensions are not supported.")
        nonce = request["nonce"].native
        if nonce is not None and (abs(nonce).bit_length() + 7) // 8 > MAX_NONCE_OCTETS:
            raise _RejectedError("bad_request", f"The nonce is longer than {MAX_NONCE_OCTETS} octets.")
        requested = request["req_policy"]
        if requested.native is None:
            return self._policy.policy_oid
        if requested.dotted not in self._policy.accepted_policies:
            raise _RejectedError("unaccepted_policy", f"The policy {requested.dotted} is not accepted by this TSA.")
        return str(requested.dotted)

    def _grant(self, imprint: bytes, policy: bytes, nonce: bytes, cert_req: bool) -> bytes:
        """The granted TimeStampResp, assembled from DER pieces (every SET OF holds one element,
        except the signed attributes, sorted here)."""
        gen_time = self._clock.now().replace(microsecond=0)
        serial = self._serial_source()
        if serial <= 0:
            raise ValueError("serial numbers must be positive")
        tst_info = tlv(
            0x30,
            self._tst_version
            + policy
            + imprint
            + integer(serial)
            + generalized_time(gen_time)
            + self._tst_accuracy
            + nonce
            + self._tst_tsa,
        )
        digest = self._hash_new(tst_info).digest()
        attributes = sorted(
            (
                self._attr_content_type,
                self._attr_digest_prefix + digest,
                self._attr_signing_certificate,
            )
        )
        attributes_content = b"".join(attributes)
        key = self._signer.key
        signature = self._keystore.sign(
            key, tlv(0x31, attributes_content), scheme=self._scheme, hash_algorithm=self._hash
        )
        signer_info = tlv(
            0x30,
            self._signer_info_head + tlv(0xA0, attributes_content) + self._signature_algorithm + tlv(0x04, signature),
        )
        signed_data = tlv(
            0x30,
            self._signed_data_head
            + tlv(0x30, self._tst_info_type + tlv(0xA0, tlv(0x04, tst_info)))
            + (self._certificates if cert_req else b"")
            + tlv(0x31, signer_info),
        )
        token = tlv(0x30, self._signed_data_type + tlv(0xA0, signed_data))
        return tlv(0x30, self._granted + token)


def _parse(query_der: bytes) -> tsp.TimeStampReq:
    """One DER TimeStampReq and nothing after it; badDataFormat otherwise."""
    if not query_der:
        raise _RejectedError("bad_data_format", "The time-stamp request is empty.")
    try:
        request = tsp.TimeStampReq.load(query_der, strict=True)
        request.native  # noqa: B018 - force a full parse
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError):
        raise _RejectedError("bad_data_format", "The time-stamp request is not a DER TimeStampReq.") from None
    return request


def _self_issued(der: bytes) -> bool:
    """Whether a certificate is self-issued (a root: relying parties have their own copy)."""
    certificate = asn1_x509.Certificate.load(der)
    return bool(certificate.subject == certificate.issuer)
