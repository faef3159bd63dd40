"""The references on stamps' verification lines and the signatures they name."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from govsign.storage.models import SignatureReferenceRow
from govsign.storage.sql import Repository, to_record, to_row


@dataclass(frozen=True, kw_only=True)
class SignatureReferenceRecord:
    reference: str
    """The reference printed on the stamp (GS-...)."""
    certificate_id: int
    """The signing credential."""
    document_sha256: str
    """SHA-256 (hex) of the document as sent to be signed."""
    signed_sha256: str
    """SHA-256 (hex) of the signed document as returned."""
    level: str
    """PAdES level made."""
    stamp: str
    """The stamp profile (person, seal)."""
    signed_at: dt.datetime
    """When it was signed."""


class SQLReferenceStore(Repository):
    """Stamp references."""

    def add(self, record: SignatureReferenceRecord) -> None:
        self._session.add(to_row(SignatureReferenceRow, record))
        self._session.flush()

    def get(self, reference: str) -> SignatureReferenceRecord | None:
        row = self._session.get(SignatureReferenceRow, reference)
        return to_record(SignatureReferenceRecord, row) if row else None
