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
        return x509.NameAttribute(oid, value, _ASN1Type.PrintableString)
    if oid == NameOID.SERIAL_NUMBER:
        if not _PRINTABLE.match(value):
            raise InvalidSubjectError("The subject serialNumber may hold only letters, digits and simple punctuation.")
        return x509.NameAttribute(oid, value, _ASN1Type.PrintableString)
    if oid in (NameOID.EMAIL_ADDRESS, NameOID.DOMAIN_COMPONENT):
        if not value.isascii():
            raise InvalidSubjectError(f"The subject attribute {label} must be ASCII.")
        return x509.NameAttribute(oid, value, _ASN1Type.IA5String)
    if oid == NameOID.USER_ID and not _UID_PATTERN.match(value):
        raise InvalidSubjectError(
            f"The UID '{value}' must start with one of {', '.join(p + ':' for p in UID_PREFIXES)} "
            "followed by the document number."
        )
    return x509.NameAttribute(oid, value, _ASN1Type.UTF8String)


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
    try:
        name = x509.Name.from_rfc4514_string(text, _EXTRA_NAMES)
    except ValueError:
        raise InvalidSubjectError(
            "The subject is not a valid RFC 4514 name such as 'CN=Nguyễn Văn A,O=Bộ Tư pháp,C=VN'."
        ) from None
    return normalise_name(name)


def name_to_text(name: x509.Name) -> str:
    """RFC 4514 text of a name, with the attribute names used above."""
    return name.rfc4514_string({oid: label for oid, label in _OID_NAMES.items()})


def common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""
