"""The verification report as a PDF a clerk can print or forward: Vietnamese first, English
beside it, with the signer, the times, the revocation status, the coverage and every message.

It renders the report as the API gives it (the JSON of :func:`govsign.validation.report.report_json`)
with an embedded TrueType font that has the Vietnamese glyphs, so ``pdftotext`` gives the texts
back exactly. Sealing the result is the caller's (a PAdES seal of the service's credential).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from govsign.validation.wording import (
    CONCLUSIONS,
    COVERAGES,
    DOCUMENT_TYPES,
    INDICATIONS,
    MODIFICATIONS,
    REVOCATION_SOURCES,
    REVOCATION_STATUSES,
    SEVERITIES,
    VIETNAM_TIME,
    YES_NO,
)

_FAMILY = "ReportSans"
_INK = (20, 20, 20)
_MUTED = (90, 90, 90)
_RULE = (160, 160, 160)
_VERDICT_COLOURS = {
    "valid": (0, 110, 40),
    "invalid": (170, 0, 0),
    "indeterminate": (150, 90, 0),
    "no-signatures": (60, 60, 60),
}


@dataclass(frozen=True, kw_only=True)
class ReportFonts:
    """The TrueType fonts of the report (both need the Vietnamese glyphs)."""

    regular: Path
    """The text font."""
    bold: Path | None = None
    """Headings and labels; the regular font when None."""

    @classmethod
    def beside(cls, regular: Path) -> ReportFonts:
        """The font and its bold face when that lies beside it (``DejaVuSans-Bold.ttf``)."""
        bold = regular.with_name(f"{regular.stem}-Bold{regular.suffix}")
        return cls(regular=regular, bold=bold if bold.is_file() else None)


@dataclass(frozen=True, kw_only=True)
class ReportIssuer:
    """Who issues the report: named in its heading and footer."""

    service_name: str
    """The verification service, as the report names it."""
    seal_subject: str | None = None
    """The subject of the seal's certificate, when the report is sealed."""


def bilingual(table: Mapping[Any, tuple[str, str]], key: Any) -> str:
    """``Vietnamese / English`` for a known value, the value itself otherwise."""
    texts = table.get(key)
    return f"{texts[0]} / {texts[1]}" if texts is not None else str(key)


def local_time(value: str | None) -> str:
    """An ISO 8601 time as a clerk reads it: Vietnam's time, then UTC."""
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    here = moment.astimezone(VIETNAM_TIME)
    utc = moment.astimezone(dt.UTC)
    return f"{here:%d/%m/%Y %H:%M:%S} (UTC+07:00) · {utc:%Y-%m-%d %H:%M:%S} UTC"


class _ReportPDF(FPDF):
    def __init__(self, issuer: ReportIssuer, report_id: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self._issuer = issuer
        self._report_id = report_id

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(_FAMILY, size=7)
        self.set_text_color(*_MUTED)
        sealed = (
            f"Báo cáo được niêm phong bằng chữ ký số của {self._issuer.seal_subject} / "
            f"sealed with the digital signature of {self._issuer.seal_subject}"
            if self._issuer.seal_subject
            else ""
        )
        self.multi_cell(0, 3.2, sealed, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.cell(0, 3.2, f"{self._issuer.service_name} · {self._report_id} · {self.page_no()}/{{nb}}", align="C")


def render_report_pdf(
    report: Mapping[str, Any],
    fonts: ReportFonts,
    issuer: ReportIssuer,
    *,
    created: dt.datetime,
) -> bytes:
    """The report (its API JSON) as an A4 PDF, Vietnamese and English."""
    pdf = _ReportPDF(issuer, str(report.get("id", "")))
    pdf.add_font(_FAMILY, "", str(fonts.regular))
    pdf.add_font(_FAMILY, "B", str(fonts.bold or fonts.regular))
    pdf.set_lang("vi")
    pdf.set_title("Báo cáo kiểm tra chữ ký số / Signature verification report")
    pdf.set_author(issuer.service_name)
    pdf.set_creator(issuer.service_name)
    pdf.set_creation_date(created)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(16, 14, 16)
    pdf.alias_nb_pages()
    pdf.add_page()
    writer = _Writer(pdf)
    writer.heading(report)
    for index, signature in enumerate(report.get("signatures", []), start=1):
        writer.signature(index, signature)
    timestamps = report.get("timestamps", [])
    if timestamps:
        writer.section("Dấu thời gian của tài liệu / Document time-stamps")
        for number, stamp in enumerate(timestamps, start=1):
            writer.rows([(f"Dấu thời gian {number} / time-stamp {number}", _timestamp(stamp))])
    if report.get("messages"):
        writer.section("Thông báo về tài liệu / About the document")
        writer.messages(report["messages"])
    writer.closing()
    return bytes(pdf.output())


class _Writer:
    """Lays the report out on the pages: sections of label/value rows."""

    _LABEL_WIDTH = 58.0

    def __init__(self, pdf: FPDF) -> None:
        self._pdf = pdf

    def _text(self, size: float, *, bold: bool = False, colour: tuple[int, int, int] = _INK) -> None:
        self._pdf.set_font(_FAMILY, "B" if bold else "", size)
        self._pdf.set_text_color(*colour)

    def heading(self, report: Mapping[str, Any]) -> None:
        pdf = self._pdf
        self._text(15, bold=True)
        pdf.multi_cell(0, 7, "BÁO CÁO KIỂM TRA CHỮ KÝ SỐ", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self._text(11, colour=_MUTED)
        pdf.multi_cell(0, 5.5, "Digital signature verification report", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
        conclusion = str(report.get("conclusion", ""))
        vi, en = CONCLUSIONS.get(conclusion, (conclusion, conclusion))
        self._text(13, bold=True, colour=_VERDICT_COLOURS.get(conclusion, _INK))
        pdf.multi_cell(0, 7, f"Kết luận: {vi} / Conclusion: {en}", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        signatures = report.get("signatures", [])
        self.rows(
            [
                ("Mã báo cáo / report id", str(report.get("id", ""))),
                ("Thời điểm kiểm tra / validation time", local_time(report.get("validation_time"))),
                ("Loại tài liệu / document type", bilingual(DOCUMENT_TYPES, report.get("document_type"))),
                ("Mã băm SHA-256 của tài liệu / document SHA-256", str(report.get("document_sha256", ""))),
                ("Số chữ ký / signatures", str(len(signatures))),
            ]
        )

    def section(self, title: str) -> None:
        pdf = self._pdf
        pdf.ln(3)
        if pdf.get_y() > pdf.h - 45:
            pdf.add_page()
        self._text(11.5, bold=True)
        pdf.multi_cell(0, 6, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(*_RULE)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.ln(1.5)

    def rows(self, rows: Iterable[tuple[str, str]]) -> None:
        pdf = self._pdf
        value_width = pdf.w - pdf.l_margin - pdf.r_margin - self._LABEL_WIDTH
        for label, value in rows:
            value = value or "—"
            self._text(8.5, bold=True, colour=_MUTED)
            label_lines = self._lines(self._LABEL_WIDTH - 2, label)
            self._text(8.5)
            height = max(label_lines, self._lines(value_width, value)) * 4.4
            if pdf.get_y() + height > pdf.h - pdf.b_margin:
                pdf.add_page()
            top = pdf.get_y()
            self._text(8.5, bold=True, colour=_MUTED)
            pdf.multi_cell(self._LABEL_WIDTH - 2, 4.4, label, align="L", new_x=XPos.RIGHT, new_y=YPos.TOP)
            self._text(8.5)
            pdf.set_xy(pdf.l_margin + self._LABEL_WIDTH, top)
            pdf.multi_cell(value_width, 4.4, value, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_y(top + height + 0.8)

    def _lines(self, width: float, text: str) -> int:
        """How many lines ``text`` takes in a cell of ``width`` with the current font."""
        lines = self._pdf.multi_cell(width, 4.4, text, align="L", dry_run=True, output="LINES")
        assert isinstance(lines, list)
        return len(lines)

    def messages(self, messages: Sequence[Mapping[str, Any]]) -> None:
        self.rows(
            (bilingual(SEVERITIES, message.get("severity")), f"{message.get('vi', '')}\n{message.get('en', '')}")
            for message in messages
        )

    def signature(self, index: int, signature: Mapping[str, Any]) -> None:
        title = f"Chữ ký {index} / Signature {index}"
        if signature.get("field_name"):
            title += f" — {signature['field_name']}"
        self.section(title)
        signer = signature.get("signer") or {}
        indication = bilingual(INDICATIONS, signature.get("indication"))
        if signature.get("sub_indication"):
            indication += f" ({signature['sub_indication']})"
        rows = [
            ("Kết quả / indication", indication),
            ("Định dạng / level", str(signature.get("level", ""))),
            ("Người ký / signer", signer.get("common_name") or "—"),
            ("Cơ quan, tổ chức / organization", signer.get("organization") or "—"),
            ("Đơn vị quản lý chứng thư / unit", signer.get("organizational_unit") or "—"),
            ("Định danh / identifier (UID)", signer.get("uid") or "—"),
            ("Thư điện tử / e-mail", signer.get("email") or "—"),
            ("Số hiệu chứng thư / certificate serial", signer.get("serial") or "—"),
            ("Tổ chức cấp chứng thư / issuing CA", signer.get("issuer") or "—"),
            (
                "Thời hạn chứng thư / certificate validity",
                f"{local_time(signer.get('not_before'))}\n→ {local_time(signer.get('not_after'))}" if signer else "—",
            ),
            ("Thời điểm ký (người ký khai) / claimed signing time", local_time(signature.get("claimed_signing_time"))),
            ("Thời điểm ký được chứng minh / best signature time", local_time(signature.get("best_signature_time"))),
            ("Toàn vẹn / integrity", _integrity(signature.get("integrity"))),
            (
                "Chứng thư hợp lệ tại thời điểm ký / certificate valid at signing time",
                bilingual(YES_NO, bool(signature.get("valid_at_signing_time"))),
            ),
            ("Phạm vi ký / coverage", bilingual(COVERAGES, signature.get("coverage"))),
            (
                "Thay đổi sau khi ký / modifications after signing",
                "\n".join(
                    [bilingual(MODIFICATIONS, signature.get("modifications_after_signing"))]
                    + [f"• {change}" for change in signature.get("modifications", [])]
                ),
            ),
        ]
        if signature.get("revision") is not None:
            rows.insert(2, ("Phiên bản tài liệu / revision", str(signature["revision"])))
        for number, stamp in enumerate(signature.get("timestamps", []), start=1):
            rows.append((f"Dấu thời gian {number} / time-stamp {number}", _timestamp(stamp)))
        for entry in signature.get("revocation", []):
            rows.append(("Tình trạng thu hồi / revocation", _revocation(entry)))
        chain = signature.get("chain", [])
        if chain:
            rows.append(
                (
                    "Chuỗi chứng thư / certificate chain",
                    "\n".join(
                        f"{position}. {item.get('subject', '')} (số hiệu / serial {item.get('serial', '')}; "
                        f"{_date(item.get('not_before'))} → {_date(item.get('not_after'))})"
                        for position, item in enumerate(chain, start=1)
                    ),
                )
            )
        self.rows(rows)
        if signature.get("messages"):
            self._text(9, bold=True)
            self._pdf.multi_cell(0, 5, "Thông báo / Messages", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.messages(signature["messages"])

    def closing(self) -> None:
        pdf = self._pdf
        pdf.ln(4)
        self._text(7.5, colour=_MUTED)
        pdf.multi_cell(
            0,
            3.6,
            "Báo cáo này trình bày kết quả kiểm tra chữ ký số theo ETSI EN 319 102-1 tại thời điểm kiểm tra nêu "
            "trên; tài liệu được kiểm tra không được lưu, chỉ lưu mã băm của tài liệu. "
            "This report gives the result of validating the signatures (ETSI EN 319 102-1) at the validation time "
            "above; the document itself is not kept, only its hash.",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )


def _integrity(value: Any) -> str:
    if value is None:
        return "—"
    return "Nguyên vẹn / intact" if value else "Đã bị thay đổi / altered"


def _timestamp(stamp: Mapping[str, Any]) -> str:
    indication = bilingual(INDICATIONS, stamp.get("indication"))
    if stamp.get("sub_indication"):
        indication += f" ({stamp['sub_indication']})"
    return f"{local_time(stamp.get('time'))}\n{stamp.get('tsa', '')}\n{indication}"


def _revocation(entry: Mapping[str, Any]) -> str:
    lines = [str(entry.get("subject", "")), bilingual(REVOCATION_STATUSES, entry.get("status"))]
    if entry.get("revoked_at"):
        reason = f" ({entry['reason']})" if entry.get("reason") else ""
        lines.append(f"Thu hồi lúc / revoked at {local_time(entry['revoked_at'])}{reason}")
    if entry.get("source"):
        lines.append(f"Nguồn / source: {bilingual(REVOCATION_SOURCES, entry['source'])}")
    if entry.get("produced_at"):
        lines.append(f"Thông tin lập lúc / produced at {local_time(entry['produced_at'])}")
    return "\n".join(lines)


def _date(value: str | None) -> str:
    if not value:
        return "—"
    return f"{dt.datetime.fromisoformat(value).astimezone(VIETNAM_TIME):%d/%m/%Y}"
