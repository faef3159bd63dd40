"""The messages a verification report explains itself with: each a code, a severity and one
complete sentence in English and in Vietnamese (NFC), with the facts of the case filled in.

The catalog is the only place these sentences are written, so both languages always say the
same thing; a test checks that every entry has both, that the Vietnamese is NFC, and that every
placeholder of one language is in the other.

Some facts are sentences of their own in English: the ``reason`` pyHanko or pyhanko-certvalidator
gives for a failure (or an EN 319 102-1 sub-indication), and the ``changes`` found after signing.
The Vietnamese sentence gets them in Vietnamese (:func:`vietnamese_reason`,
:func:`vietnamese_changes`): the failure messages those libraries produce are recognised by their
wording (pyHanko 0.38, pyhanko-certvalidator 0.33; a test pins the common ones), and a reason
nobody translated yet becomes a Vietnamese sentence saying so, with the English quoted after it.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable
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
        "The verification reached its time bound of {seconds} seconds before this was validated; "
        "the result could not be established.",
        "Việc kiểm tra đã hết thời hạn {seconds} giây trước khi kiểm tra xong mục này; chưa xác định được kết quả.",
    ),
    "document.time-bound-reached": (
        _WARNING,
        "The verification reached its time bound of {seconds} seconds: the signatures and time-stamps not "
        "validated by then are INDETERMINATE.",
        "Việc kiểm tra đã hết thời hạn {seconds} giây: các chữ ký và dấu thời gian chưa được kiểm tra xong đến "
        "lúc đó có kết quả chưa xác định (INDETERMINATE).",
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
    "signature.chain-too-long": (
        _WARNING,
        "The certificate chain of the signer has {length} certificates, more than the {limit} accepted.",
        "Chuỗi chứng thư số của người ký có {length} chứng thư số, nhiều hơn mức tối đa {limit} được chấp nhận.",
    ),
    "signature.path-building-bounded": (
        _WARNING,
        "The certificate chain of the signer could not be built within the bounds of a verification: "
        "the document offers too many candidate certificates.",
        "Không xây dựng được chuỗi chứng thư số của người ký trong giới hạn của một lần kiểm tra: "
        "tài liệu đưa ra quá nhiều chứng thư số có thể là chứng thư số cấp trên.",
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
    "revocation.stale": (
        _WARNING,
        "The revocation data for {subject} is out of date (issued before the signature is proven to exist "
        "and past its next update), so it does not count.",
        "Thông tin thu hồi của {subject} đã lỗi thời (được phát hành trước thời điểm chữ ký được chứng minh "
        "là đã tồn tại và đã quá thời điểm cập nhật tiếp theo) nên không được sử dụng.",
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
    """The catalog's message ``code`` with ``facts`` filled in (in both languages; a ``reason``
    or ``changes`` given in English is put into Vietnamese for the Vietnamese sentence)."""
    severity, en, vi = CATALOG[code]
    text = {name: str(value) for name, value in facts.items()}
    vietnamese = dict(text)
    if "reason" in text:
        text["reason"] = _sentence_end(" ".join(text["reason"].split()))
        vietnamese["reason"] = vietnamese_reason(text["reason"])
    if "changes" in text:
        vietnamese["changes"] = vietnamese_changes(text["changes"])
    if "tsa" in text:
        vietnamese["tsa"] = vietnamese_name(text["tsa"])
    return Message(
        code=code,
        severity=severity,
        en=en.format(**text),
        vi=unicodedata.normalize("NFC", vi.format(**vietnamese)),
    )


def _sentence_end(text: str) -> str:
    return text if text.endswith((".", "!", "?", ")")) else text + "."


# -- reasons in English, in Vietnamese -----------------------------------------------------------

#: The EN 319 102-1 sub-indications (EU DSS spelling, and pyHanko's own names for two of them)
#: in Vietnamese, when one is given as the reason.
SUB_INDICATIONS_VI: dict[str, str] = {
    "FORMAT_FAILURE": "chữ ký không đúng định dạng",
    "HASH_FAILURE": "giá trị băm của nội dung đã ký không khớp",
    "SIG_CRYPTO_FAILURE": "giá trị chữ ký không được xác thực bằng khóa công khai",
    "REVOKED": "chứng thư số đã bị thu hồi",
    "EXPIRED": "chứng thư số đã hết hạn",
    "NOT_YET_VALID": "chứng thư số chưa có hiệu lực",
    "SIG_CONSTRAINTS_FAILURE": "chữ ký không đáp ứng các ràng buộc của chính sách kiểm tra",
    "CHAIN_CONSTRAINTS_FAILURE": "chuỗi chứng thư số không đáp ứng các ràng buộc của chính sách kiểm tra",
    "CERTIFICATE_CHAIN_GENERAL_FAILURE": "chuỗi chứng thư số không hợp lệ",
    "GENERIC": "chuỗi chứng thư số không hợp lệ",
    "CRYPTO_CONSTRAINTS_FAILURE": "thuật toán mật mã hoặc độ dài khóa không được chấp nhận",
    "CRYPTO_CONSTRAINTS_FAILURE_NO_POE": "thuật toán mật mã không còn được chấp nhận và không có bằng chứng "
    "tồn tại từ trước thời điểm đó",
    "POLICY_PROCESSING_ERROR": "không xử lý được chính sách chữ ký",
    "SIGNATURE_POLICY_NOT_AVAILABLE": "không có chính sách chữ ký được yêu cầu",
    "TIMESTAMP_ORDER_FAILURE": "thứ tự thời gian của các dấu thời gian không hợp lệ",
    "NO_SIGNING_CERTIFICATE_FOUND": "không tìm thấy chứng thư số của người ký",
    "NO_CERTIFICATE_CHAIN_FOUND": "không tìm thấy chuỗi chứng thư số dẫn tới tổ chức chứng thực gốc được tin cậy",
    "REVOKED_NO_POE": "chứng thư số đã bị thu hồi và không có bằng chứng chữ ký được tạo trước khi thu hồi",
    "REVOKED_CA_NO_POE": "chứng thư số của một tổ chức chứng thực trong chuỗi đã bị thu hồi và không có bằng "
    "chứng chữ ký được tạo trước đó",
    "OUT_OF_BOUNDS_NO_POE": "thời điểm kiểm tra nằm ngoài thời hạn hiệu lực của chứng thư số và không có bằng "
    "chứng tồn tại trong thời hạn đó",
    "REVOCATION_OUT_OF_BOUNDS_NO_POE": "thời điểm kiểm tra nằm ngoài thời hạn hiệu lực của chứng thư số và không "
    "có bằng chứng tồn tại trong thời hạn đó",
    "OUT_OF_BOUNDS_NOT_REVOKED": "thời điểm kiểm tra nằm ngoài thời hạn hiệu lực của chứng thư số, dù chứng thư "
    "số không bị thu hồi",
    "NO_POE": "không có bằng chứng về thời điểm tồn tại",
    "TRY_LATER": "chưa có đủ thông tin thu hồi; vui lòng thử lại sau",
    "SIGNED_DATA_NOT_FOUND": "không tìm thấy dữ liệu đã ký",
}

#: pyhanko-certvalidator's names for certificates in a path (``describe_cert``), in Vietnamese.
_POSITIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(?:the )?end-entity certificate$", re.I), "chứng thư số của người ký"),
    (re.compile(r"^(?:the )?intermediate certificate (\d+)$", re.I), "chứng thư số trung gian thứ {0}"),
    (re.compile(r"^(?:the )?trust anchor$", re.I), "chứng thư số gốc được tin cậy"),
)

#: Revocation reasons as asn1crypto's ``CRLReason.human_friendly`` words them.
_REVOCATION_REASONS: dict[str, str] = {
    "an unspecified reason": "không nêu lý do",
    "a compromised key": "lộ khóa bí mật",
    "the CA being compromised": "tổ chức chứng thực bị lộ khóa",
    "an affiliation change": "thay đổi thông tin",
    "certificate supersession": "được thay thế bằng chứng thư số khác",
    "a cessation of operation": "ngừng hoạt động",
    "a certificate hold": "tạm dừng hiệu lực",
    "removal from the CRL": "gỡ khỏi danh sách thu hồi",
    "privilege withdrawl": "thu hồi quyền",
    "the AA being compromised": "tổ chức cấp thuộc tính bị lộ khóa",
}


def _position(english: str) -> str:
    for pattern, vietnamese in _POSITIONS:
        found = pattern.match(english.strip())
        if found:
            return vietnamese.format(*found.groups())
    return "một chứng thư số trong chuỗi"


def _revinfo(english: str) -> str:
    return "phản hồi OCSP" if "OCSP" in english else "danh sách thu hồi (CRL)"


_Fill = Callable[[re.Match[str]], str]

#: pyHanko's and pyhanko-certvalidator's failure messages (and govsign's own reasons), by what
#: they say, most specific first: each pattern is searched for in the reason, and the first
#: that matches gives the Vietnamese.
_REASONS: tuple[tuple[re.Pattern[str], _Fill], ...] = tuple(
    (re.compile(pattern, re.I), fill)
    for pattern, fill in (
        # changes the difference analysis refuses (pyhanko/sign/diff_analysis)
        (
            r"unexplained xrefs in revision (?P<new>\d+).*?objects from revision (?P<old>\d+) were replaced",
            lambda m: (
                f"phiên bản {m['new']} thay thế các đối tượng của phiên bản {m['old']} mà không có lý do được chấp nhận"
            ),
        ),
        (
            r"unexplained xrefs",
            lambda m: "một phiên bản sau thay thế các đối tượng đã ký mà không có lý do được chấp nhận",
        ),
        (r"were freed in the revision|object freeing", lambda m: "một đối tượng đã có khi ký bị xóa (giải phóng)"),
        (r"Unexpected change to page tree structure", lambda m: "cấu trúc cây trang bị thay đổi"),
        (r"Fields? .* (?:was|were) deleted after signing", lambda m: "trường biểu mẫu bị xóa sau khi ký"),
        (r"Annotations .* were deleted", lambda m: "chú thích bị xóa sau khi ký"),
        (r"newly added annotations .* were not", lambda m: "chú thích mới thêm không được chấp nhận"),
        (r"form field .* is locked", lambda m: "trường biểu mẫu đã bị khóa khi ký"),
        (r"changed field type|Type of form field", lambda m: "loại của một trường biểu mẫu bị thay đổi"),
        (r"More form fields added than expected", lambda m: "số trường biểu mẫu được thêm vượt mức cho phép"),
        (r"clobbers or reuses", lambda m: "một đối tượng đã ký bị ghi đè hoặc dùng lại"),
        (
            r"Update of (?P<ref>.+?) is (?:not|only) allowed",
            lambda m: f"cập nhật đối tượng {m['ref']} không được phép",
        ),
        (
            r"Dict keys differ|Values for dict key|was deleted from dictionary|overridden by non-dict",
            lambda m: "nội dung một từ điển PDF đã ký bị thay đổi",
        ),
        (r"appearance", lambda m: "hình hiển thị (appearance) của một chú thích bị thay đổi không hợp lệ"),
        (r"Metadata|XMP", lambda m: "siêu dữ liệu (XMP) được cập nhật không hợp lệ"),
        (r"\bVRI\b|keys in DSS", lambda m: "dữ liệu kiểm tra (DSS) được cập nhật không hợp lệ"),
        (
            r"difference analysis policy does not allow",
            lambda m: "chính sách phân tích thay đổi không cho phép thay đổi này",
        ),
        # revoked (RevokedError)
        (
            r"(?P<source>CRL|OCSP response) indicates (?P<cert>.+?) was revoked at (?P<time>[\d:]+) on "
            r"(?P<date>[\d-]+), due to (?P<why>[^.]+)",
            lambda m: (
                f"{_revinfo(m['source'])} cho biết {_position(m['cert'])} đã bị thu hồi lúc {m['time']} "
                f"ngày {m['date']} (lý do: {_REVOCATION_REASONS.get(m['why'], 'không rõ')})"
            ),
        ),
        (r"\brevoked\b", lambda m: "một chứng thư số trong chuỗi đã bị thu hồi"),
        # validity period (ExpiredError, NotYetValidError)
        (
            r"because (?P<cert>.+?) expired (?P<when>[\d-]+ [\d:]+Z?)",
            lambda m: f"{_position(m['cert'])} đã hết hạn vào {m['when']}",
        ),
        (
            r"because (?P<cert>.+?) is not valid until (?P<when>[\d-]+ [\d:]+Z?)",
            lambda m: f"{_position(m['cert'])} chưa có hiệu lực trước {m['when']}",
        ),
        (r"predates cert validity period", lambda m: "chữ ký được tạo trước khi chứng thư số có hiệu lực"),
        (r"\bexpired\b", lambda m: "một chứng thư số trong chuỗi đã hết hạn"),
        (r"not (?:yet )?valid (?:until|before)", lambda m: "một chứng thư số trong chuỗi chưa có hiệu lực"),
        # freshness of revocation data
        (
            r"(?P<kind>Delta CRL|CRL|OCSP response) is not recent enough",
            lambda m: f"{_revinfo(m['kind'])} đã lỗi thời (quá thời điểm cập nhật tiếp theo)",
        ),
        (
            r"(?P<kind>Delta CRL|CRL|OCSP response) is too recent",
            lambda m: f"{_revinfo(m['kind'])} được phát hành sau thời điểm kiểm tra",
        ),
        (
            r"(?P<kind>Delta CRL|CRL|OCSP response) freshness could not be established",
            lambda m: f"không xác định được độ mới của {_revinfo(m['kind'])}",
        ),
        # revocation data missing or unusable
        (
            r"no revocation information could be found",
            lambda m: "không tìm thấy thông tin thu hồi (CRL hoặc OCSP) cho một chứng thư số trong chuỗi",
        ),
        (
            r"an applicable (?P<kind>CRL|OCSP response) could not be found|mandatory (?P<kind2>CRL|OCSP) check",
            lambda m: (
                f"không tìm thấy {_revinfo(m['kind'] or m['kind2'] or '')} phù hợp cho một chứng thư số trong chuỗi"
            ),
        ),
        (
            r"(?:CRL|OCSP)\w* (?:fetch|download)|unable to fetch|failed to fetch|fetch(?:ing)? failed",
            lambda m: "không tải được thông tin thu hồi từ địa chỉ ghi trong chứng thư số",
        ),
        (r"revocation checks? failed", lambda m: "việc kiểm tra tình trạng thu hồi không thành công"),
        (
            r"(?:Delta )?CRL signature could not be verified|not authorized to sign CRLs",
            lambda m: "chữ ký trên danh sách thu hồi (CRL) không hợp lệ",
        ),
        (r"OCSP response .*(?:signature|provenance)|OCSP responder", lambda m: "phản hồi OCSP không hợp lệ"),
        # the path
        (
            r'Unable to build a validation path for the certificate "(?P<cert>[^"]*)" - no issuer matching '
            r'"(?P<issuer>[^"]*)" was found',
            lambda m: (
                f"không xây dựng được chuỗi chứng thư số cho “{vietnamese_name(m['cert'])}”: không tìm thấy "
                f"tổ chức cấp “{vietnamese_name(m['issuer'])}”"
            ),
        ),
        (
            r"Path building stopped",
            lambda m: "việc xây dựng chuỗi chứng thư số dừng lại ở giới hạn của một lần kiểm tra",
        ),
        (
            r"no (?:valid )?(?:issuer|path)|could not (?:build|find) .*path|unable to build",
            lambda m: "không tìm thấy chuỗi chứng thư số dẫn tới tổ chức chứng thực gốc được tin cậy",
        ),
        (
            r"exceeds the maximum path length",
            lambda m: "chuỗi chứng thư số dài hơn mức tối đa cho phép",
        ),
        (r"is not a CA\b", lambda m: "một chứng thư số trong chuỗi không phải của tổ chức chứng thực"),
        (
            r"not allowed to sign certificates",
            lambda m: "một chứng thư số trong chuỗi không được phép ký chứng thư số",
        ),
        (
            r"permitted namespace|excluded from the namespace|name constraint",
            lambda m: "tên trong một chứng thư số vi phạm ràng buộc tên của tổ chức cấp",
        ),
        (
            r"valid set of policies|policy processing|polic(?:y|ies)\b.*(?:tree|graph)",
            lambda m: "chuỗi chứng thư số không đáp ứng chính sách chứng thư được yêu cầu",
        ),
        (
            r"unsupported critical extension",
            lambda m: "một chứng thư số có phần mở rộng bắt buộc (critical) không được hỗ trợ",
        ),
        (
            r"not valid for the (?:purpose|key usage)|key usage|extended key usage",
            lambda m: "chứng thư số không được phép dùng cho mục đích này",
        ),
        # algorithms
        (
            r"disallowed signature (?:mechanism|algorithm) (?P<algorithm>[\w-]+)",
            lambda m: f"dùng thuật toán chữ ký không được chấp nhận ({m['algorithm']})",
        ),
        (
            r"message digest (?P<algorithm>[\w-]+) is not allowed",
            lambda m: f"dùng thuật toán băm không được chấp nhận ({m['algorithm']})",
        ),
        (
            r"weak|disallowed|not allowed by the .*polic",
            lambda m: "dùng thuật toán mật mã không được chấp nhận",
        ),
        # signatures and digests
        (
            r"signature of (?P<cert>.+?) could not be verified",
            lambda m: f"chữ ký trên {_position(m['cert'])} không hợp lệ",
        ),
        (
            r"imprint",
            lambda m: "giá trị băm trong dấu thời gian không khớp với dữ liệu được đóng dấu",
        ),
        (
            r"digest (?:does not|doesn't) match|digest mismatch|hash (?:does not|doesn't) match",
            lambda m: "giá trị băm của nội dung đã ký không khớp",
        ),
        (
            r"Message digest not found|Content type not found|cardinality for signing certificate|Signing "
            r"certificate attribute does not match|algorithm protection|Content type .* did not match",
            lambda m: "thuộc tính đã ký của chữ ký bị thiếu hoặc không hợp lệ",
        ),
        (
            r"signature (?:is )?(?:invalid|could not be verified|not valid)|invalid signature",
            lambda m: "giá trị chữ ký không hợp lệ",
        ),
        # time-stamps and proof of existence
        (r"No signature timestamp present", lambda m: "chữ ký không có dấu thời gian"),
        (
            r"timestamp in PoE chain",
            lambda m: "không xác thực được dấu thời gian tài liệu dùng làm bằng chứng tồn tại",
        ),
        (
            r"SignedData does not encapsulate TSTInfo",
            lambda m: "dấu thời gian không chứa thông tin thời gian (TSTInfo)",
        ),
        (
            r"POE for signature available, but could not obtain sufficient POE",
            lambda m: (
                "có bằng chứng tồn tại của chữ ký nhưng không đủ bằng chứng về thời điểm phát hành thông tin thu hồi"
            ),
        ),
        (
            r"Past signature validation did not manage",
            lambda m: "việc kiểm tra tại thời điểm trong quá khứ không cải thiện được kết quả",
        ),
        (
            r"Validation of signature at current time failed with indication (?P<indication>\w+)",
            lambda m: (
                "việc kiểm tra chữ ký tại thời điểm hiện tại không thành công ("
                f"{SUB_INDICATIONS_VI.get(m['indication'], m['indication'])})"
            ),
        ),
        (r"time.?stamp", lambda m: "dấu thời gian không hợp lệ"),
        # the structure of the signature and of the file
        (
            r"CMS structural error|Structural error in a CMS|while parsing asn1crypto|Insufficient data|"
            r"not a DER|ASN\.1",
            lambda m: "cấu trúc CMS của chữ ký bị hỏng",
        ),
        (
            r"Expected object ID .* does not match actual",
            lambda m: "cấu trúc tệp PDF bị hỏng (số hiệu đối tượng không khớp với bảng tham chiếu chéo)",
        ),
        (
            r"'\w+' object (?:is not|has no|cannot be)|odd number of elements",
            lambda m: "từ điển chữ ký hoặc một đối tượng PDF mà nó dùng có giá trị sai kiểu",
        ),
        (
            r"Signature object type must be",
            lambda m: "từ điển chữ ký trong tệp PDF có kiểu không đúng",
        ),
        (
            r"\b(?:xref|startxref|trailer|endobj|endstream)\b|malformed PDF|PDF file",
            lambda m: "cấu trúc tệp PDF bị hỏng",
        ),
        (r"time bound", lambda m: "việc kiểm tra đã hết thời hạn cho phép"),
        # govsign's own placeholders
        (r"^see the coverage of the signature\.?$", lambda m: "xem phạm vi bao phủ của chữ ký"),
        (r"^unknown( changes)?\.?$", lambda m: "không rõ nguyên nhân"),
    )
)


def vietnamese_reason(reason: str) -> str:
    """The Vietnamese of a failure reason given in English (one sentence, ending with a full
    stop): an EN 319 102-1 sub-indication, or a message of pyHanko or pyhanko-certvalidator.
    One nobody translated yet is said to be so, with the English quoted."""
    text = " ".join(reason.split()).rstrip(".")
    if text in SUB_INDICATIONS_VI:
        return f"{SUB_INDICATIONS_VI[text]} ({text})."
    for pattern, fill in _REASONS:
        found = pattern.search(text)
        if found:
            return fill(found).rstrip(".") + "."
    return f"bộ kiểm tra báo một lỗi chưa có bản dịch tiếng Việt (chi tiết bằng tiếng Anh: “{text}”)."


#: What ``pdf._modifications`` says changed after signing (each item of ``changes``).
_CHANGES: tuple[tuple[re.Pattern[str], _Fill], ...] = tuple(
    (re.compile(pattern, re.I), fill)
    for pattern, fill in (
        (
            r"^validation data and document time-stamps \(DSS\) added$",
            lambda m: "bổ sung dữ liệu kiểm tra và dấu thời gian tài liệu (DSS)",
        ),
        (r"^lta updates$", lambda m: "bổ sung dữ liệu kiểm tra dài hạn"),
        (r"^form filling$", lambda m: "điền biểu mẫu"),
        (r"^annotations$", lambda m: "thêm hoặc sửa chú thích"),
        (r"^other$", lambda m: "thay đổi khác"),
        (r"^none$", lambda m: "không có"),
        (r"^the signature does not cover a whole revision$", lambda m: "chữ ký không bao phủ trọn một phiên bản"),
        (
            r"^fields filled or read-only when signed were changed: (?P<fields>.*)$",
            lambda m: f"các trường đã có giá trị hoặc chỉ đọc khi ký bị thay đổi: {m['fields']}",
        ),
        (r"^unknown changes$", lambda m: "các thay đổi không xác định"),
        (
            r"^refused by the difference analysis: (?P<why>.*)$",
            lambda m: "phân tích thay đổi không chấp nhận: " + vietnamese_reason(m["why"]).rstrip("."),
        ),
    )
)


def vietnamese_changes(changes: str) -> str:
    """The Vietnamese of a ``; ``-separated list of changes found after signing: the phrases
    govsign words itself, form field names as they are, anything else as a reason."""
    items = []
    for item in changes.split("; "):
        for pattern, fill in _CHANGES:
            found = pattern.match(item.strip())
            if found:
                items.append(fill(found))
                break
        else:
            items.append(item)  # a form field's name
    return "; ".join(items)


#: The attribute labels of asn1crypto's ``Name.human_friendly``, in Vietnamese.
_NAME_LABELS: dict[str, str] = {
    "Common Name": "Tên",
    "Organization": "Tổ chức",
    "Organizational Unit": "Đơn vị",
    "Country": "Quốc gia",
    "State/Province": "Tỉnh/Thành phố",
    "Locality": "Địa phương",
    "Email Address": "Thư điện tử",
    "Serial Number": "Số hiệu",
    "User ID": "Mã định danh",
}
_NAME_LABEL = re.compile(r"(?:(?<=^)|(?<=, ))(" + "|".join(map(re.escape, _NAME_LABELS)) + r"): ")


def vietnamese_name(name: str) -> str:
    """A distinguished name as asn1crypto words it for people (``Common Name: ..., Country: VN``),
    with the attribute labels in Vietnamese."""
    return _NAME_LABEL.sub(lambda m: _NAME_LABELS[m[1]] + ": ", name)
