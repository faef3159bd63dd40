"""RFC 3161 Time-Stamping Authority with the TSA key in the HSM.

Requests are parsed with asn1crypto; replies are TimeStampResp structures whose token is a CMS
SignedData (RFC 5652) over a TSTInfo, signed by the TSA key through the keystore. Every SET OF
is emitted in DER order (sorted encodings), which strict decoders such as rfc3161-client check.

* Granted: policy = the requested one when accepted, else the default; the messageImprint is
  copied; a random 128-bit serial; genTime in whole seconds with the stated accuracy; the nonce
  echoed; the TSA named by its certificate's subject; the TSA certificate only on certReq;
  signed attributes contentType, messageDigest and signingCertificateV2 (ESSCertIDv2).
* Rejection (PKIStatus rejection with PKIFailureInfo): badAlg for a hash algorithm not accepted
  or a digest of the wrong length, unacceptedPolicy, unacceptedExtension, badDataFormat for bytes
  that are not one DER TimeStampReq, badRequest for other bad requests, systemFailure when the
  HSM is unavailable or anything unexpected happens. :meth:`TimeStampAuthority.respond` never raises.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.errors import GovsignError, HSMUnavailableError
from govsign.keystore.api import KeyRef, KeyStore, SignatureScheme

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
        return asn1_x509.Certificate.load(self.certificate_der)

    @functools.cached_property
    def signing_certificate_v2(self) -> tsp.SigningCertificateV2:
        """ESSCertIDv2 of the TSA certificate: SHA-256 (the default, so omitted) and issuerSerial."""
        certificate = self.asn1_certificate
        tbs = certificate["tbs_certificate"]
        return tsp.SigningCertificateV2(
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


def rejection(failure: str, text: str) -> TimeStampReply:
    """A TimeStampResp with PKIStatus rejection, one failure bit and one sentence of text."""
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({failure})}
    )
    return TimeStampReply(der=bytes(TimeStampResponse({"status": status}).dump()), outcome=failure)


class TimeStampAuthority:
    """Answers RFC 3161 time-stamp requests with one TSA credential."""

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
        certificate = signer.asn1_certificate
        self._tsa_name = asn1_x509.GeneralName(name="directory_name", value=certificate.subject)
        self._hash = signer.key.algorithm.default_hash
        scheme = signer.key.algorithm.default_scheme
        self._signature_algorithm = f"{self._hash.value}_{'rsa' if scheme is SignatureScheme.RSA_PKCS1V15 else 'ecdsa'}"
        self._sid = cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value=cms.IssuerAndSerialNumber({"issuer": certificate.issuer, "serial_number": certificate.serial_number}),
        )

    @property
    def signer(self) -> TSASigner:
        return self._signer

    @property
    def policy(self) -> TSAPolicy:
        return self._policy

    def respond(self, query_der: bytes) -> bytes:
        """The DER TimeStampResp for a DER TimeStampReq; never raises."""
        return self.answer(query_der).der

    def answer(self, query_der: bytes) -> TimeStampReply:
        """Like :meth:`respond`, with the outcome; never raises."""
        try:
            request = _parse(query_der)
            policy_oid = self._check(request)
            return TimeStampReply(der=self._grant(request, policy_oid), outcome="granted")
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
        requested = request["req_policy"]
        if requested.native is None:
            return self._policy.policy_oid
        if requested.dotted not in self._policy.accepted_policies:
            raise _RejectedError("unaccepted_policy", f"The policy {requested.dotted} is not accepted by this TSA.")
        return str(requested.dotted)

    def _grant(self, request: tsp.TimeStampReq, policy_oid: str) -> bytes:
        gen_time = self._clock.now().replace(microsecond=0)
        serial = self._serial_source()
        if serial <= 0:
            raise ValueError("serial numbers must be positive")
        info: dict[str, Any] = {
            "version": "v1",
            "policy": policy_oid,
            "message_imprint": tsp.MessageImprint.load(request["message_imprint"].dump()),
            "serial_number": serial,
            "gen_time": gen_time,
            "accuracy": {"seconds": self._policy.accuracy_seconds},
            "ordering": False,
            "tsa": self._tsa_name,
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        tst_info_der = bytes(tsp.TSTInfo(info).dump())
        digest = hashlib.new(self._hash.value, tst_info_der).digest()
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
                cms.CMSAttribute({"type": "signing_certificate_v2", "values": [self._signer.signing_certificate_v2]}),
            ]
        )
        signed_attrs_der = bytes(signed_attrs.dump(force=True))  # SET OF: sorted by asn1crypto on dump
        key = self._signer.key
        signature = self._keystore.sign(
            key, signed_attrs_der, scheme=key.algorithm.default_scheme, hash_algorithm=key.algorithm.default_hash
        )
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": self._sid,
                "digest_algorithm": {"algorithm": self._hash.value},
                "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": self._signature_algorithm}),
                "signature": signature,
            }
        )
        signed_data: dict[str, Any] = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": self._hash.value})],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(tst_info_der),
            },
            "signer_infos": [signer_info],
        }
        if request["cert_req"].native:
            signed_data["certificates"] = [
                cms.CertificateChoices(name="certificate", value=self._signer.asn1_certificate)
            ]
        token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
        response = TimeStampResponse({"status": {"status": "granted"}, "time_stamp_token": token})
        return bytes(response.dump())


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
