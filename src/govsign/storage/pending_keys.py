"""Keys announced before the HSM generates them for an issuance (the pending markers), and which
key labels the database knows (CAs, certificates, audit checkpoints), for the reconciliation of
the token against the records."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select

from govsign.storage.models import AuditCheckpointRow, CertificateAuthorityRow, CertificateRow, PendingKeyRow
from govsign.storage.sql import Repository


@dataclass(frozen=True, kw_only=True)
class PendingKey:
    """A key announced for an issuance whose certificate has not committed (yet, or ever)."""

    label: str
    """The CKA_LABEL the key is (or was to be) generated with."""
    purpose: str
    """What it was generated for."""
    created_at: dt.datetime
    """When it was announced."""


class SQLPendingKeyStore(Repository):
    """The pending markers of keys generated for issuances."""

    def add(self, label: str, *, purpose: str, at: dt.datetime) -> None:
        self._session.add(PendingKeyRow(label=label, purpose=purpose, created_at=at))
        self._session.flush()

    def remove(self, label: str) -> None:
        self._session.execute(delete(PendingKeyRow).where(PendingKeyRow.label == label))

    def all(self) -> list[PendingKey]:
        rows = self._session.scalars(select(PendingKeyRow).order_by(PendingKeyRow.created_at))
        return [PendingKey(label=row.label, purpose=row.purpose, created_at=row.created_at) for row in rows]

    def get_for_update(self, label: str) -> PendingKey | None:
        """The marker, locked (another process reconciling at once skips it: SKIP LOCKED)."""
        row = self._session.scalars(
            select(PendingKeyRow).where(PendingKeyRow.label == label).with_for_update(skip_locked=True)
        ).one_or_none()
        return PendingKey(label=row.label, purpose=row.purpose, created_at=row.created_at) if row is not None else None

    def recorded_key_labels(self) -> frozenset[str]:
        """Every key label a record names: the CAs', the certificates' (HSM-generated keys) and
        the audit checkpoints' (the audit key). Such keys are never orphans."""
        labels: set[str] = set()
        labels.update(self._session.scalars(select(CertificateAuthorityRow.key_label)))
        labels.update(label for label in self._session.scalars(select(CertificateRow.key_label)) if label is not None)
        labels.update(self._session.scalars(select(AuditCheckpointRow.key_label).distinct()))
        return frozenset(labels)
