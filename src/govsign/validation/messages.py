"""The messages a verification report explains itself with: each a code, a severity and one
complete sentence in English and in Vietnamese (NFC), with the facts of the case filled in.

The catalog is the only place these sentences are written, so both languages always say the
same thing; a test checks that every entry has both, that the Vietnamese is NFC, and that every
placeholder of one language is in the other.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, kw_only=True)
class Message:
    """One explanation in a report."""

    code: str
    """Stable identifier (``signature.hash-mismatch``...), for tools."""
    severity: Severity
    """error (why it failed), warning (why it is not certain) or info."""
    en: str
    """The sentence in English."""
    vi: str
    """The sentence in Vietnamese."""


_ERROR, _WARNING, _INFO = Severity.ERROR, Severity.WARNING, Severity.INFO

#: code -> (severity, English, Vietnamese); ``{name}`` placeholders are filled by :func:`message`.
CATALOG: dict[str, tuple[Severity, str, str]] = {
    # -- the document ------------------------------------------------------------------------
    "document.no-signatures": (
        _INFO,
        "The document carries no digital signature.",
        "Tài liệu không có chữ ký số.",
    ),
    "document.unreadable": (
        _ERROR,
        "The file could not be read as a {kind}: {reason}",
        "Không đọc được tệp dưới dạng {kind}: {reason}",
    ),
    "document.timed-out": (
        _WARNING,
        "The verification did not finish within {seconds} seconds; the result could not be established.",
        "Việc kiểm tra không hoàn thành trong {seconds} giây; chưa xác định được kết quả.",
    ),
    # -- a signature -------------------------------------------------------------------------
    "signature.valid": (
        _INFO,
        "The signature is valid: the document is unchanged since it was signed and the signer's certificate "
        "was valid at the signing time.",
        "Chữ ký hợp lệ: tài liệu không bị thay đổi kể từ khi ký và chứng thư số của người ký còn hiệu lực "
        "tại thời điểm ký.",
    ),
    "signature.hash-mismatch": (
        _ERROR,
        "The signed content was changed after signing: its hash does not match the signature.",
        "Nội dung đã ký bị thay đổi sau khi ký: giá trị băm không khớp với chữ ký.",
    ),
    "signature.crypto-failure": (
        _ERROR,
        "The signature value does not verify with the signer's public key.",
        "Giá trị chữ ký không được xác thực bằng khóa công khai của người ký.",
    ),
    "signature.format": (
        _ERROR,
        "The signature is not correctly formed: {reason}",
        "Chữ ký không đúng định dạng: {reason}",
    ),
    "signature.no-signing-certificate": (
        _ERROR,
        "The signer's certificate is not in the signature.",
        "Chứng thư số của người ký không có trong chữ ký.",
    ),
    "signature.untrusted": (
        _WARNING,
        "The signer's certificate does not lead to a trusted root certification authority.",
        "Chứng thư số của người ký không dẫn tới tổ chức cung cấp dịch vụ chứng thực gốc được tin cậy.",
    ),
    "signature.chain-failure": (
        _WARNING,
        "The certificate chain of the signer could not be validated: {reason}",
        "Không xác thực được chuỗi chứng thư số của người ký: {reason}",
    ),
    "signature.revoked": (
        _ERROR,
        "The signer's certificate was revoked on {revoked_at}, before the signature is proven to exist.",
        "Chứng thư số của người ký đã bị thu hồi vào {revoked_at}, trước thời điểm chữ ký được chứng minh là đã tồn tại.",
    ),
    "signature.revoked-no-poe": (
        _WARNING,
        "The signer's certificate is revoked, and nothing proves that the signature was made before the "
        "revocation (the signature has no time-stamp).",
        "Chứng thư số của người ký đã bị thu hồi và không có bằng chứng chữ ký được tạo trước khi thu hồi "
        "(chữ ký không có dấu thời gian).",
    ),
    "signature.revoked-after": (
        _INFO,
        "The signer's certificate was revoked on {revoked_at}, after the time-stamp proves the signature "
        "existed; the signature stays valid.",
        "Chứng thư số của người ký bị thu hồi vào {revoked_at}, sau thời điểm dấu thời gian chứng minh chữ ký "
        "đã tồn tại; chữ ký vẫn hợp lệ.",
    ),
    "signature.ca-revoked-no-poe": (
        _WARNING,
        "A certification authority certificate of the chain is revoked, and nothing proves the signature "
        "was made before that.",
        "Chứng thư số của một tổ chức chứng thực trong chuỗi đã bị thu hồi và không có bằng chứng chữ ký được "
        "tạo trước thời điểm đó.",
    ),
    "signature.expired": (
        _WARNING,
        "The signer's certificate was not valid at the time the signature is proven to exist "
        "(valid from {not_before} to {not_after}).",
        "Chứng thư số của người ký không còn hiệu lực tại thời điểm chữ ký được chứng minh là đã tồn tại "
        "(hiệu lực từ {not_before} đến {not_after}).",
    ),
    "signature.not-yet-valid": (
        _ERROR,
        "The signature was made before the signer's certificate became valid ({not_before}).",
        "Chữ ký được tạo trước khi chứng thư số của người ký có hiệu lực ({not_before}).",
    ),
    "signature.revocation-unavailable": (
        _WARNING,
        "The revocation status of a certificate of the chain could not be established; try again later.",
        "Không xác định được tình trạng thu hồi của một chứng thư số trong chuỗi; vui lòng thử lại sau.",
    ),
    "signature.weak-algorithm": (
        _ERROR,
        "The signature uses an algorithm or key size that Circular 15/2025 does not accept ({algorithm}).",
        "Chữ ký dùng thuật toán hoặc độ dài khóa không được Thông tư 15/2025 chấp nhận ({algorithm}).",
    ),
    "signature.key-usage": (
        _WARNING,
        "The signer's certificate is not meant for signing documents: {reason}",
        "Chứng thư số của người ký không dùng cho việc ký tài liệu: {reason}",
    ),
    "signature.indeterminate": (
        _WARNING,
        "The validity of the signature could not be established: {reason}",
        "Chưa xác định được tính hợp lệ của chữ ký: {reason}",
    ),
    # -- what the signature covers -----------------------------------------------------------
    "coverage.entire-document": (
        _INFO,
        "The signature covers the whole document.",
        "Chữ ký bao phủ toàn bộ tài liệu.",
    ),
    "coverage.permitted-changes": (
        _INFO,
        "The document was extended after signing only in ways that keep the signature valid ({changes}).",
        "Tài liệu chỉ được bổ sung sau khi ký theo cách không ảnh hưởng đến chữ ký ({changes}).",
    ),
    "coverage.not-permitted": (
        _ERROR,
        "The document was changed after signing in a way the signature does not allow: {changes}",
        "Tài liệu bị thay đổi sau khi ký theo cách chữ ký không cho phép: {changes}",
    ),
    "coverage.partial": (
        _ERROR,
        "The signature covers only part of the document.",
        "Chữ ký chỉ bao phủ một phần tài liệu.",
    ),
    "coverage.unknown": (
        _WARNING,
        "The changes made after signing could not be analysed; the signature is not confirmed.",
        "Không phân tích được các thay đổi sau khi ký; chữ ký chưa được xác nhận.",
    ),
    # -- time-stamps -------------------------------------------------------------------------
    "timestamp.proves": (
        _INFO,
        "A time-stamp from {tsa} proves the signature existed on {time}.",
        "Dấu thời gian của {tsa} chứng minh chữ ký đã tồn tại vào {time}.",
    ),
    "timestamp.none": (
        _INFO,
        "The signature has no time-stamp; its signing time is only what the signer claims.",
        "Chữ ký không có dấu thời gian; thời điểm ký chỉ là thời điểm do người ký khai báo.",
    ),
    "timestamp.invalid": (
        _WARNING,
        "The time-stamp could not be validated: {reason}",
        "Không xác thực được dấu thời gian: {reason}",
    ),
    "timestamp.document-valid": (
        _INFO,
        "A document time-stamp from {tsa} proves the document existed on {time}.",
        "Dấu thời gian tài liệu của {tsa} chứng minh tài liệu đã tồn tại vào {time}.",
    ),
}


def message(code: str, **facts: object) -> Message:
    """The catalog's message ``code`` with ``facts`` filled in (in both languages)."""
    severity, en, vi = CATALOG[code]
    text = {name: str(value) for name, value in facts.items()}
    return Message(
        code=code,
        severity=severity,
        en=en.format(**text),
        vi=unicodedata.normalize("NFC", vi.format(**text)),
    )
