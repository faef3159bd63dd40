"""OCSP responder (RFC 6960, RFC 5019 profile) with pre-produced responses.

Ordinary requests (one or more CertIDs with a known hash, an optional nonce, nothing else) are
read by a small strict DER walker; anything else is parsed in full with asn1crypto (cryptography
reads only single-CertID requests), which then decides. Responses are assembled as DER from
cached pieces and signed by the delegated responder key in the HSM.

* A request without a nonce for one certificate is answered from the store of pre-produced
  responses when a fresh one exists: no HSM operation. Every live certificate has a SHA-1 and
  a SHA-256 CertID response signed ahead of time and refreshed before nextUpdate; a revocation
  replaces them in its own transaction.
* A request with a nonce (RFC 8954: 1 to 32 octets), or with several CertIDs, is signed live.
  The status of a certificate that has a fresh pre-produced response is copied from that
  response (one cheap read: the store changes in the same transaction as the status, which is
  what makes serving it safe); other certificates are looked up in the certificate table.
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

from asn1crypto import algos
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from govsign.clock import Clock
from govsign.der import generalized_time, header, tlv
from govsign.errors import ErrorKind, GovsignError, HSMUnavailableError
from govsign.keystore.api import KeyRef, KeyStore, SignatureScheme
from govsign.pki.ocsp_request import (
    CERT_ID_HASHES,
    NONCE_OID_DER,
    MalformedRequestError,
    ParsedRequest,
    RequestedCertID,
    parse_request,
)
from govsign.pki.records import CARecord, CertificateRecord, CertificateStatus, RevocationReason, RevocationRecord

log = logging.getLogger(__name__)

PRE_PRODUCED_HASHES = ("sha1", "sha256")

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
        return tlv(0xA2, tlv(0x04, self.key_hash))

    @functools.cached_property
    def signature_algorithm_der(self) -> bytes:
        hash_algorithm = self.key.algorithm.default_hash
        scheme = self.key.algorithm.default_scheme
        name = f"{hash_algorithm.value}_{'rsa' if scheme is SignatureScheme.RSA_PKCS1V15 else 'ecdsa'}"
        return bytes(algos.SignedDigestAlgorithm({"algorithm": name}).dump())

    @functools.cached_property
    def certs_der(self) -> bytes:
        """certs [0] EXPLICIT SEQUENCE OF Certificate: the responder certificate."""
        return tlv(0xA0, tlv(0x30, self.certificate_der))

    @functools.cached_property
    def key_hash(self) -> bytes:
        """SHA-1 of the responder's subjectPublicKey, for ResponderID byKey."""
        return hashlib.sha1(self.asn1_certificate.public_key["public_key"].contents[1:]).digest()  # noqa: S324 - RFC 6960


_BASIC_OCSP_RESPONSE_OID = bytes.fromhex("06092b0601050507300101")  # id-pkix-ocsp-basic


def _cert_status(status: tuple[CertificateRecord, RevocationRecord | None] | None) -> bytes:
    """DER CertStatus (RFC 6960 4.2.1) of a certificate, or unknown when we do not know it."""
    if status is None:
        return b"\x82\x00"  # unknown [2] IMPLICIT NULL
    record, revocation = status
    if record.status is CertificateStatus.VALID or revocation is None:
        return b"\x80\x00"  # good [0] IMPLICIT NULL
    revoked = generalized_time(revocation.revoked_at)
    if revocation.reason is not RevocationReason.UNSPECIFIED:
        revoked += tlv(0xA0, tlv(0x0A, bytes([revocation.reason.code])))
    return tlv(0xA1, revoked)  # revoked [1] IMPLICIT RevokedInfo


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

    def cert_id(self, ca_id: str, serial_hex: str, hash_algorithm: str) -> RequestedCertID:
        name_hash, key_hash = self._name_key_hashes[(ca_id, hash_algorithm)]
        serial = int(serial_hex, 16)
        der = asn1_ocsp.CertId(
            {
                "hash_algorithm": {"algorithm": hash_algorithm},
                "issuer_name_hash": name_hash,
                "issuer_key_hash": key_hash,
                "serial_number": serial,
            }
        ).dump()
        return RequestedCertID(
            hash_algorithm=hash_algorithm, name_hash=name_hash, key_hash=key_hash, serial=serial, der=bytes(der)
        )


class OCSPStatusSource(Protocol):
    """What the responder reads to answer (implemented in storage)."""

    def certificate_status(
        self, issuer_id: str, serial_hex: str
    ) -> tuple[CertificateRecord, RevocationRecord | None] | None: ...
    def stored_response(
        self, issuer_id: str, serial_hex: str, hash_algorithm: str
    ) -> tuple[bytes, dt.datetime, dt.datetime] | None: ...


@dataclass(frozen=True, kw_only=True)
class PreProducedResponse:
    """A signed response kept for one certificate and one CertID hash algorithm."""

    certificate_id: int
    """The certificate it answers for."""
    issuer_id: str
    """Its issuer."""
    serial_hex: str
    """Its serial."""
    hash_algorithm: str
    """The CertID hash algorithm the response names the certificate with."""
    cert_status: str
    """good, revoked or unknown."""
    this_update: dt.datetime
    """thisUpdate."""
    next_update: dt.datetime
    """nextUpdate: the response is served until then."""
    responder_serial_hex: str
    """The responder certificate that signed it (a rollover makes it stale)."""
    response_der: bytes
    """The OCSPResponse."""


class OCSPResponseStore(OCSPStatusSource, Protocol):
    """Where pre-produced responses are kept (implemented in storage, inside a unit of work)."""

    def put_response(self, response: PreProducedResponse) -> None: ...
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


def failure_response(error: BaseException) -> OCSPAnswer:
    """The one mapping of failures to OCSP response statuses: an unavailable HSM or database is
    ``tryLater``, anything else ``internalError`` (logged; never shown to the client)."""
    if isinstance(error, GovsignError):
        if error.kind is ErrorKind.UNAVAILABLE:
            return unsigned_response("try_later")
        log.warning("OCSP request failed: %s", error.message)
    else:
        log.error("OCSP request failed", exc_info=error)
    return unsigned_response("internal_error")


def _stored_cert_status(response_der: bytes) -> bytes | None:
    """The certStatus TLV of the one SingleResponse in one of our pre-produced OCSPResponses
    (no version, one SingleResponse); None when it is not of that shape."""
    data = response_der
    outer = header(data, 0, len(data))
    if outer is None or outer[0] != 0x30 or data[outer[1] : outer[1] + 3] != b"\x0a\x01\x00":
        return None
    response_bytes = header(data, outer[1] + 3, outer[2])
    if response_bytes is None or response_bytes[0] != 0xA0:
        return None
    sequence = header(data, response_bytes[1], response_bytes[2])
    if sequence is None or sequence[0] != 0x30:
        return None
    pos = sequence[1] + len(_BASIC_OCSP_RESPONSE_OID)
    if data[sequence[1] : pos] != _BASIC_OCSP_RESPONSE_OID:
        return None
    octets = header(data, pos, sequence[2])
    basic = None if octets is None or octets[0] != 0x04 else header(data, octets[1], octets[2])
    tbs = None if basic is None or basic[0] != 0x30 else header(data, basic[1], basic[2])
    if tbs is None or tbs[0] != 0x30:
        return None
    responder_id = header(data, tbs[1], tbs[2])
    if responder_id is None or responder_id[0] not in (0xA1, 0xA2):
        return None
    produced_at = header(data, responder_id[2], tbs[2])
    if produced_at is None or produced_at[0] != 0x18:
        return None
    responses = header(data, produced_at[2], tbs[2])
    if responses is None or responses[0] != 0x30:
        return None
    single = header(data, responses[1], responses[2])
    if single is None or single[0] != 0x30 or single[2] != responses[2]:
        return None
    cert_id = header(data, single[1], single[2])
    if cert_id is None or cert_id[0] != 0x30:
        return None
    status = header(data, cert_id[2], single[2])
    if status is None or status[0] not in (0x80, 0xA1, 0x82):
        return None
    return data[cert_id[2] : status[2]]


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
        except Exception as exc:  # noqa: BLE001 - every failure is an OCSP response status
            return failure_response(exc)

    def pre_produced_key(self, request_der: bytes) -> tuple[str, str, str] | None:
        """(CA id, serial, CertID hash) when the request can be answered from a stored response:
        one CertID of a CA we serve, and no nonce. The answer depends only on the request's
        bytes, so callers may cache it by those bytes. None otherwise (or for bad requests)."""
        if NONCE_OID_DER in request_der:
            return None  # a nonce is signed live: skip the parse the full path does anyway
        try:
            parsed = parse_request(request_der, self._policy.max_cert_ids)
        except MalformedRequestError:
            return None
        if parsed.nonce_extension is not None or len(parsed.cert_ids) != 1:
            return None
        cert_id = parsed.cert_ids[0]
        identity = self._directory.identify(cert_id.hash_algorithm, cert_id.name_hash, cert_id.key_hash)
        if identity is None or not identity.served or self._directory.responder(identity.ca_id) is None:
            return None
        return identity.ca_id, cert_id.serial_hex, cert_id.hash_algorithm

    def _respond(self, parsed: ParsedRequest, source: OCSPStatusSource) -> OCSPAnswer:
        identities = []
        for cert_id in parsed.cert_ids:
            identity = self._directory.identify(cert_id.hash_algorithm, cert_id.name_hash, cert_id.key_hash)
            if identity is None or not identity.served:
                return unsigned_response("unauthorized")
            identities.append(identity)
        if len({identity.ca_id for identity in identities}) != 1:
            return unsigned_response("unauthorized")
        ca_id = identities[0].ca_id
        responder = self._directory.responder(ca_id)
        now = self._clock.now()
        if responder is None or responder.not_after <= now:
            # We answer for this CA but have no valid responder right now (rollover pending).
            return unsigned_response("try_later")

        if parsed.nonce_extension is None and len(parsed.cert_ids) == 1:
            cert_id = parsed.cert_ids[0]
            stored = source.stored_response(ca_id, cert_id.serial_hex, cert_id.hash_algorithm)
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

        next_update = self._next_update(now, responder)
        singles = []
        for cert_id in parsed.cert_ids:
            cert_status = self._current_cert_status(ca_id, cert_id, now, source)
            singles.append(self._single_response(cert_id, cert_status, now, next_update))
        der = self._sign(responder, singles, now, parsed.nonce_extension)
        single_window = (now, next_update) if len(singles) == 1 else (None, None)
        return OCSPAnswer(
            der=der,
            status="successful",
            this_update=single_window[0],
            next_update=single_window[1],
            nonce=parsed.nonce_extension is not None,
        )

    def _current_cert_status(
        self, ca_id: str, cert_id: RequestedCertID, now: dt.datetime, source: OCSPStatusSource
    ) -> bytes:
        """The certStatus of a certificate, read from the database now: copied from its fresh
        pre-produced response when it has one (the store is replaced or emptied in the same
        transaction as any status change), else from the certificate and revocation tables."""
        algorithm = cert_id.hash_algorithm if cert_id.hash_algorithm in PRE_PRODUCED_HASHES else "sha256"
        stored = source.stored_response(ca_id, cert_id.serial_hex, algorithm)
        if stored is not None:
            der, this_update, next_update = stored
            if this_update <= now < next_update:
                cert_status = _stored_cert_status(der)
                if cert_status is not None:
                    return cert_status
        return _cert_status(source.certificate_status(ca_id, cert_id.serial_hex))

    def _next_update(self, now: dt.datetime, responder: ResponderCredential | None = None) -> dt.datetime:
        next_update = now + self._policy.response_validity
        if responder is not None and responder.not_after < next_update:
            next_update = responder.not_after
        return next_update

    @staticmethod
    def _single_response(
        cert_id: RequestedCertID, cert_status: bytes, now: dt.datetime, next_update: dt.datetime
    ) -> bytes:
        """DER of one SingleResponse (RFC 6960 4.2.1), built directly: the responder's hot path
        spends most of its time here otherwise. The CertID is copied from the request as is."""
        body = cert_id.der + cert_status + generalized_time(now) + tlv(0xA0, generalized_time(next_update))
        return tlv(0x30, body)

    def _sign(
        self,
        responder: ResponderCredential,
        singles: list[bytes],
        now: dt.datetime,
        nonce_extension: bytes | None,
    ) -> bytes:
        """Sign a BasicOCSPResponse in the HSM; the DER is assembled from cached pieces."""
        response_data = responder.responder_id_der + generalized_time(now) + tlv(0x30, b"".join(singles))
        if nonce_extension is not None:
            response_data += tlv(0xA1, tlv(0x30, nonce_extension))
        tbs = tlv(0x30, response_data)
        algorithm = responder.key.algorithm
        signature = self._keystore.sign(
            responder.key, tbs, scheme=algorithm.default_scheme, hash_algorithm=algorithm.default_hash
        )
        basic = tlv(
            0x30,
            tbs + responder.signature_algorithm_der + tlv(0x03, b"\x00" + signature) + responder.certs_der,
        )
        response_bytes = tlv(0x30, _BASIC_OCSP_RESPONSE_OID + tlv(0x04, basic))
        return tlv(0x30, b"\x0a\x01\x00" + tlv(0xA0, response_bytes))

    # -- pre-produced responses -------------------------------------------------------------

    def pre_produce(
        self, record: CertificateRecord, revocation: RevocationRecord | None, store: OCSPResponseStore
    ) -> None:
        """Sign and store the SHA-1 and SHA-256 CertID responses of one certificate."""
        responder = self._directory.responder(record.issuer_id)
        if responder is None or record.id is None:
            return
        now = self._clock.now()
        next_update = self._next_update(now, responder)
        status_der = _cert_status((record, revocation))
        cert_status = "good" if record.status is CertificateStatus.VALID or revocation is None else "revoked"
        for algorithm in PRE_PRODUCED_HASHES:
            cert_id = self._directory.cert_id(record.issuer_id, record.serial_hex, algorithm)
            der = self._sign(responder, [self._single_response(cert_id, status_der, now, next_update)], now, None)
            store.put_response(
                PreProducedResponse(
                    certificate_id=record.id,
                    issuer_id=record.issuer_id,
                    serial_hex=record.serial_hex,
                    hash_algorithm=algorithm,
                    cert_status=cert_status,
                    this_update=now,
                    next_update=next_update,
                    responder_serial_hex=responder.serial_hex,
                    response_der=der,
                )
            )

    def status_changed(
        self, record: CertificateRecord, revocation: RevocationRecord | None, store: OCSPResponseStore
    ) -> None:
        """Replace the stored responses after a revocation, hold or release (same transaction).

        If the HSM cannot sign right now, or there is no valid responder to sign them, the stored
        responses are deleted instead, so a stale ``good`` is never served (nor copied into a
        live answer); requests are then signed live (or get tryLater).
        """
        if record.id is None:
            return
        if self._directory.responder(record.issuer_id) is None:
            store.delete_responses(record.id)
            return
        try:
            self.pre_produce(record, revocation, store)
        except HSMUnavailableError:
            store.delete_responses(record.id)
