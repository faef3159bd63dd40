"""The report's message catalog: every message in both languages, Vietnamese in NFC, the same
facts in each, and complete sentences; the reasons pyHanko and pyhanko-certvalidator give (in
English) are put into Vietnamese for the Vietnamese sentence."""

from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from govsign.validation.messages import CATALOG, Severity, message, vietnamese_reason
from govsign.validation.paths import PathParameters, validate_certificate_path
from govsign.validation.report import SUB_INDICATIONS


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_each_message_says_the_same_in_both_languages(code: str) -> None:
    severity, en, vi = CATALOG[code]
    assert isinstance(severity, Severity)
    assert _fields(en) == _fields(vi), code
    assert unicodedata.normalize("NFC", vi) == vi
    assert en.rstrip().endswith((".", ")", "}")) and vi.rstrip().endswith((".", ")", "}")), code
    assert any(ord(c) > 127 for c in vi), f"{code}: the Vietnamese text has no Vietnamese letters"


def test_facts_are_filled_in_and_the_result_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Bộ Tư pháp")
    filled = message("timestamp.proves", tsa=decomposed, time="2026-12-03T09:00:00+07:00")
    assert "Bộ Tư pháp" in filled.vi and unicodedata.is_normalized("NFC", filled.vi)
    assert "2026-12-03T09:00:00+07:00" in filled.en


# -- pyHanko's and pyhanko-certvalidator's reasons, in Vietnamese ---------------------------------

#: English words that must not be left in a Vietnamese sentence (names and identifiers aside).
ENGLISH = re.compile(
    r"\b(the|because|could|not|certificate|revoked|expired|signature|found|validated|valid|path|issuer|"
    r"recent|enough|present|timestamp|error|failed|revocation|due|until)\b",
    re.I,
)
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, *, ca: bool) -> bytes:  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def _crl(issuer: ec.EllipticCurvePrivateKey, this_update: dt.datetime, next_update: dt.datetime, *revoked: int) -> bytes:  # fmt: skip
    builder = x509.CertificateRevocationListBuilder().issuer_name(_name("Cục Chứng thực Thử"))
    builder = builder.last_update(this_update).next_update(next_update)
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - DAY)
        entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(issuer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def reasons() -> dict[str, str]:
    """What pyhanko-certvalidator says, run through our path validation: the reasons exactly
    as the installed library words them."""
    root_key, leaf_key, stranger = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate("Cục Chứng thực Thử", "Cục Chứng thực Thử", root_key, root_key, ca=True)
    leaf = _certificate("Nguyễn Văn An", "Cục Chứng thực Thử", leaf_key, root_key, ca=False)
    forged = _certificate("Nguyễn Văn An", "Cục Chứng thực Thử", leaf_key, stranger, ca=False)
    orphan = _certificate("Nguyễn Văn An", "Tổ chức Lạ", leaf_key, stranger, ca=False)
    current = _crl(root_key, NOW - DAY, NOW + DAY)

    def reason(end_entity: bytes, crls: tuple[bytes, ...] = (current,), at: dt.datetime = NOW, **parameters: object) -> str:  # fmt: skip
        verdict = validate_certificate_path(
            end_entity,
            trust_anchors=[root],
            crls=crls,
            at=at,
            parameters=PathParameters(**parameters),  # type: ignore[arg-type]
        )
        assert not verdict.valid and verdict.reason, verdict
        return verdict.reason

    return {
        "expired": reason(leaf, at=NOW + 60 * DAY, crls=(_crl(root_key, NOW + 59 * DAY, NOW + 61 * DAY),)),
        "not-yet-valid": reason(leaf, at=NOW - 2 * DAY, crls=(_crl(root_key, NOW - 3 * DAY, NOW - DAY),)),
        "revoked": reason(leaf, crls=(_crl(root_key, NOW - DAY, NOW + DAY, 7),)),
        "no-issuer": reason(orphan),
        "signature-invalid": reason(forged),
        "weak-algorithm": reason(leaf, weak_digests=frozenset({"sha256"})),
        "no-revocation-data": reason(leaf, crls=()),
        "stale-revocation-data": reason(leaf, crls=(_crl(root_key, NOW - 10 * DAY, NOW - 9 * DAY),)),
    }


#: pyHanko's own failure messages (pyhanko/sign/validation/ades.py, generic_cms.py, 0.38), and
#: pyhanko-certvalidator's for OCSP, as they are raised.
PYHANKO = {
    "no-timestamp": "No signature timestamp present",
    "poe-chain": "Could not validate timestamp in PoE chain at current time.",
    "poe-revinfo": (
        "POE for signature available, but could not obtain sufficient POE for the issuance of the revocation "
        "information"
    ),
    "past-validation": "Past signature validation did not manage to improve current time result.",
    "current-time": "Validation of signature at current time failed with indication HASH_FAILURE. Past validation "
    "not applicable.",
    "predates": "Signature predates cert validity period",
    "cms-structure": "CMS structural error: detached signatures should not have encapsulated data",
    "digest-attribute": "Message digest not found in signature, or multiple message digest attributes present.",
    "asn1": "Insufficient data - 48 bytes requested but only 46 available\n    while parsing asn1crypto.cms.ContentInfo",
    "tst-info": "SignedData does not encapsulate TSTInfo",
    "ocsp-stale": "OCSP response is not recent enough (2026-12-13 12:24:37+00:00 > 2026-12-04 12:24:38+00:00)",
    "digest-policy": "The selected message digest sha1 is not allowed by the signature mechanism policy.",
}


def _vietnamese_only(vi: str) -> None:
    assert unicodedata.is_normalized("NFC", vi)
    assert "tiếng Anh" not in vi, vi  # a translation, not the English quoted
    assert not ENGLISH.search(vi), vi
    assert any(ord(c) > 127 for c in vi)
    assert vi.endswith(".")


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "not-yet-valid",
        "revoked",
        "no-issuer",
        "signature-invalid",
        "weak-algorithm",
        "no-revocation-data",
        "stale-revocation-data",
    ],
)
def test_what_the_path_validator_says_is_put_into_vietnamese(reasons: dict[str, str], case: str) -> None:
    english = reasons[case]
    filled = message("signature.chain-failure", reason=english)
    assert " ".join(english.split()).rstrip(".") in filled.en
    _vietnamese_only(filled.vi)
    assert filled.vi.startswith("Không xác thực được chuỗi chứng thư số của người ký: ")


def test_the_facts_of_a_reason_stay_in_its_vietnamese(reasons: dict[str, str]) -> None:
    assert "chứng thư số của người ký đã bị thu hồi" in vietnamese_reason(reasons["revoked"])
    assert "lộ khóa bí mật" in vietnamese_reason(reasons["revoked"])
    assert "không tìm thấy tổ chức cấp “Tên: Tổ chức Lạ”" in vietnamese_reason(reasons["no-issuer"])
    assert "đã hết hạn vào" in vietnamese_reason(reasons["expired"])
    assert "chưa có hiệu lực trước" in vietnamese_reason(reasons["not-yet-valid"])
    assert "sha256" in vietnamese_reason(reasons["weak-algorithm"])
    assert "lỗi thời" in vietnamese_reason(reasons["stale-revocation-data"])


@pytest.mark.parametrize("case", sorted(PYHANKO))
def test_what_pyhanko_says_is_put_into_vietnamese(case: str) -> None:
    for code in ("signature.format", "signature.indeterminate", "timestamp.invalid"):
        _vietnamese_only(message(code, reason=PYHANKO[case]).vi)


@pytest.mark.parametrize("sub_indication", sorted(SUB_INDICATIONS))
def test_a_sub_indication_given_as_the_reason(sub_indication: str) -> None:
    filled = message("timestamp.invalid", reason=sub_indication)
    assert filled.vi.endswith(f"({sub_indication}).")
    _vietnamese_only(filled.vi.replace(f"({sub_indication})", ""))


def test_a_reason_nobody_translated_is_quoted_after_a_vietnamese_sentence() -> None:
    filled = message("signature.indeterminate", reason="The flux capacitor is misaligned")
    assert filled.en == "The validity of the signature could not be established: The flux capacitor is misaligned."
    assert filled.vi == (
        "Chưa xác định được tính hợp lệ của chữ ký: bộ kiểm tra báo một lỗi chưa có bản dịch tiếng Việt "
        "(chi tiết bằng tiếng Anh: “The flux capacitor is misaligned”)."
    )


def test_the_changes_after_signing_in_vietnamese() -> None:
    filled = message(
        "coverage.not-permitted",
        changes="form filling; Hồ sơ.Số văn bản; the signature does not cover a whole revision",
    )
    assert filled.vi == (
        "Tài liệu bị thay đổi sau khi ký theo cách chữ ký không cho phép: điền biểu mẫu; Hồ sơ.Số văn bản; "
        "chữ ký không bao phủ trọn một phiên bản"
    )
    lta = message("coverage.permitted-changes", changes="validation data and document time-stamps (DSS) added")
    assert "(bổ sung dữ liệu kiểm tra và dấu thời gian tài liệu (DSS))" in lta.vi
    refused = message(
        "coverage.not-permitted",
        changes="other; refused by the difference analysis: The refs [<Reference 12 0>] were freed in the revision "
        "provided. The configured difference analysis policy does not allow object freeing.",
    )
    assert refused.vi.endswith(
        ": thay đổi khác; phân tích thay đổi không chấp nhận: một đối tượng đã có khi ký bị xóa (giải phóng)"
    )


def test_names_keep_their_values_with_vietnamese_labels() -> None:
    tsa = "Common Name: Máy chủ cấp dấu thời gian, Organization: Bộ Tư pháp, Country: VN"
    filled = message("timestamp.proves", tsa=tsa, time="2026-12-03T09:00:00+07:00")
    assert filled.en.startswith(f"A time-stamp from {tsa} proves")
    assert filled.vi.startswith(
        "Dấu thời gian của Tên: Máy chủ cấp dấu thời gian, Tổ chức: Bộ Tư pháp, Quốc gia: VN chứng minh"
    )
