"""The one DER module: the seam between pyca/cryptography and asn1crypto objects (DER bytes), the
encoder of DER assembled from pieces (OCSP responses, time-stamp tokens, CMS), and the strict
reader of the hot paths' ordinary requests.

Hot paths (OCSP, TSA, CMS) splice DER from cached pieces instead of re-encoding asn1crypto
objects, which is many times slower once pyHanko is loaded. Their request walkers accept only
minimal, definite-length DER; for anything else they return None and the caller parses in full.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization

# -- cryptography <-> asn1crypto ---------------------------------------------------------------


def certificate_to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


# -- encoding ----------------------------------------------------------------------------------


def length_octets(length: int) -> bytes:
    """The DER length octets of a content of ``length`` bytes."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, *contents: bytes) -> bytes:
    """A DER element with a one-octet tag whose contents are the concatenation of ``contents``."""
    body = contents[0] if len(contents) == 1 else b"".join(contents)
    return bytes((tag,)) + length_octets(len(body)) + body


def integer(value: int) -> bytes:
    """A DER INTEGER (minimal two's complement)."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


_GENERALIZED_TIMES: dict[int, bytes] = {}


def generalized_time(moment: dt.datetime) -> bytes:
    """A DER GeneralizedTime in whole seconds, UTC (``YYYYMMDDHHMMSSZ``, RFC 5280 4.1.2.5.2).

    The few seconds a hot path uses at a time (now, now + validity) are cached: strftime is a
    noticeable part of a live OCSP answer."""
    second = int(moment.timestamp())
    der = _GENERALIZED_TIMES.get(second)
    if der is None:
        if len(_GENERALIZED_TIMES) >= 64:
            _GENERALIZED_TIMES.clear()
        der = tlv(0x18, moment.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii"))
        _GENERALIZED_TIMES[second] = der
    return der


def der_sorted(encodings: Iterable[bytes]) -> list[bytes]:
    """The elements of a SET OF in DER order: ascending encodings, compared as octet strings with the
    shorter padded with zero octets at its end (X.690 11.6); duplicates dropped."""
    items = list(dict.fromkeys(encodings))
    width = max((len(item) for item in items), default=0)
    return sorted(items, key=lambda item: item.ljust(width, b"\0"))


# -- reading -----------------------------------------------------------------------------------


def header(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, start, stop) of the DER element at ``pos``: its one-octet tag and where its contents
    start and stop. None unless the tag has a low number, the length is definite, minimal and at
    most 0xFFFF, and the contents end within ``end``."""
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
        if pos + 2 > end or data[pos] == 0 or (data[pos] << 8 | data[pos + 1]) < 0x100:
            return None
        size = data[pos] << 8 | data[pos + 1]
        pos += 2
    else:
        return None
    if pos + size > end:
        return None
    return tag, pos, pos + size


def is_minimal_integer(data: bytes, start: int, stop: int) -> bool:
    """True when data[start:stop] is the content of a minimal DER INTEGER."""
    if stop <= start:
        return False
    if stop - start == 1:
        return True
    first, second = data[start], data[start + 1]
    return not ((first == 0 and second < 0x80) or (first == 0xFF and second >= 0x80))
