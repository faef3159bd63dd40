"""Subject names: Unicode NFC, UTF8String values, C=VN as PrintableString, Vietnamese UIDs."""

from __future__ import annotations

import unicodedata

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import NameOID

from govsign.errors import InvalidSubjectError
from govsign.pki.names import name_to_text, normalise_name, parse_subject

SUBJECT = "UID=CCCD:077190000123,CN=Nguyễn Thị Yến,OU=Văn phòng,O=Tỉnh ủy Bà Rịa – Vũng Tàu,L=Bà Rịa – Vũng Tàu,C=VN"
NFC = unicodedata.normalize("NFC", SUBJECT)
NFD = unicodedata.normalize("NFD", SUBJECT)


def _string_types(name: x509.Name) -> dict[str, tuple[str, str]]:
    """attribute name -> (ASN.1 string type, value), read back from the DER with asn1crypto."""
    decoded = asn1_x509.Name.load(name.public_bytes())
    return {
        atv["type"].native: (type(atv["value"].chosen).__name__, atv["value"].native)
        for rdn in decoded.chosen
        for atv in rdn
    }


def test_nfd_input_is_different_text_from_nfc() -> None:
    assert NFC != NFD  # otherwise the next tests prove nothing


def test_nfc_and_nfd_subjects_encode_to_identical_der() -> None:
    assert parse_subject(NFD).public_bytes() == parse_subject(NFC).public_bytes()


@pytest.mark.parametrize("text", [NFC, NFD], ids=["nfc", "nfd"])
def test_text_values_are_nfc_utf8string_and_country_printablestring(text: str) -> None:
    types = _string_types(parse_subject(text))
    assert types["country_name"] == ("PrintableString", "VN")
    expected = {
        "user_id": "CCCD:077190000123",
        "common_name": "Nguyễn Thị Yến",
        "organizational_unit_name": "Văn phòng",
        "organization_name": "Tỉnh ủy Bà Rịa – Vũng Tàu",
        "locality_name": "Bà Rịa – Vũng Tàu",
    }
    for attribute, value in expected.items():
        kind, stored = types[attribute]
        assert kind == "UTF8String", attribute
        assert stored == unicodedata.normalize("NFC", value), attribute
        assert unicodedata.is_normalized("NFC", stored), attribute


def test_name_to_text_round_trips() -> None:
    name = parse_subject(NFD)
    assert name_to_text(name) == NFC
    assert parse_subject(name_to_text(name)) == name


def test_normalise_name_converts_an_nfd_name_built_with_cryptography() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, unicodedata.normalize("NFD", "Nguyễn Thị Yến")),
        ]
    )
    normalised = normalise_name(name)
    assert normalised.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Thị Yến"
    assert _string_types(normalised)["country_name"][0] == "PrintableString"


@pytest.mark.parametrize("prefix", ["CCCD", "CMND", "HC", "MST", "MNS"])
def test_every_vietnamese_uid_prefix_is_accepted(prefix: str) -> None:
    name = parse_subject(f"UID={prefix}:0123456789,CN=A,C=VN")
    assert name.get_attributes_for_oid(NameOID.USER_ID)[0].value == f"{prefix}:0123456789"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("UID=SSN:077190000123,CN=Nguyễn Thị Yến,C=VN", "UID", id="bad-uid-prefix"),
        pytest.param("UID=077190000123,CN=Nguyễn Thị Yến,C=VN", "UID", id="uid-without-prefix"),
        pytest.param("UID=cccd:077190000123,CN=Nguyễn Thị Yến,C=VN", "UID", id="lower-case-uid-prefix"),
        pytest.param("CN=Nguyễn Thị Yến,O=Văn phòng", "C=VN", id="missing-country"),
        pytest.param("CN=Nguyễn Thị Yến,C=US", "VN", id="country-not-vn"),
        pytest.param("O=Văn phòng,C=VN", "CN", id="missing-common-name"),
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("this is not a distinguished name", "RFC 4514", id="garbage"),
        pytest.param("CN=,C=VN", "", id="empty-common-name"),
        pytest.param("CN=" + "Y" * 65 + ",C=VN", "", id="common-name-over-64"),
        pytest.param("O=" + "Y" * 65 + ",CN=A,C=VN", "64", id="organization-over-64"),
        pytest.param("CN=A\u0007B,C=VN", "control", id="control-character"),
        pytest.param("CN=A,CN=B,C=VN", "more than one", id="two-common-names"),
        pytest.param("CN=A,C=VN,C=VN", "more than one", id="two-countries"),
        pytest.param("CN=A,1.2.3.4=x,C=VN", "not accepted", id="unknown-attribute"),
    ],
)
def test_bad_subjects_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InvalidSubjectError) as caught:
        parse_subject(text)
    assert fragment in caught.value.message
    assert caught.value.message.endswith(".")


def test_common_name_of_64_ascii_characters_is_accepted() -> None:
    name = parse_subject("CN=" + "Y" * 64 + ",C=VN")
    assert len(name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) == 64


#: 51 characters, 67 bytes in UTF-8: a real agency name.
LONG_VIETNAMESE_CN = "Sở Thông tin và Truyền thông tỉnh Bà Rịa – Vũng Tàu"


def test_vietnamese_common_name_under_64_characters_is_accepted() -> None:
    assert len(LONG_VIETNAMESE_CN) <= 64 < len(LONG_VIETNAMESE_CN.encode("utf-8"))
    name = parse_subject(f"CN={LONG_VIETNAMESE_CN},C=VN")
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == LONG_VIETNAMESE_CN


def test_csr_subject_with_long_vietnamese_cn_is_accepted() -> None:
    """A CN of 51 characters but 67 UTF-8 bytes (which cryptography warns about, counting bytes)
    is within the 64-character limit of RFC 5280: it is kept, in the CSR's order."""
    with pytest.warns(UserWarning):
        attribute = x509.NameAttribute(NameOID.COMMON_NAME, LONG_VIETNAMESE_CN, _validate=False)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), attribute])
    normalised = normalise_name(name)
    assert normalised.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == LONG_VIETNAMESE_CN
    assert normalised.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "VN"
