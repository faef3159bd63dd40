"""The words of verification reports, in Vietnamese and English: the conclusion, indications,
revocation statuses, coverage, changes after signing; and Vietnam's time. Shared by the sealed
PDF report and the public verification page (pure data, no rendering library)."""

from __future__ import annotations

import datetime as dt

#: Vietnam's time (UTC+07:00, no daylight saving): what a clerk reads the times in.
VIETNAM_TIME = dt.timezone(dt.timedelta(hours=7))


CONCLUSIONS = {
    "valid": ("HỢP LỆ", "VALID"),
    "invalid": ("KHÔNG HỢP LỆ", "INVALID"),
    "indeterminate": ("CHƯA XÁC ĐỊNH ĐƯỢC", "INDETERMINATE"),
    "no-signatures": ("TÀI LIỆU KHÔNG CÓ CHỮ KÝ SỐ", "NO SIGNATURES"),
}
INDICATIONS = {
    "TOTAL_PASSED": ("Hợp lệ", "passed"),
    "TOTAL_FAILED": ("Không hợp lệ", "failed"),
    "INDETERMINATE": ("Chưa xác định được", "indeterminate"),
}
REVOCATION_STATUSES = {
    "good": ("Chưa bị thu hồi", "not revoked"),
    "revoked": ("Đã bị thu hồi", "revoked"),
    "unknown": ("Không rõ trạng thái", "unknown"),
    "unavailable": ("Không có thông tin thu hồi", "unavailable"),
}
REVOCATION_SOURCES = {
    "embedded-ocsp": ("OCSP kèm trong tài liệu", "OCSP embedded in the document"),
    "embedded-crl": ("CRL kèm trong tài liệu", "CRL embedded in the document"),
    "fetched-ocsp": ("OCSP tải về khi kiểm tra", "OCSP fetched when verifying"),
    "fetched-crl": ("CRL tải về khi kiểm tra", "CRL fetched when verifying"),
    "govsign-records": ("Hồ sơ của tổ chức cung cấp dịch vụ", "the issuing service's own records"),
}
COVERAGES = {
    "entire-document": ("Toàn bộ tài liệu", "the entire document"),
    "entire-revision": ("Toàn bộ phiên bản được ký", "the entire signed revision"),
    "partial": ("Chỉ một phần tài liệu", "part of the document only"),
}
MODIFICATIONS = {
    "none": ("Không có thay đổi sau khi ký", "no changes after signing"),
    "permitted": ("Có thay đổi được phép sau khi ký", "permitted changes after signing"),
    "not-permitted": ("Có thay đổi không được phép sau khi ký", "changes that are not permitted after signing"),
}
DOCUMENT_TYPES = {
    "pdf": ("Tệp PDF", "PDF"),
    "cms": ("Chữ ký CMS/CAdES", "CMS/CAdES signature"),
    "smime": ("Thư điện tử S/MIME", "S/MIME message"),
    "timestamp": ("Dấu thời gian RFC 3161", "RFC 3161 time-stamp"),
}
SEVERITIES = {"error": ("Lỗi", "error"), "warning": ("Cảnh báo", "warning"), "info": ("Thông tin", "info")}
YES_NO = {True: ("Có", "yes"), False: ("Không", "no")}
