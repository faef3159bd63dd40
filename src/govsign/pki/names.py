"""Subject names for Vietnamese public-service certificates.

Text attributes are UTF8String in Unicode NFC (input in NFD or any other form is normalised),
``C`` is a PrintableString (and must be ``VN``), ``serialNumber`` a PrintableString,
``emailAddress`` and ``DC`` IA5String. UID values carry the prefixes used in Vietnam:
``CCCD:`` (citizen identity card), ``CMND:`` (old identity card), ``HC:`` (passport),
``MST:`` (tax code), ``MNS:`` (budget-relation unit code).
"""

from __future__ import annotations

import re
import unicodedata
import warnings

from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from govsign.errors import InvalidSubjectError

UID_PREFIXES = ("CCCD", "CMND", "HC", "MST", "MNS")
_UID_PATTERN = re.compile(r"^(CCCD|CMND|HC|MST|MNS):[0-9A-Z][0-9A-Z-]{0,39}$")

#: Attribute names accepted in RFC 4514 strings beyond cryptography's own (C, CN, DC, L, O, OU,
#: ST, STREET, UID).
_EXTRA_NAMES: dict[str, ObjectIdentifier] = {
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "E": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "title": NameOID.TITLE,
    "T": NameOID.TITLE,
    "GN": NameOID.GIVEN_NAME,
    "givenName": NameOID.GIVEN_NAME,
    "SN": NameOID.SURNAME,
    "surname": NameOID.SURNAME,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
    "uid": NameOID.USER_ID,
    "userId": NameOID.USER_ID,
}

#: RFC 5280 upper bounds (characters) for the attributes we accept.
_UPPER_BOUNDS: dict[ObjectIdentifier, int] = {
    NameOID.COMMON_NAME: 64,
    NameOID.ORGANIZATION_NAME: 64,
    NameOID.ORGANIZATIONAL_UNIT_NAME: 64,
    NameOID.LOCALITY_NAME: 128,
    NameOID.STATE_OR_PROVINCE_NAME: 128,
    NameOID.TITLE: 64,
    NameOID.SERIAL_NUMBER: 64,
    NameOID.EMAIL_ADDRESS: 255,
    NameOID.GIVEN_NAME: 64,
    NameOID.SURNAME: 64,
    NameOID.STREET_ADDRESS: 128,
    NameOID.USER_ID: 64,
    NameOID.ORGANIZATION_IDENTIFIER: 64,
    NameOID.DOMAIN_COMPONENT: 63,
}

_PRINTABLE = re.compile(r"^[A-Za-z0-9 '()+,\-./:=?]*$")

_OID_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COUNTRY_NAME: "C",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.TITLE: "title",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}


def _attribute(oid: ObjectIdentifier, value: str, string_type: _ASN1Type | None = None) -> x509.NameAttribute[str]:
    """A name attribute without cryptography's length check, which counts UTF-8 bytes; RFC 5280's
    upper bounds count characters and are checked in _normalise_attribute."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x509.NameAttribute(oid, value, string_type, _validate=False)


def _normalise_attribute(attribute: x509.NameAttribute[str]) -> x509.NameAttribute[str]:
    oid = attribute.oid
    label = _OID_NAMES.get(oid)
    if label is None:
        raise InvalidSubjectError(f"The subject attribute {oid.dotted_string} is not accepted in our certificates.")
    value = unicodedata.normalize("NFC", str(attribute.value)).strip()
    if not value:
        raise InvalidSubjectError(f"The subject attribute {label} is empty.")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise InvalidSubjectError(f"The subject attribute {label} contains control characters.")
    bound = _UPPER_BOUNDS.get(oid)
    if bound is not None and len(value) > bound:
        raise InvalidSubjectError(
            f"The subject attribute {label} is {len(value)} characters long; at most {bound} are allowed."
        )
    if oid == NameOID.COUNTRY_NAME:
        if value != "VN":
            raise InvalidSubjectError(f"The country (C) must be VN, not '{value}'.")
        return _attribute(oid, value, _ASN1Type.PrintableString)
    if oid == NameOID.SERIAL_NUMBER:
        if not _PRINTABLE.match(value):
            raise InvalidSubjectError("The subject serialNumber may hold only letters, digits and simple punctuation.")
        return _attribute(oid, value, _ASN1Type.PrintableString)
    if oid in (NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT):
        if not value.isascii():
            raise InvalidSubjectError(f"The subject attribute {label} must be ASCII.")
        return _attribute(oid, value, _ASN1Type.IA5String)
    if oid == NameOID.USER_ID and not _UID_PATTERN.match(value):
        raise InvalidSubjectError(
            f"The UID '{value}' must start with one of {', '.join(p + ':' for p in UID_PREFIXES)} "
            "followed by the document number."
        )
    return _attribute(oid, value, _ASN1Type.UTF8String)


def normalise_name(name: x509.Name) -> x509.Name:
    """The same name with every value in NFC and the string types our profiles prescribe."""
    rdns = [x509.RelativeDistinguishedName([_normalise_attribute(a) for a in rdn]) for rdn in name.rdns]  # type: ignore[arg-type]
    result = x509.Name(rdns)
    if not result.get_attributes_for_oid(NameOID.COMMON_NAME):
        raise InvalidSubjectError("The subject needs a common name (CN).")
    if not result.get_attributes_for_oid(NameOID.COUNTRY_NAME):
        raise InvalidSubjectError("The subject needs the country C=VN.")
    for oid in (NameOID.COUNTRY_NAME, NameOID.COMMON_NAME):
        if len(result.get_attributes_for_oid(oid)) > 1:
            raise InvalidSubjectError(f"The subject has more than one {_OID_NAMES[oid]}.")
    return result


def parse_subject(text: str) -> x509.Name:
    """Parse an RFC 4514 string (most specific RDN first, as ``openssl -nameopt RFC2253`` prints)."""
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise InvalidSubjectError("The subject is empty.")
    rdns = []
    for rdn_text in reversed(_split_unescaped(text, ",")):
        attributes = []
        for pair in _split_unescaped(rdn_text, "+"):
            attribute_type, separator, raw_value = pair.partition("=")
            attribute_type = attribute_type.strip()
            oid = _attribute_oid(attribute_type)
            if not separator or oid is None:
                raise InvalidSubjectError(
                    f"The subject part '{pair.strip()[:40]}' is not RFC 4514 TYPE=value with a known type "
                    "(CN, O, OU, L, ST, C, UID, emailAddress, serialNumber, title, GN, SN, STREET, DC)."
                )
            attributes.append(_attribute(oid, _unescape(raw_value.strip())))
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return normalise_name(x509.Name(rdns))


_BUILTIN_NAMES: dict[str, ObjectIdentifier] = {
    "CN": NameOID.COMMON_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "UID": NameOID.USER_ID,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
}
_OID_TEXT = re.compile(r"^[0-2](\.[0-9]+)+$")


def _attribute_oid(attribute_type: str) -> ObjectIdentifier | None:
    if attribute_type.upper() in _BUILTIN_NAMES:
        return _BUILTIN_NAMES[attribute_type.upper()]
    for name, oid in _EXTRA_NAMES.items():
        if name.lower() == attribute_type.lower():
            return oid
    if _OID_TEXT.match(attribute_type):
        return ObjectIdentifier(attribute_type)
    return None


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise InvalidSubjectError("The subject ends with a lone backslash.")
    parts.append("".join(current))
    if any(not part.strip() for part in parts):
        raise InvalidSubjectError("The subject has an empty part (two separators in a row, or one at an end).")
    return parts


def _unescape(value: str) -> str:
    """Undo RFC 4514 escapes: backslash before a special character, or two hex digits (UTF-8)."""
    if value.startswith("#"):
        raise InvalidSubjectError("Hex-encoded (#...) subject values are not accepted; give the text.")
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            pair = value[index + 1 : index + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out += bytes.fromhex(pair)
                index += 3
                continue
            out += value[index + 1].encode("utf-8")
            index += 2
            continue
        out += char.encode("utf-8")
        index += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSubjectError("The subject has a hex escape that is not valid UTF-8.") from None


def name_to_text(name: x509.Name) -> str:
    """RFC 4514 text of a name, with the attribute names used above."""
    return name.rfc4514_string({oid: label for oid, label in _OID_NAMES.items()})


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""
