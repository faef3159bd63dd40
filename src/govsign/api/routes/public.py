"""The public verification page (no login): ``GET /verify`` (``/`` redirects to it), ``POST /verify``
(``multipart/form-data``: the file in ``document``, a detached ``.p7s`` in ``signature``; the
answer is the HTML report page), ``GET``/``POST /v/{reference}`` (the signature a stamp's
reference names, and the check that an uploaded file is that document), the sealed PDF report,
and the page's own stylesheet. Vietnamese by default, English with ``?lang=en`` (remembered in a
cookie). Server-rendered (Jinja2, autoescaped), no JavaScript, no other origin
(Content-Security-Policy ``default-src 'self'``)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Literal

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from govsign.api.deps import get_services, get_settings, source_address
from govsign.errors import GovsignError, NotFoundError
from govsign.services.documents import SpooledDocument
from govsign.services.public_verification import ReferencedSignature, visitor
from govsign.validation.wording import (
    CONCLUSIONS,
    COVERAGES,
    INDICATIONS,
    MODIFICATIONS,
    REVOCATION_STATUSES,
    VIETNAM_TIME,
)

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parent.parent
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)
_STATIC = _HERE / "static"
LANG_COOKIE = "govsign_lang"
#: Every asset is this origin's; nothing runs but the page (no script at all).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
Lang = Literal["vi", "en"]


def _pick(table: dict[Any, tuple[str, str]], lang: Lang) -> dict[Any, str]:
    return {key: texts[0 if lang == "vi" else 1] for key, texts in table.items()}


_TEXTS: dict[str, dict[str, Any]] = {
    "vi": {
        "title": "Kiểm tra chữ ký số",
        "service": "govsign · Kiểm tra chữ ký số",
        "language": "Ngôn ngữ",
        "heading": "Kiểm tra chữ ký số trên tài liệu",
        "upload_heading": "Tải tài liệu lên để kiểm tra",
        "upload_again": "Kiểm tra tài liệu khác",
        "intro": "Chọn tệp PDF đã ký, thư điện tử S/MIME (.eml), hoặc tệp chữ ký .p7s cùng tài liệu của nó. "
        "Tài liệu không được lưu lại; chỉ mã băm của nó được ghi vào nhật ký.",
        "document_label": "Tài liệu (PDF, .eml, hoặc tài liệu đi kèm tệp .p7s)",
        "document_hint": "Tối đa {limit} MB.",
        "signature_label": "Tệp chữ ký .p7s (chỉ khi chữ ký nằm ở tệp riêng)",
        "signature_hint": "Để trống với tệp PDF hoặc thư điện tử.",
        "submit": "Kiểm tra",
        "document_sha256": "Mã băm SHA-256 của tài liệu",
        "validation_time": "Thời điểm kiểm tra",
        "signature": "Chữ ký",
        "signer": "Người ký",
        "agency": "Cơ quan, tổ chức",
        "signing_time": "Thời điểm ký",
        "timestamp": "Dấu thời gian",
        "timestamp_proves": "Chứng minh chữ ký đã có trước",
        "no_timestamp": "Không có dấu thời gian: thời điểm ký do người ký tự khai",
        "validity": "Thời hạn chứng thư số",
        "status_at_signing": "Chứng thư số hợp lệ tại thời điểm ký",
        "coverage": "Phạm vi chữ ký",
        "changed_after": "Thay đổi sau khi ký",
        "level": "Mức chữ ký",
        "pdf_report": "Tải báo cáo kiểm tra (PDF, có chữ ký số của dịch vụ)",
        "reference_heading": "Tra cứu chữ ký theo mã trên con dấu",
        "reference_record": "Chữ ký mang mã",
        "certificate_now": "Trạng thái chứng thư số hiện nay",
        "signed_sha256": "Mã băm SHA-256 của tài liệu đã ký",
        "confirm_heading": "Đối chiếu tài liệu bạn đang giữ",
        "confirm_intro": "Tải tệp lên để xác nhận đó đúng là tài liệu mang chữ ký này, và kiểm tra đầy đủ chữ ký.",
        "same_document": "ĐÚNG LÀ TÀI LIỆU ĐÃ KÝ",
        "other_document": "KHÔNG PHẢI TÀI LIỆU ĐÃ KÝ VỚI MÃ NÀY",
        "back": "Quay lại trang kiểm tra",
        "footer": "Dịch vụ kiểm tra chữ ký số công khai, không cần đăng nhập (Luật Giao dịch điện tử 2023, Điều 24).",
        "yes_no": {True: "Có", False: "Không"},
        "certificate_statuses": {
            "valid": "Còn hiệu lực",
            "revoked": "Đã bị thu hồi",
            "on_hold": "Đang bị tạm dừng",
            "expired": "Đã hết hạn",
        },
    },
    "en": {
        "title": "Digital signature check",
        "service": "govsign · Digital signature check",
        "language": "Language",
        "heading": "Check the digital signatures of a document",
        "upload_heading": "Upload a document to check",
        "upload_again": "Check another document",
        "intro": "Choose a signed PDF, an S/MIME e-mail (.eml), or a .p7s signature file with its document. "
        "The document is not kept; only its hash is written to the audit log.",
        "document_label": "Document (PDF, .eml, or the document of a .p7s file)",
        "document_hint": "At most {limit} MB.",
        "signature_label": "The .p7s signature file (only when the signature is a separate file)",
        "signature_hint": "Leave empty for a PDF or an e-mail.",
        "submit": "Check",
        "document_sha256": "SHA-256 of the document",
        "validation_time": "Checked at",
        "signature": "Signature",
        "signer": "Signer",
        "agency": "Agency",
        "signing_time": "Signing time",
        "timestamp": "Time-stamp",
        "timestamp_proves": "Proves the signature existed by",
        "no_timestamp": "No time-stamp: the signing time is the signer's own claim",
        "validity": "Certificate validity",
        "status_at_signing": "Certificate valid at signing time",
        "coverage": "What the signature covers",
        "changed_after": "Changes after signing",
        "level": "Signature level",
        "pdf_report": "Download the report (PDF, sealed by the service)",
        "reference_heading": "Signature by the reference on a stamp",
        "reference_record": "The signature with reference",
        "certificate_now": "Certificate status now",
        "signed_sha256": "SHA-256 of the signed document",
        "confirm_heading": "Compare the document you hold",
        "confirm_intro": "Upload the file to confirm it is the document this signature is on, and check it fully.",
        "same_document": "THIS IS THE SIGNED DOCUMENT",
        "other_document": "THIS IS NOT THE DOCUMENT SIGNED WITH THIS REFERENCE",
        "back": "Back to the check page",
        "footer": "A public digital signature check, no login needed (Law on E-Transactions 2023, art. 24).",
        "yes_no": {True: "Yes", False: "No"},
        "certificate_statuses": {"valid": "Valid", "revoked": "Revoked", "on_hold": "On hold", "expired": "Expired"},
    },
}
_NO_SIGNATURE = {"vi": "Tài liệu không có chữ ký số", "en": "The document has no digital signature"}


def texts(lang: Lang, upload_limit: int) -> dict[str, Any]:
    """The page's words in ``lang``, with the report's bilingual tables picked."""
    words = dict(_TEXTS[lang])
    words["document_hint"] = words["document_hint"].format(limit=upload_limit // (1024 * 1024))
    words["conclusions"] = {**_pick(CONCLUSIONS, lang), "no-signatures": _NO_SIGNATURE[lang]}
    words["indications"] = _pick(INDICATIONS, lang)
    words["revocation_statuses"] = _pick(REVOCATION_STATUSES, lang)
    words["coverages"] = _pick(COVERAGES, lang)
    words["modifications"] = _pick(MODIFICATIONS, lang)
    return words


def vn_time(value: str | None, lang: Lang = "vi") -> str:
    """A time as Vietnamese write it (``ngày 02 tháng 12 năm 2026, 14:40:35 (UTC+07:00)``) beside
    ISO 8601 in +07:00."""
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    here = moment.astimezone(VIETNAM_TIME).replace(microsecond=0)
    if lang == "vi":
        words = f"ngày {here:%d} tháng {here:%m} năm {here:%Y}, {here:%H:%M:%S} (UTC+07:00)"
    else:
        words = f"{here:%d %B %Y}, {here:%H:%M:%S} (UTC+07:00)"
    return f"{words} · {here.isoformat()}"


def vn_date(value: str | None, lang: Lang = "vi") -> str:
    if not value:
        return "—"
    here = dt.datetime.fromisoformat(str(value)).astimezone(VIETNAM_TIME)
    return f"ngày {here:%d} tháng {here:%m} năm {here:%Y}" if lang == "vi" else f"{here:%d %B %Y}"


def common_name(subject: str | None) -> str:
    """The common name of a subject as the report writes it (``Common Name: X, Organization: ...``)."""
    text = str(subject or "")
    for prefix in ("Common Name: ", "CN="):
        if prefix in text:
            return text.split(prefix, 1)[1].split(", ")[0].split(",")[0]
    return text


_TEMPLATES.filters["vn_time"] = vn_time
_TEMPLATES.filters["common_name"] = common_name
_TEMPLATES.filters["vn_date"] = vn_date


def _lang(request: Request, chosen: str | None = None) -> Lang:
    wanted = chosen or request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "vi"
    return "en" if wanted == "en" else "vi"


def _page(request: Request, template: str, lang: Lang, status: int = 200, **values: Any) -> HTMLResponse:
    settings = get_settings(request)
    other = "en" if lang == "vi" else "vi"
    body = _TEMPLATES.get_template(template).render(
        lang=lang,
        t=texts(lang, settings.public_max_upload_bytes),
        switch_url=f"{request.url.path}?lang={other}",
        pdf_reports=settings.report_seal_credential is not None,  # sealed PDF reports are offered
        **values,
    )
    response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


#: The bilingual pages of refusals (the status, headings and sentences in both languages).
_REFUSALS = {
    400: ("Yêu cầu không hợp lệ", "Bad request"),
    404: ("Không tìm thấy", "Not found"),
    413: ("Tệp quá lớn", "File too large"),
    415: ("Loại tệp không được hỗ trợ", "Unsupported file type"),
    429: ("Quá nhiều yêu cầu", "Too many requests"),
    503: ("Dịch vụ tạm thời không sẵn sàng", "Service temporarily unavailable"),
}


def refusal_page(request: Request, status: int, text_vi: str, text_en: str, **headers: str) -> HTMLResponse:
    heading_vi, heading_en = _REFUSALS.get(status, _REFUSALS[400])
    response = _page(
        request, "message.html", _lang(request), status,
        heading_vi=heading_vi, heading_en=heading_en, text_vi=text_vi, text_en=text_en,
    )  # fmt: skip
    response.headers.update(headers)
    return response


def _error_page(request: Request, exc: GovsignError) -> HTMLResponse:
    from govsign.api.problems import STATUS_BY_KIND

    status = STATUS_BY_KIND.get(exc.kind, 500)
    if status >= 500:
        return refusal_page(
            request, 503, "Không kiểm tra được lúc này; xin thử lại sau ít phút.",
            "The document could not be checked now; please try again in a few minutes.", **{"Retry-After": "5"},
        )  # fmt: skip
    if status == 404:
        return refusal_page(request, 404, "Không có chữ ký nào mang mã này.", "No signature has this reference.")
    return refusal_page(
        request, 400, "Không đọc được tệp đã gửi: " + exc.message, "The file could not be read: " + exc.message
    )


# -- receiving ----------------------------------------------------------------------------------


async def _received(request: Request) -> tuple[SpooledDocument, bytes | None, str | None] | HTMLResponse:
    """The uploaded document (streamed to disk), a detached signature, the chosen language; or
    the refusal page (413, 415, 400)."""
    settings = get_settings(request)
    limit = settings.public_max_upload_bytes
    declared = request.headers.get("content-length", "")
    mb = limit // (1024 * 1024)
    too_large = refusal_page(request, 413, f"Tệp gửi lên lớn hơn {mb} MB.", f"The upload is larger than {mb} MB.")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        return too_large
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        return refusal_page(
            request,
            415,
            "Hãy gửi tệp bằng biểu mẫu trên trang kiểm tra.",
            "Send the file with the form of the check page.",
        )
    try:
        async with request.form(max_files=2, max_fields=2, max_part_size=64 * 1024) as form:
            document_part, signature_part = form.get("document"), form.get("signature")
            lang = form.get("lang")
            if not isinstance(document_part, UploadFile) or not document_part.filename:
                return refusal_page(request, 400, "Hãy chọn một tệp để kiểm tra.", "Choose a file to check.")
            document = SpooledDocument.receive(Path(settings.data_dir) / "spool")
            received = 0
            while chunk := await document_part.read(1 << 20):
                received += len(chunk)
                if received > limit:
                    document.discard()
                    return too_large
                document.write(chunk)
            document.close()
            signature = None
            if isinstance(signature_part, UploadFile) and signature_part.filename:
                signature = await signature_part.read(1024 * 1024 + 1)
                if len(signature) > 1024 * 1024:
                    document.discard()
                    return too_large
    except MultiPartException:
        return refusal_page(request, 400, "Biểu mẫu gửi lên không đọc được.", "The form sent could not be read.")
    except StarletteHTTPException as exc:  # the body grew past the limit while it was read
        if exc.status_code == 413:
            return too_large
        raise
    if document.size == 0:
        document.discard()
        return refusal_page(request, 400, "Tệp gửi lên trống.", "The file sent is empty.")
    return document, signature, lang if isinstance(lang, str) else None


def _kind(document: SpooledDocument, signature: bytes | None) -> str | None:
    with document.open() as stream:
        head = stream.read(1024)
    if signature is not None:
        return "cms"
    if b"%PDF-" in head:
        return "pdf"
    lowered = head.lower()
    if b"content-type:" in lowered or b"mime-version:" in lowered:
        return "smime"
    return None


async def _verified(
    request: Request, document: SpooledDocument, signature: bytes | None
) -> dict[str, Any] | HTMLResponse:
    services = get_services(request)
    kind = _kind(document, signature)
    if kind is None:
        return refusal_page(
            request, 415, "Chỉ kiểm tra được tệp PDF, thư điện tử .eml, hoặc tệp .p7s kèm tài liệu.",
            "Only a PDF, an .eml e-mail, or a .p7s file with its document can be checked.",
        )  # fmt: skip
    try:
        stored = await asyncio.to_thread(
            services.public_verification.verify,
            source_address(request),
            document=document,
            kind=kind,
            signature=signature,
        )
    except GovsignError as exc:
        return _error_page(request, exc)
    return stored.as_json()


async def _admitted(request: Request) -> HTMLResponse | None:
    wait = await asyncio.to_thread(get_services(request).public_verification.admit, source_address(request))
    if not wait:
        return None
    per_minute = get_settings(request).public_verify_per_minute
    return refusal_page(
        request, 429, f"Mỗi địa chỉ được kiểm tra tối đa {per_minute} lần mỗi phút; xin thử lại sau {wait} giây.",
        f"Each address may check {per_minute} times a minute; please try again in {wait} seconds.",
        **{"Retry-After": str(wait)},
    )  # fmt: skip


# -- the pages ----------------------------------------------------------------------------------


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/verify", status_code=307)


@router.get("/verify")
async def verify_page(request: Request) -> HTMLResponse:
    return _page(request, "verify.html", _lang(request), report=None)


@router.post("/verify")
async def verify_upload(request: Request) -> HTMLResponse:
    refused = await _admitted(request)
    if refused is not None:
        return refused
    received = await _received(request)
    if isinstance(received, HTMLResponse):
        return received
    document, signature, lang = received
    try:
        report = await _verified(request, document, signature)
    finally:
        document.discard()
    if isinstance(report, HTMLResponse):
        return report
    return _page(request, "verify.html", _lang(request, lang), report=report)


async def _reference(request: Request, reference: str) -> ReferencedSignature | HTMLResponse:
    try:
        return await asyncio.to_thread(get_services(request).public_verification.referenced, reference)
    except GovsignError as exc:
        return _error_page(request, exc)


@router.get("/v/{reference}")
async def reference_page(request: Request, reference: str) -> HTMLResponse:
    signed = await _reference(request, reference)
    if isinstance(signed, HTMLResponse):
        return signed
    return _page(request, "reference.html", _lang(request), signed=signed, confirmed=None, report=None)


@router.post("/v/{reference}")
async def reference_upload(request: Request, reference: str) -> HTMLResponse:
    refused = await _admitted(request)
    if refused is not None:
        return refused
    signed = await _reference(request, reference)
    if isinstance(signed, HTMLResponse):
        return signed
    received = await _received(request)
    if isinstance(received, HTMLResponse):
        return received
    document, _, lang = received
    try:
        services = get_services(request)
        confirmed = await asyncio.to_thread(services.public_verification.is_the_referenced_document, signed, document)
        report = await _verified(request, document, None) if confirmed else None
    finally:
        document.discard()
    if isinstance(report, HTMLResponse):
        return report
    return _page(request, "reference.html", _lang(request, lang), signed=signed, confirmed=confirmed, report=report)


@router.get("/verify/reports/{verification_id}.pdf")
async def report_pdf(request: Request, verification_id: str) -> Response:
    """The sealed PDF report of a verification made on this page (its id is 128 random bits)."""
    services = get_services(request)
    try:
        if len(verification_id) != 32 or not all(c in "0123456789abcdef" for c in verification_id):
            raise NotFoundError("No such report.")
        pdf = await asyncio.to_thread(
            services.verification_reports.pdf, verification_id, visitor(source_address(request))
        )
    except GovsignError as exc:
        return _error_page(request, exc)
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'inline; filename="bao-cao-{verification_id}.pdf"'}
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.get("/verify/static/{name}")
async def static(name: str) -> Response:
    path = _STATIC / name
    if name != path.name or not path.is_file():
        return Response(status_code=404, headers=SECURITY_HEADERS)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
