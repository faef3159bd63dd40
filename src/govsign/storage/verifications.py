"""Stored verification reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from govsign.storage.models import VerificationRow
from govsign.storage.sql import Repository, to_record, to_row


@dataclass(frozen=True, kw_only=True)
class VerificationRecord:
    """A verification as stored: the report and the document's hash, never the document."""

    id: str
    """Random identifier (the report's ``id``)."""
    created_at: dt.datetime
    """When the document was verified."""
    client_id: str | None
    """The API client that asked (None for the CLI)."""
    document_sha256: str
    """SHA-256 of the document, hex."""
    document_type: str
    """pdf, cms, smime or timestamp."""
    conclusion: str
    """valid, invalid, indeterminate or no-signatures."""
    report_json: str
    """The report (JSON)."""
    etsi_xml: str | None = None
    """The ETSI TS 119 102-2 XML report, when one was made (PDFs)."""


class SQLVerificationStore(Repository):
    """Verification reports."""

    def add(self, record: VerificationRecord) -> None:
        self._session.add(to_row(VerificationRow, record))
        self._session.flush()

    def get(self, verification_id: str) -> VerificationRecord | None:
        row = self._session.get(VerificationRow, verification_id)
        return to_record(VerificationRecord, row) if row is not None else None

    def report_pdf(self, verification_id: str) -> bytes | None:
        """The sealed PDF rendering of a report, when one was made."""
        row = self._session.get(VerificationRow, verification_id)
        return row.report_pdf if row is not None else None

    def keep_report_pdf(self, verification_id: str, pdf: bytes) -> bytes:
        """Keep the sealed PDF of a report unless one was kept meanwhile; the one kept."""
        row = self._session.get(VerificationRow, verification_id, with_for_update=True)
        assert row is not None, "reports are never deleted"
        if row.report_pdf is None:
            row.report_pdf = pdf
            self._session.flush()
        return row.report_pdf
