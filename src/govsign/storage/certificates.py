"""Issued certificates and their revocations (one aggregate: a revocation changes its certificate)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, func, select, update

from govsign.errors import NotFoundError
from govsign.pki.records import CertificateRecord, CertificateStatus, RevocationRecord
from govsign.storage.crls import SQLCRLStore
from govsign.storage.models import CertificateRow, RevocationRow
from govsign.storage.records import certificate_record, revocation_record
from govsign.storage.sql import Repository, locked_row, to_row


def _with_status(
    query: Select[CertificateRow], status: CertificateStatus | None, now: dt.datetime
) -> Select[CertificateRow]:
    """Only certificates of this effective status (expired: valid but past notAfter) at ``now``."""
    if status is CertificateStatus.EXPIRED:
        return query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after < now)
    if status is CertificateStatus.VALID:
        return query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after >= now)
    return query.where(CertificateRow.status == status.value) if status is not None else query


class SQLCertificateStore(Repository):
    def add_certificate(self, record: CertificateRecord) -> CertificateRecord:
        row = to_row(
            CertificateRow,
            record,
            omit={"id"},
            status=record.status.value,
            key_algorithm=record.key_algorithm.value,
            key_label=record.key.label if record.key else None,
            key_id_hex=record.key.key_id_hex if record.key else None,
        )
        self._session.add(row)
        self._session.flush()
        return certificate_record(row)

    def find_by_serial(self, serial_hex: str, issuer_id: str | None = None) -> list[CertificateRecord]:
        query = select(CertificateRow).where(CertificateRow.serial_hex == serial_hex)
        if issuer_id is not None:
            query = query.where(CertificateRow.issuer_id == issuer_id)
        return [certificate_record(row) for row in self._session.scalars(query)]

    def get(self, certificate_id: int) -> CertificateRecord | None:
        row = self._session.get(CertificateRow, certificate_id)
        return certificate_record(row) if row is not None else None

    def get_for_update(self, certificate_id: int) -> CertificateRecord:
        row = locked_row(self._session, select(CertificateRow).where(CertificateRow.id == certificate_id))
        if row is None:
            raise NotFoundError(f"Certificate {certificate_id} does not exist.")
        return certificate_record(row)

    def set_status(self, certificate_id: int, status: CertificateStatus) -> None:
        self._session.execute(
            update(CertificateRow).where(CertificateRow.id == certificate_id).values(status=status.value)
        )

    def list_certificates(
        self, *, status: CertificateStatus | None = None, now: dt.datetime, limit: int = 1000
    ) -> list[CertificateRecord]:
        query = _with_status(select(CertificateRow).order_by(CertificateRow.id).limit(limit), status, now)
        return [certificate_record(row) for row in self._session.scalars(query)]

    def find_service_certificate(self, *, issuer_id: str, profile: str) -> CertificateRecord | None:
        row = self._session.scalars(
            select(CertificateRow)
            .where(
                CertificateRow.issuer_id == issuer_id,
                CertificateRow.profile == profile,
                CertificateRow.status == CertificateStatus.VALID.value,
            )
            .order_by(CertificateRow.not_after.desc())
            .limit(1)
        ).one_or_none()
        return certificate_record(row) if row is not None else None

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(CertificateRow)) or 0)

    def search_certificates(
        self,
        *,
        now: dt.datetime,
        status: CertificateStatus | None = None,
        profile: str | None = None,
        agency_ids: frozenset[str] | None = None,
        subject_contains: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[CertificateRecord]:
        """Keyset pagination by id; ``agency_ids`` limits to those agencies (None: any)."""
        query = _with_status(select(CertificateRow).order_by(CertificateRow.id).limit(limit), status, now)
        if profile is not None:
            query = query.where(CertificateRow.profile == profile)
        if agency_ids is not None:
            query = query.where(CertificateRow.agency_id.in_(sorted(agency_ids)))
        if subject_contains:
            escaped = subject_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(CertificateRow.subject.like(f"%{escaped}%", escape="\\"))
        if after_id is not None:
            query = query.where(CertificateRow.id > after_id)
        return [certificate_record(row) for row in self._session.scalars(query)]


class SQLRevocationStore(Repository):
    def add_revocation(self, record: RevocationRecord) -> RevocationRecord:
        row = to_row(RevocationRow, record, omit={"id"}, reason=record.reason.value)
        self._session.add(row)
        self._session.flush()
        SQLCRLStore(self._session).record_revocation_change(record.issuer_id)
        return revocation_record(row)

    def active_revocation(self, certificate_id: int) -> RevocationRecord | None:
        row = self._session.scalars(
            select(RevocationRow)
            .where(RevocationRow.certificate_id == certificate_id, RevocationRow.released_at.is_(None))
            .order_by(RevocationRow.id.desc())
            .limit(1)
        ).one_or_none()
        return revocation_record(row) if row is not None else None

    def release_hold(self, revocation_id: int, *, released_at: dt.datetime, released_by: str) -> None:
        row = self._session.get(RevocationRow, revocation_id)
        if row is None:
            raise NotFoundError(f"Revocation {revocation_id} does not exist.")
        row.released_at = released_at
        row.released_by = released_by
        self._session.flush()
        SQLCRLStore(self._session).record_revocation_change(row.issuer_id)
