"""The TSA hot path's reader of ordinary TimeStampReqs (on the strict reader of :mod:`govsign.der`).

The walker accepts only the ordinary, strictly DER-encoded requests (version 1, a message
imprint with a known hash OID and absent or NULL parameters, an optional policy, nonce and
certReq TRUE, no extensions). For anything else it returns None and the caller parses the request
in full with asn1crypto, which then decides between a grant and the precise rejection.
"""

from __future__ import annotations

from dataclasses import dataclass

from govsign.der import header, is_minimal_integer

#: The longest nonce accepted, in octets of its value (RFC 3161 suggests 64 random bits; a
#: nonce is echoed into every reply, so a long one only makes the reply bigger).
MAX_NONCE_OCTETS = 32


@dataclass(frozen=True, slots=True)
class WalkedRequest:
    """The parts of an ordinary TimeStampReq that a reply copies, as DER."""

    algorithm: bytes
    """The hash algorithm OID TLV of the message imprint."""
    imprint: bytes
    """The MessageImprint TLV, exactly as received (it is DER)."""
    digest_size: int
    """The length of the hashed message."""
    policy: bytes | None
    """The reqPolicy OID TLV, or None."""
    nonce: bytes
    """The nonce INTEGER TLV, or empty."""
    cert_req: bool
    """certReq."""


def walk_request(data: bytes, digest_sizes: dict[bytes, int]) -> WalkedRequest | None:
    """The parts of an ordinary DER TimeStampReq whose hash OID TLV is in ``digest_sizes``
    (with a digest of that size); None for anything else."""
    outer = header(data, 0, len(data))
    if outer is None or outer[0] != 0x30 or outer[2] != len(data):
        return None
    _, pos, end = outer
    if data[pos : pos + 3] != b"\x02\x01\x01":
        return None
    pos += 3
    imprint = header(data, pos, end)
    if imprint is None or imprint[0] != 0x30:
        return None
    imprint_start, imprint_stop = pos, imprint[2]
    algorithm_id = header(data, imprint[1], imprint_stop)
    if algorithm_id is None or algorithm_id[0] != 0x30:
        return None
    oid = header(data, algorithm_id[1], algorithm_id[2])
    if oid is None or oid[0] != 0x06:
        return None
    algorithm = data[algorithm_id[1] : oid[2]]
    digest_size = digest_sizes.get(algorithm)
    if digest_size is None or data[oid[2] : algorithm_id[2]] not in (b"", b"\x05\x00"):
        return None
    hashed = header(data, algorithm_id[2], imprint_stop)
    if hashed is None or hashed[0] != 0x04 or hashed[2] != imprint_stop or hashed[2] - hashed[1] != digest_size:
        return None
    pos = imprint_stop
    policy: bytes | None = None
    nonce = b""
    cert_req = False
    step = 0  # the optional fields, in their order: policy (1), nonce (2), certReq (3)
    while pos < end:
        field = header(data, pos, end)
        if field is None:
            return None
        tag, start, stop = field
        if tag == 0x06 and step < 1 and stop > start and data[stop - 1] < 0x80:
            policy, step = data[pos:stop], 1
        elif tag == 0x02 and step < 2 and is_minimal_integer(data, start, stop) and _short_nonce(data, start, stop):
            nonce, step = data[pos:stop], 2
        elif tag == 0x01 and step < 3 and data[start:stop] == b"\xff":
            cert_req, step = True, 3
        else:
            return None  # extensions, certReq FALSE encoded, anything out of order
        pos = stop
    return WalkedRequest(
        algorithm=algorithm,
        imprint=data[imprint_start:imprint_stop],
        digest_size=digest_size,
        policy=policy,
        nonce=nonce,
        cert_req=cert_req,
    )


def _short_nonce(data: bytes, start: int, stop: int) -> bool:
    """A nonce of at most MAX_NONCE_OCTETS octets (a leading zero octet only makes it positive);
    longer ones go to the full parse, which rejects them."""
    length = stop - start
    if length > 1 and data[start] == 0:
        length -= 1
    return length <= MAX_NONCE_OCTETS
