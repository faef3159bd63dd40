"""OCSP requests (RFC 6960 4.1): the strict DER walker that reads ordinary requests, and the full
asn1crypto parse that decides anything else. Both give the same :class:`ParsedRequest` for what
the walker takes (a test compares them on every request shape it knows)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from asn1crypto import core
from asn1crypto import ocsp as asn1_ocsp

from govsign.der import header

#: The CertID hash algorithms answered for.
CERT_ID_HASHES = ("sha1", "sha256", "sha384", "sha512")
#: The longest nonce accepted (RFC 8954: 1 to 32 octets).
MAX_NONCE_OCTETS = 32
#: id-pkix-ocsp-nonce, DER.
NONCE_OID_DER = bytes.fromhex("06092b0601050507300102")


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


class MalformedRequestError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class ParsedRequest:
    cert_ids: list[RequestedCertID]
    """The CertIDs asked about, in request order."""
    nonce_extension: bytes | None
    """The DER Extension to echo in responseExtensions (RFC 8954), or None."""


def parse_request(request_der: bytes, max_cert_ids: int) -> ParsedRequest:
    """Parse and check an OCSPRequest; MalformedRequestError for anything wrong.

    Ordinary requests are read by ``walk_request``; anything it does not take (another shape,
    a bad encoding, a bad nonce, too many CertIDs) is parsed in full, which decides."""
    walked = walk_request(request_der, max_cert_ids)
    if walked is not None:
        return walked
    return _parse_request_asn1(request_der, max_cert_ids)


def _parse_request_asn1(request_der: bytes, max_cert_ids: int) -> ParsedRequest:
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
    return ParsedRequest(cert_ids=cert_ids, nonce_extension=nonce_extension)


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


def _walk_cert_id(data: bytes, tlv_start: int, start: int, stop: int) -> RequestedCertID | None:
    """The CertID whose TLV starts at ``tlv_start`` and whose contents are start..stop."""
    algorithm_id = header(data, start, stop)
    if algorithm_id is None or algorithm_id[0] != 0x30:
        return None
    oid = header(data, algorithm_id[1], algorithm_id[2])
    if oid is None or oid[0] != 0x06:
        return None
    known = _HASH_OIDS.get(data[algorithm_id[1] : oid[2]])
    if known is None or data[oid[2] : algorithm_id[2]] not in (b"", b"\x05\x00"):
        return None
    name, size = known
    name_hash = header(data, algorithm_id[2], stop)
    if name_hash is None or name_hash[0] != 0x04 or name_hash[2] - name_hash[1] != size:
        return None
    key_hash = header(data, name_hash[2], stop)
    if key_hash is None or key_hash[0] != 0x04 or key_hash[2] - key_hash[1] != size:
        return None
    serial = header(data, key_hash[2], stop)
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
    extensions = header(data, start, stop)
    if extensions is None or extensions[0] != 0x30 or extensions[2] != stop:
        return None
    extension = header(data, extensions[1], stop)
    if extension is None or extension[0] != 0x30 or extension[2] != stop:
        return None
    value = extension[1] + len(NONCE_OID_DER)
    if data[extension[1] : value] != NONCE_OID_DER:
        return None
    extn_value = header(data, value, stop)
    if extn_value is None or extn_value[0] != 0x04 or extn_value[2] != stop:
        return None
    nonce = header(data, extn_value[1], stop)
    if nonce is None or nonce[0] != 0x04 or nonce[2] != stop or not 1 <= nonce[2] - nonce[1] <= MAX_NONCE_OCTETS:
        return None
    return data[extensions[1] : stop]


def walk_request(data: bytes, max_cert_ids: int) -> ParsedRequest | None:
    """An ordinary, strictly DER-encoded OCSPRequest: v1 (version absent), no requestorName, 1 to
    ``max_cert_ids`` CertIDs with a known hash (parameters absent or NULL), a positive serial
    and no singleRequestExtensions, no extension but an optional non-critical nonce of 1-32
    octets (wrapped in an OCTET STRING, as RFC 8954 says), no signature. None for anything else:
    the caller then parses the request in full."""
    outer = header(data, 0, len(data))
    if outer is None or outer[0] != 0x30 or outer[2] != len(data):
        return None
    tbs = header(data, outer[1], outer[2])
    if tbs is None or tbs[0] != 0x30 or tbs[2] != outer[2]:
        return None  # also: optionalSignature present
    _, pos, end = tbs
    request_list = header(data, pos, end)
    if request_list is None or request_list[0] != 0x30:
        return None  # also: version or requestorName present
    cert_ids: list[RequestedCertID] = []
    pos, list_end = request_list[1], request_list[2]
    while pos < list_end:
        item = header(data, pos, list_end)
        if item is None or item[0] != 0x30 or len(cert_ids) >= max_cert_ids:
            return None
        cert_id_header = header(data, item[1], item[2])
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
        extensions = header(data, list_end, end)
        if extensions is None or extensions[0] != 0xA2 or extensions[2] != end:
            return None
        nonce_extension = _walk_nonce(data, extensions[1], end)
        if nonce_extension is None:
            return None
    return ParsedRequest(cert_ids=cert_ids, nonce_extension=nonce_extension)
