"""OCSP responder (RFC 6960, RFC 5019 profile) with pre-produced responses.

Requests are parsed with asn1crypto (cryptography reads only single-CertID requests) and
responses are built with asn1crypto and signed by the delegated responder key in the HSM.

* A request without a nonce for one certificate is answered from the store of pre-produced
  responses when a fresh one exists: no HSM operation. Every live certificate has a SHA-1 and
  a SHA-256 CertID response signed ahead of time and refreshed before nextUpdate; a revocation
  replaces them in its own transaction.
* A request with a nonce (RFC 8954: 1 to 32 octets), or with several CertIDs, is signed live.
* Garbage gets ``malformedRequest``; CertIDs of CAs we do not answer for get ``unauthorized``;
  an unavailable HSM gets ``tryLater``; anything unexpected gets ``internalError``. The
  responder never raises.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from asn1crypto import algos, core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.errors import ErrorKind, GovsignError, HSMUnavailableError
from govsign.keystore.api import KeyRef, KeyStore, SignatureScheme
from govsign.pki.ports import CARecord, CertificateRecord, CertificateStatus, RevocationReason, RevocationRecord

log = logging.getLogger(__name__)

CERT_ID_HASHES = ("sha1", "sha256", "sha384", "sha512")
PRE_PRODUCED_HASHES = ("sha1", "sha256")
MAX_NONCE_OCTETS = 32

_REASON_NAMES = {
    RevocationReason.UNSPECIFIED: "unspecified",
    RevocationReason.KEY_COMPROMISE: "key_compromise",
    RevocationReason.CA_COMPROMISE: "ca_compromise",
    RevocationReason.AFFILIATION_CHANGED: "affiliation_changed",
    RevocationReason.SUPERSEDED: "superseded",
    RevocationReason.CESSATION_OF_OPERATION: "cessation_of_operation",
    RevocationReason.CERTIFICATE_HOLD: "certificate_hold",
    RevocationReason.PRIVILEGE_WITHDRAWN: "privilege_withdrawn",
    RevocationReason.AA_COMPROMISE: "aa_compromise",
}


@dataclass(frozen=True, kw_only=True)
class OCSPPolicy:
    """How long responses are valid and what requests are accepted."""

    response_validity: dt.timedelta = dt.timedelta(hours=4)
    """nextUpdate - thisUpdate of every response."""
    refresh_before: dt.timedelta = dt.timedelta(hours=1)
    """Pre-produced responses are re-signed when less than this remains before nextUpdate."""
    max_cert_ids: int = 20
    """Most CertIDs accepted in one request."""


@dataclass(frozen=True, kw_only=True)
class ResponderCredential:
    """The delegated responder of one CA: its certificate and its key in the HSM."""

    ca_id: str
    """The CA it answers for."""
    certificate_der: bytes
    """The responder certificate (id-kp-OCSPSigning, ocsp-nocheck)."""
    serial_hex: str
    """Its serial."""
    key: KeyRef
    """Its key on the token."""
    not_after: dt.datetime
    """End of its validity."""

    @functools.cached_property
    def asn1_certificate(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.certificate_der)

    @functools.cached_property
    def responder_id_der(self) -> bytes:
        """ResponderID byKey: [2] EXPLICIT OCTET STRING (SHA-1 of the key)."""
        return _tlv(0xA2, _tlv(0x04, self.key_hash))

    @functools.cached_property
    def signature_algorithm_der(self) -> bytes:
        hash_algorithm = self.key.algorithm.default_hash
        scheme = self.key.algorithm.default_scheme
        name = f"{hash_algorithm.value}_{'rsa' if scheme is SignatureScheme.RSA_PKCS1V15 else 'ecdsa'}"
        return bytes(algos.SignedDigestAlgorithm({"algorithm": name}).dump())

    @functools.cached_property
    def certs_der(self) -> bytes:
        """certs [0] EXPLICIT SEQUENCE OF Certificate: the responder certificate."""
        return _tlv(0xA0, _tlv(0x30, self.certificate_der))

    @functools.cached_property
    def key_hash(self) -> bytes:
        """SHA-1 of the responder's subjectPublicKey, for ResponderID byKey."""
        return hashlib.sha1(self.asn1_certificate.public_key["public_key"].contents[1:]).digest()  # noqa: S324 - RFC 6960


_NONCE_OID_DER = bytes.fromhex("06092b0601050507300102")  # id-pkix-ocsp-nonce
_BASIC_OCSP_RESPONSE_OID = bytes.fromhex("06092b0601050507300101")  # id-pkix-ocsp-basic


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER tag-length-value."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _generalized_time(moment: dt.datetime) -> bytes:
    """DER GeneralizedTime in whole seconds, UTC (RFC 5280 4.1.2.5.2)."""
    return _tlv(0x18, moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


@dataclass(frozen=True, kw_only=True)
class CAIdentity:
    """A CA as it appears in CertIDs."""

    ca_id: str
    """Our id of the CA."""
    served: bool
    """True when we have a responder for it."""


class OCSPDirectory:
    """Which CA a CertID names, and which responder answers for it."""

    def __init__(self, cas: Sequence[CARecord], responders: Sequence[ResponderCredential]) -> None:
        self._responders = {r.ca_id: r for r in responders}
        self._by_hashes: dict[tuple[str, bytes, bytes], CAIdentity] = {}
        self._name_key_hashes: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        for ca in cas:
            certificate = asn1_x509.Certificate.load(ca.certificate_der)
            name_der = certificate.subject.dump()
            key_bits = certificate.public_key["public_key"].contents[1:]
            identity = CAIdentity(ca_id=ca.id, served=ca.id in self._responders or ca.parent_id is not None)
            for name in CERT_ID_HASHES:
                name_hash = hashlib.new(name, name_der).digest()
                key_hash = hashlib.new(name, key_bits).digest()
                self._by_hashes[(name, name_hash, key_hash)] = identity
                self._name_key_hashes[(ca.id, name)] = (name_hash, key_hash)

    def identify(self, hash_algorithm: str, name_hash: bytes, key_hash: bytes) -> CAIdentity | None:
        return self._by_hashes.get((hash_algorithm, name_hash, key_hash))

    def responder(self, ca_id: str) -> ResponderCredential | None:
        return self._responders.get(ca_id)

    def cert_id(self, ca_id: str, serial_hex: str, hash_algorithm: str) -> asn1_ocsp.CertId:
        name_hash, key_hash = self._name_key_hashes[(ca_id, hash_algorithm)]
        return asn1_ocsp.CertId(
            {
                "hash_algorithm": {"algorithm": hash_algorithm},
                "issuer_name_hash": name_hash,
                "issuer_key_hash": key_hash,
                "serial_number": int(serial_hex, 16),
            }
        )


class OCSPStatusSource(Protocol):
    """What the responder reads and writes (implemented in storage)."""

    def certificate_status(
        self, issuer_id: str, serial_hex: str
    ) -> tuple[CertificateRecord, RevocationRecord | None] | None: ...
    def stored_response(
        self, issuer_id: str, serial_hex: str, hash_algorithm: str
    ) -> tuple[bytes, dt.datetime, dt.datetime] | None: ...
    def put_response(
        self,
        *,
        certificate_id: int,
        issuer_id: str,
        serial_hex: str,
        hash_algorithm: str,
        cert_status: str,
        this_update: dt.datetime,
        next_update: dt.datetime,
        responder_serial_hex: str,
        response_der: bytes,
    ) -> None: ...
    def delete_responses(self, certificate_id: int) -> None: ...


@dataclass(frozen=True, kw_only=True)
class OCSPAnswer:
    """A response and what HTTP caching needs to know of it."""

    der: bytes
    """The DER OCSPResponse."""
    status: str
    """successful, malformedRequest, internalError, tryLater, unauthorized."""
    this_update: dt.datetime | None = None
    """thisUpdate of a single-certificate response."""
    next_update: dt.datetime | None = None
    """nextUpdate of a single-certificate response."""
    pre_produced: bool = False
    """Served from the store of pre-produced responses."""
    nonce: bool = False
    """The request carried a nonce."""


def unsigned_response(status: str) -> OCSPAnswer:
    der = asn1_ocsp.OCSPResponse({"response_status": status}).dump()
    return OCSPAnswer(der=der, status=status)


class MalformedRequestError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class _ParsedRequest:
    cert_ids: list[asn1_ocsp.CertId]
    nonce_extension: asn1_ocsp.ResponseDataExtension | None


def parse_request(request_der: bytes, max_cert_ids: int) -> _ParsedRequest:
    """Parse and check an OCSPRequest; MalformedRequestError for anything wrong."""
    if not request_der:
        raise MalformedRequestError("empty request")
    try:
        request = asn1_ocsp.OCSPRequest.load(request_der, strict=True)
        tbs = request["tbs_request"]
        if tbs["version"].native not in ("v1", None):
            raise MalformedRequestError("unsupported version")
        items = tbs["request_list"]
        if len(items) == 0:
            raise MalformedRequestError("no CertID")
        if len(items) > max_cert_ids:
            raise MalformedRequestError("too many CertIDs")
        cert_ids = []
        for item in items:
            cert_id = item["req_cert"]
            algorithm = cert_id["hash_algorithm"]["algorithm"].native
            name_hash = cert_id["issuer_name_hash"].native
            key_hash = cert_id["issuer_key_hash"].native
            serial = cert_id["serial_number"].native
            if not isinstance(serial, int) or not isinstance(name_hash, bytes) or not isinstance(key_hash, bytes):
                raise MalformedRequestError("bad CertID")
            if algorithm in CERT_ID_HASHES and (
                len(name_hash) != hashlib.new(algorithm).digest_size
                or len(key_hash) != hashlib.new(algorithm).digest_size
            ):
                raise MalformedRequestError("bad CertID hash length")
            cert_ids.append(cert_id)
        nonce_extension = None
        extensions = tbs["request_extensions"]
        for extension in extensions if extensions.native is not None else []:
            if extension["extn_id"].native == "nonce":
                raw = extension["extn_value"].contents
                try:
                    nonce = core.OctetString.load(raw, strict=True).native
                except (ValueError, TypeError):
                    nonce = raw
                if not 1 <= len(nonce) <= MAX_NONCE_OCTETS:
                    raise MalformedRequestError("nonce length out of range")
                nonce_extension = asn1_ocsp.ResponseDataExtension(
                    {
                        "extn_id": "nonce",
                        "critical": False,
                        "extn_value": core.OctetString.load(raw) if _is_octet_string(raw) else core.OctetString(raw),
                    }
                )
            elif extension["critical"].native:
                raise MalformedRequestError("unsupported critical extension")
        # Force a full parse of whatever else is in there (signature, certificates).
        request.native  # noqa: B018
    except MalformedRequestError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise MalformedRequestError(type(exc).__name__) from None
    return _ParsedRequest(cert_ids=cert_ids, nonce_extension=nonce_extension)


def _is_octet_string(raw: bytes) -> bool:
    try:
        core.OctetString.load(raw, strict=True)
    except (ValueError, TypeError):
        return False
    return True


class OCSPResponder:
    """Answers OCSP requests for the CAs in its directory."""

    def __init__(self, *, keystore: KeyStore, clock: Clock, policy: OCSPPolicy, directory: OCSPDirectory) -> None:
        self._keystore = keystore
        self._clock = clock
        self._policy = policy
        self._directory = directory

    @property
    def directory(self) -> OCSPDirectory:
        return self._directory

    def respond(self, request_der: bytes, source: OCSPStatusSource) -> OCSPAnswer:
        """Never raises: every failure is an OCSP response status."""
        try:
            parsed = parse_request(request_der, self._policy.max_cert_ids)
        except MalformedRequestError:
            return unsigned_response("malformed_request")
        try:
            return self._respond(parsed, source)
        except GovsignError as exc:
            if exc.kind is ErrorKind.UNAVAILABLE:
                return unsigned_response("try_later")
            log.warning("OCSP request failed: %s", exc.message)
            return unsigned_response("internal_error")
        except Exception:
            log.exception("OCSP request failed")
            return unsigned_response("internal_error")

    def pre_produced_key(self, request_der: bytes) -> tuple[str, str, str] | None:
        """(CA id, serial, CertID hash) when the request can be answered from a stored response:
        one CertID of a CA we serve, and no nonce. The answer depends only on the request's
        bytes, so callers may cache it by those bytes. None otherwise (or for bad requests)."""
        if _NONCE_OID_DER in request_der:
            return None  # a nonce is signed live: skip the parse the full path does anyway
        try:
            parsed = parse_request(request_der, self._policy.max_cert_ids)
        except MalformedRequestError:
            return None
        if parsed.nonce_extension is not None or len(parsed.cert_ids) != 1:
            return None
        cert_id = parsed.cert_ids[0]
        algorithm = cert_id["hash_algorithm"]["algorithm"].native
        identity = self._directory.identify(
            algorithm, cert_id["issuer_name_hash"].native, cert_id["issuer_key_hash"].native
        )
        if identity is None or not identity.served or self._directory.responder(identity.ca_id) is None:
            return None
        return identity.ca_id, format(cert_id["serial_number"].native, "x"), algorithm

    def _respond(self, parsed: _ParsedRequest, source: OCSPStatusSource) -> OCSPAnswer:
        identities = []
        for cert_id in parsed.cert_ids:
            algorithm = cert_id["hash_algorithm"]["algorithm"].native
            identity = self._directory.identify(
                algorithm, cert_id["issuer_name_hash"].native, cert_id["issuer_key_hash"].native
            )
            if identity is None or not identity.served:
                return unsigned_response("unauthorized")
            identities.append(identity)
        if len({identity.ca_id for identity in identities}) != 1:
            return unsigned_response("unauthorized")
        ca_id = identities[0].ca_id
        responder = self._directory.responder(ca_id)
        if responder is None or responder.not_after <= self._clock.now():
            # We answer for this CA but have no valid responder right now (rollover pending).
            return unsigned_response("try_later")
        now = self._clock.now()

        if parsed.nonce_extension is None and len(parsed.cert_ids) == 1:
            cert_id = parsed.cert_ids[0]
            algorithm = cert_id["hash_algorithm"]["algorithm"].native
            serial_hex = format(cert_id["serial_number"].native, "x")
            stored = source.stored_response(ca_id, serial_hex, algorithm)
            if stored is not None:
                der, this_update, next_update = stored
                if this_update <= now < next_update:
                    return OCSPAnswer(
                        der=der,
                        status="successful",
                        this_update=this_update,
                        next_update=next_update,
                        pre_produced=True,
                    )

        singles = []
        for cert_id in parsed.cert_ids:
            serial_hex = format(cert_id["serial_number"].native, "x")
            status = source.certificate_status(ca_id, serial_hex)
            singles.append(self._single_response(cert_id, status, now, responder))
        der = self._sign(responder, singles, now, parsed.nonce_extension)
        single_window = (now, self._next_update(now, responder)) if len(singles) == 1 else (None, None)
        return OCSPAnswer(
            der=der,
            status="successful",
            this_update=single_window[0],
            next_update=single_window[1],
            nonce=parsed.nonce_extension is not None,
        )

    def _next_update(self, now: dt.datetime, responder: ResponderCredential | None = None) -> dt.datetime:
        next_update = now + self._policy.response_validity
        if responder is not None and responder.not_after < next_update:
            next_update = responder.not_after
        return next_update

    def _single_response(
        self,
        cert_id: asn1_ocsp.CertId,
        status: tuple[CertificateRecord, RevocationRecord | None] | None,
        now: dt.datetime,
        responder: ResponderCredential | None = None,
    ) -> bytes:
        """DER of one SingleResponse (RFC 6960 4.2.1), built directly: the responder's hot path
        spends most of its time here otherwise. The CertID is copied from the request as is."""
        if status is None:
            cert_status = b"\x82\x00"  # unknown [2] IMPLICIT NULL
        else:
            record, revocation = status
            if record.status is CertificateStatus.VALID or revocation is None:
                cert_status = b"\x80\x00"  # good [0] IMPLICIT NULL
            else:
                revoked = _generalized_time(revocation.revoked_at)
                if revocation.reason is not RevocationReason.UNSPECIFIED:
                    revoked += _tlv(0xA0, _tlv(0x0A, bytes([revocation.reason.code])))
                cert_status = _tlv(0xA1, revoked)  # revoked [1] IMPLICIT RevokedInfo
        body = (
            bytes(cert_id.dump())
            + cert_status
            + _generalized_time(now)
            + _tlv(0xA0, _generalized_time(self._next_update(now, responder)))
        )
        return _tlv(0x30, body)

    def _sign(
        self,
        responder: ResponderCredential,
        singles: list[bytes],
        now: dt.datetime,
        nonce_extension: asn1_ocsp.ResponseDataExtension | None,
    ) -> bytes:
        """Sign a BasicOCSPResponse in the HSM; the DER is assembled from cached pieces."""
        response_data = responder.responder_id_der + _generalized_time(now) + _tlv(0x30, b"".join(singles))
        if nonce_extension is not None:
            response_data += _tlv(0xA1, _tlv(0x30, bytes(nonce_extension.dump())))
        tbs = _tlv(0x30, response_data)
        algorithm = responder.key.algorithm
        signature = self._keystore.sign(
            responder.key, tbs, scheme=algorithm.default_scheme, hash_algorithm=algorithm.default_hash
        )
        basic = _tlv(
            0x30,
            tbs + responder.signature_algorithm_der + _tlv(0x03, b"\x00" + signature) + responder.certs_der,
        )
        response_bytes = _tlv(0x30, _BASIC_OCSP_RESPONSE_OID + _tlv(0x04, basic))
        return _tlv(0x30, b"\x0a\x01\x00" + _tlv(0xA0, response_bytes))

    # -- pre-produced responses -------------------------------------------------------------

    def pre_produce(
        self, record: CertificateRecord, revocation: RevocationRecord | None, source: OCSPStatusSource
    ) -> None:
        """Sign and store the SHA-1 and SHA-256 CertID responses of one certificate."""
        responder = self._directory.responder(record.issuer_id)
        if responder is None or record.id is None:
            return
        now = self._clock.now()
        status = (record, revocation)
        cert_status = "good" if record.status is CertificateStatus.VALID or revocation is None else "revoked"
        for algorithm in PRE_PRODUCED_HASHES:
            cert_id = self._directory.cert_id(record.issuer_id, record.serial_hex, algorithm)
            der = self._sign(responder, [self._single_response(cert_id, status, now, responder)], now, None)
            source.put_response(
                certificate_id=record.id,
                issuer_id=record.issuer_id,
                serial_hex=record.serial_hex,
                hash_algorithm=algorithm,
                cert_status=cert_status,
                this_update=now,
                next_update=self._next_update(now, responder),
                responder_serial_hex=responder.serial_hex,
                response_der=der,
            )

    def status_changed(
        self, record: CertificateRecord, revocation: RevocationRecord | None, source: OCSPStatusSource
    ) -> None:
        """Replace the stored responses after a revocation, hold or release (same transaction).

        If the HSM cannot sign right now, the stored responses are deleted instead, so a stale
        ``good`` is never served; requests are then signed live (or get tryLater).
        """
        if record.id is None:
            return
        try:
            self.pre_produce(record, revocation, source)
        except HSMUnavailableError:
            source.delete_responses(record.id)
