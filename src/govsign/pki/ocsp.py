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


def _cert_status(status: tuple[CertificateRecord, RevocationRecord | None] | None) -> bytes:
    """DER CertStatus (RFC 6960 4.2.1) of a certificate, or unknown when we do not know it."""
    if status is None:
        return b"\x82\x00"  # unknown [2] IMPLICIT NULL
    record, revocation = status
    if record.status is CertificateStatus.VALID or revocation is None:
        return b"\x80\x00"  # good [0] IMPLICIT NULL
    revoked = _generalized_time(revocation.revoked_at)
    if revocation.reason is not RevocationReason.UNSPECIFIED:
        revoked += _tlv(0xA0, _tlv(0x0A, bytes([revocation.reason.code])))
    return _tlv(0xA1, revoked)  # revoked [1] IMPLICIT RevokedInfo


_TIMES: dict[int, bytes] = {}


def _generalized_time(moment: dt.datetime) -> bytes:
    """DER GeneralizedTime in whole seconds, UTC (RFC 5280 4.1.2.5.2); the few seconds in use
    (now, now + validity) are cached, as strftime is a noticeable part of a live answer."""
    second = int(moment.timestamp())
    der = _TIMES.get(second)
    if der is None:
        if len(_TIMES) >= 64:
            _TIMES.clear()
        der = _TIMES[second] = _tlv(0x18, moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii"))
    return der


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestedCertID:
    """One CertID of a request (RFC 6960 4.1.1)."""

    hash_algorithm: str
    """Name of its hash (sha1, sha256...), or the dotted OID of an unknown one."""
    name_hash: bytes
    """issuerNameHash."""
    key_hash: bytes
    """issuerKeyHash."""
    serial: int
    """serialNumber."""
    der: bytes
    """The CertID as received (copied into the SingleResponse as is)."""

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "x")


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


@dataclass(frozen=True, kw_only=True, slots=True)
class _ParsedRequest:
    cert_ids: list[RequestedCertID]
    nonce_extension: bytes | None
    """The DER Extension to echo in responseExtensions (RFC 8954), or None."""


def parse_request(request_der: bytes, max_cert_ids: int) -> _ParsedRequest:
    """Parse and check an OCSPRequest; MalformedRequestError for anything wrong.

    Ordinary requests are read by ``walk_request``; anything it does not take (another shape,
    a bad encoding, a bad nonce, too many CertIDs) is parsed in full, which decides."""
    walked = walk_request(request_der, max_cert_ids)
    if walked is not None:
        return walked
    return _parse_request_asn1(request_der, max_cert_ids)


def _parse_request_asn1(request_der: bytes, max_cert_ids: int) -> _ParsedRequest:
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
            cert_ids.append(
                RequestedCertID(
                    hash_algorithm=str(algorithm),
                    name_hash=name_hash,
                    key_hash=key_hash,
                    serial=serial,
                    der=bytes(cert_id.dump()),
                )
            )
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
                nonce_extension = bytes(
                    asn1_ocsp.ResponseDataExtension(
                        {
                            "extn_id": "nonce",
                            "critical": False,
                            "extn_value": core.OctetString.load(raw)
                            if _is_octet_string(raw)
                            else core.OctetString(raw),
                        }
                    ).dump()
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


# -- the DER walker of ordinary requests ----------------------------------------------------

#: The hash AlgorithmIdentifier OIDs of CertIDs (TLV) -> (name, digest size).
_HASH_OIDS = {
    bytes.fromhex("06052b0e03021a"): ("sha1", 20),
    bytes.fromhex("0609608648016503040201"): ("sha256", 32),
    bytes.fromhex("0609608648016503040202"): ("sha384", 48),
    bytes.fromhex("0609608648016503040203"): ("sha512", 64),
}


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, start, stop) of the DER TLV at ``pos`` (low tag number, definite minimal length of
    at most 0xFFFF, within ``end``); None otherwise."""
    if pos + 2 > end:
        return None
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        return None
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    elif first == 0x81:
        if pos + 1 > end or data[pos] < 0x80:
            return None
        size = data[pos]
        pos += 1
    elif first == 0x82:
        if pos + 2 > end or data[pos] == 0:
            return None
        size = data[pos] << 8 | data[pos + 1]
        pos += 2
    else:
        return None
    if pos + size > end:
        return None
    return tag, pos, pos + size


def _walk_cert_id(data: bytes, tlv_start: int, start: int, stop: int) -> RequestedCertID | None:
    """The CertID whose TLV starts at ``tlv_start`` and whose contents are start..stop."""
    algorithm_id = _header(data, start, stop)
    if algorithm_id is None or algorithm_id[0] != 0x30:
        return None
    oid = _header(data, algorithm_id[1], algorithm_id[2])
    if oid is None or oid[0] != 0x06:
        return None
    known = _HASH_OIDS.get(data[algorithm_id[1] : oid[2]])
    if known is None or data[oid[2] : algorithm_id[2]] not in (b"", b"\x05\x00"):
        return None
    name, size = known
    name_hash = _header(data, algorithm_id[2], stop)
    if name_hash is None or name_hash[0] != 0x04 or name_hash[2] - name_hash[1] != size:
        return None
    key_hash = _header(data, name_hash[2], stop)
    if key_hash is None or key_hash[0] != 0x04 or key_hash[2] - key_hash[1] != size:
        return None
    serial = _header(data, key_hash[2], stop)
    if serial is None or serial[0] != 0x02 or serial[2] != stop:
        return None
    first, last = serial[1], serial[2]
    if last == first or data[first] >= 0x80 or (last - first > 1 and data[first] == 0 and data[first + 1] < 0x80):
        return None  # empty, negative or not minimal: the full parse decides
    return RequestedCertID(
        hash_algorithm=name,
        name_hash=data[name_hash[1] : name_hash[2]],
        key_hash=data[key_hash[1] : key_hash[2]],
        serial=int.from_bytes(data[first:last], "big"),
        der=data[tlv_start:stop],
    )


def _walk_nonce(data: bytes, start: int, stop: int) -> bytes | None:
    """The nonce Extension TLV of requestExtensions [2] (start..stop: its contents) when it is
    the only extension, not marked critical, and holds an OCTET STRING of 1-32 octets."""
    extensions = _header(data, start, stop)
    if extensions is None or extensions[0] != 0x30 or extensions[2] != stop:
        return None
    extension = _header(data, extensions[1], stop)
    if extension is None or extension[0] != 0x30 or extension[2] != stop:
        return None
    value = extension[1] + len(_NONCE_OID_DER)
    if data[extension[1] : value] != _NONCE_OID_DER:
        return None
    extn_value = _header(data, value, stop)
    if extn_value is None or extn_value[0] != 0x04 or extn_value[2] != stop:
        return None
    nonce = _header(data, extn_value[1], stop)
    if nonce is None or nonce[0] != 0x04 or nonce[2] != stop or not 1 <= nonce[2] - nonce[1] <= MAX_NONCE_OCTETS:
        return None
    return data[extensions[1] : stop]


def walk_request(data: bytes, max_cert_ids: int) -> _ParsedRequest | None:
    """An ordinary, strictly DER-encoded OCSPRequest: v1 (version absent), no requestorName, 1 to
    ``max_cert_ids`` CertIDs with a known hash (parameters absent or NULL), a positive serial
    and no singleRequestExtensions, no extension but an optional non-critical nonce of 1-32
    octets (wrapped in an OCTET STRING, as RFC 8954 says), no signature. None for anything else:
    the caller then parses the request in full."""
    outer = _header(data, 0, len(data))
    if outer is None or outer[0] != 0x30 or outer[2] != len(data):
        return None
    tbs = _header(data, outer[1], outer[2])
    if tbs is None or tbs[0] != 0x30 or tbs[2] != outer[2]:
        return None  # also: optionalSignature present
    _, pos, end = tbs
    request_list = _header(data, pos, end)
    if request_list is None or request_list[0] != 0x30:
        return None  # also: version or requestorName present
    cert_ids: list[RequestedCertID] = []
    pos, list_end = request_list[1], request_list[2]
    while pos < list_end:
        item = _header(data, pos, list_end)
        if item is None or item[0] != 0x30 or len(cert_ids) >= max_cert_ids:
            return None
        cert_id_header = _header(data, item[1], item[2])
        if cert_id_header is None or cert_id_header[0] != 0x30 or cert_id_header[2] != item[2]:
            return None  # also: singleRequestExtensions present
        cert_id = _walk_cert_id(data, item[1], cert_id_header[1], cert_id_header[2])
        if cert_id is None:
            return None
        cert_ids.append(cert_id)
        pos = item[2]
    if not cert_ids:
        return None
    nonce_extension = None
    if list_end < end:
        extensions = _header(data, list_end, end)
        if extensions is None or extensions[0] != 0xA2 or extensions[2] != end:
            return None
        nonce_extension = _walk_nonce(data, extensions[1], end)
        if nonce_extension is None:
            return None
    return _ParsedRequest(cert_ids=cert_ids, nonce_extension=nonce_extension)


def _stored_cert_status(response_der: bytes) -> bytes | None:
    """The certStatus TLV of the one SingleResponse in one of our pre-produced OCSPResponses
    (no version, one SingleResponse); None when it is not of that shape."""
    data = response_der
    outer = _header(data, 0, len(data))
    if outer is None or outer[0] != 0x30 or data[outer[1] : outer[1] + 3] != b"\x0a\x01\x00":
        return None
    response_bytes = _header(data, outer[1] + 3, outer[2])
    if response_bytes is None or response_bytes[0] != 0xA0:
        return None
    sequence = _header(data, response_bytes[1], response_bytes[2])
    if sequence is None or sequence[0] != 0x30:
        return None
    pos = sequence[1] + len(_BASIC_OCSP_RESPONSE_OID)
    if data[sequence[1] : pos] != _BASIC_OCSP_RESPONSE_OID:
        return None
    octets = _header(data, pos, sequence[2])
    basic = None if octets is None or octets[0] != 0x04 else _header(data, octets[1], octets[2])
    tbs = None if basic is None or basic[0] != 0x30 else _header(data, basic[1], basic[2])
    if tbs is None or tbs[0] != 0x30:
        return None
    responder_id = _header(data, tbs[1], tbs[2])
    if responder_id is None or responder_id[0] not in (0xA1, 0xA2):
        return None
    produced_at = _header(data, responder_id[2], tbs[2])
    if produced_at is None or produced_at[0] != 0x18:
        return None
    responses = _header(data, produced_at[2], tbs[2])
    if responses is None or responses[0] != 0x30:
        return None
    single = _header(data, responses[1], responses[2])
    if single is None or single[0] != 0x30 or single[2] != responses[2]:
        return None
    cert_id = _header(data, single[1], single[2])
    if cert_id is None or cert_id[0] != 0x30:
        return None
    status = _header(data, cert_id[2], single[2])
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
        identity = self._directory.identify(cert_id.hash_algorithm, cert_id.name_hash, cert_id.key_hash)
        if identity is None or not identity.served or self._directory.responder(identity.ca_id) is None:
            return None
        return identity.ca_id, cert_id.serial_hex, cert_id.hash_algorithm

    def _respond(self, parsed: _ParsedRequest, source: OCSPStatusSource) -> OCSPAnswer:
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
        body = cert_id.der + cert_status + _generalized_time(now) + _tlv(0xA0, _generalized_time(next_update))
        return _tlv(0x30, body)

    def _sign(
        self,
        responder: ResponderCredential,
        singles: list[bytes],
        now: dt.datetime,
        nonce_extension: bytes | None,
    ) -> bytes:
        """Sign a BasicOCSPResponse in the HSM; the DER is assembled from cached pieces."""
        response_data = responder.responder_id_der + _generalized_time(now) + _tlv(0x30, b"".join(singles))
        if nonce_extension is not None:
            response_data += _tlv(0xA1, _tlv(0x30, nonce_extension))
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
        next_update = self._next_update(now, responder)
        status_der = _cert_status((record, revocation))
        cert_status = "good" if record.status is CertificateStatus.VALID or revocation is None else "revoked"
        for algorithm in PRE_PRODUCED_HASHES:
            cert_id = self._directory.cert_id(record.issuer_id, record.serial_hex, algorithm)
            der = self._sign(responder, [self._single_response(cert_id, status_der, now, next_update)], now, None)
            source.put_response(
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

    def status_changed(
        self, record: CertificateRecord, revocation: RevocationRecord | None, source: OCSPStatusSource
    ) -> None:
        """Replace the stored responses after a revocation, hold or release (same transaction).

        If the HSM cannot sign right now, or there is no valid responder to sign them, the stored
        responses are deleted instead, so a stale ``good`` is never served (nor copied into a
        live answer); requests are then signed live (or get tryLater).
        """
        if record.id is None:
            return
        if self._directory.responder(record.issuer_id) is None:
            source.delete_responses(record.id)
            return
        try:
            self.pre_produce(record, revocation, source)
        except HSMUnavailableError:
            source.delete_responses(record.id)
