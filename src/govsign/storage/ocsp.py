"""Pre-produced OCSP responses and the certificate status the responder reads."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import delete, func, select

from govsign.pki.ocsp import PreProducedResponse
from govsign.pki.records import CertificateRecord, CertificateStatus, RevocationRecord
from govsign.storage.models import CertificateRow, OCSPResponseRow, RevocationRow
from govsign.storage.records import certificate_record, revocation_record
from govsign.storage.sql import Repository, database_errors, upsertable_insert


class SQLOCSPStore(Repository):
    """Certificate status lookups and pre-produced OCSP responses."""

    @database_errors
    def certificate_status(
        self, issuer_id: str, serial_hex: str
    ) -> tuple[CertificateRecord, RevocationRecord | None] | None:
        row = self._session.scalars(
            select(CertificateRow).where(CertificateRow.issuer_id == issuer_id, CertificateRow.serial_hex == serial_hex)
        ).one_or_none()
        if row is None:
            return None
        record = certificate_record(row)
        if record.status is CertificateStatus.VALID:
            return record, None
        revocation = self._session.scalars(
            select(RevocationRow)
            .where(RevocationRow.certificate_id == row.id, RevocationRow.released_at.is_(None))
            .order_by(RevocationRow.id.desc())
            .limit(1)
        ).one_or_none()
        return record, revocation_record(revocation) if revocation is not None else None

    def stored_response(
        self, issuer_id: str, serial_hex: str, hash_algorithm: str
    ) -> tuple[bytes, dt.datetime, dt.datetime] | None:
        row = self._session.execute(
            select(OCSPResponseRow.response_der, OCSPResponseRow.this_update, OCSPResponseRow.next_update).where(
                OCSPResponseRow.issuer_id == issuer_id,
                OCSPResponseRow.serial_hex == serial_hex,
                OCSPResponseRow.hash_algorithm == hash_algorithm,
            )
        ).one_or_none()
        if row is None:
            return None
        return bytes(row[0]), row[1], row[2]

    def put_response(self, response: PreProducedResponse) -> None:
        values = {field.name: getattr(response, field.name) for field in dataclasses.fields(response)}
        # An upsert: the background refresher and a revocation may write the same response at
        # the same moment; the later one wins instead of failing on the unique constraint.
        statement = upsertable_insert(self._session, OCSPResponseRow).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["issuer_id", "serial_hex", "hash_algorithm"],
            set_={
                key: statement.excluded[key]
                for key in values
                if key not in ("issuer_id", "serial_hex", "hash_algorithm")
            },
        )
        self._session.execute(statement)

    def delete_responses(self, certificate_id: int) -> None:
        self._session.execute(delete(OCSPResponseRow).where(OCSPResponseRow.certificate_id == certificate_id))

    def certificates_needing_responses(
        self, *, issuer_id: str, refresh_before: dt.datetime, now: dt.datetime, responder_serial_hex: str, limit: int
    ) -> list[CertificateRecord]:
        """Live certificates whose stored responses expire before ``refresh_before``, are
        missing, or were signed by another responder certificate."""
        fresh = (
            select(OCSPResponseRow.certificate_id)
            .where(
                OCSPResponseRow.next_update > refresh_before,
                OCSPResponseRow.responder_serial_hex == responder_serial_hex,
            )
            .group_by(OCSPResponseRow.certificate_id)
            .having(func.count() >= 2)
        )
        rows = self._session.scalars(
            select(CertificateRow)
            .where(
                CertificateRow.issuer_id == issuer_id, CertificateRow.not_after > now, CertificateRow.id.not_in(fresh)
            )
            .order_by(CertificateRow.id)
            .limit(limit)
        )
        return [certificate_record(row) for row in rows]
