"""The certificate authorities of this service."""

from __future__ import annotations

from sqlalchemy import select

from govsign.pki.records import CARecord
from govsign.storage.models import CertificateAuthorityRow, CRLStateRow
from govsign.storage.records import ca_record
from govsign.storage.sql import Repository, to_row


class SQLCARegistry(Repository):
    def add_ca(self, record: CARecord) -> None:
        key = record.key
        self._session.add(
            to_row(
                CertificateAuthorityRow,
                record,
                role=record.role.value,
                key_label=key.label,
                key_id_hex=key.key_id_hex,
                key_algorithm=key.algorithm.value,
            )
        )
        self._session.flush()
        # The CRL numbering row exists from the start, so a first revocation and a first CRL
        # publication cannot both try to create it.
        self._session.add(
            CRLStateRow(
                ca_id=record.id, next_crl_number=1, change_seq=0, published_change_seq=0, delta_base_number=None
            )
        )
        self._session.flush()

    def get_ca(self, ca_id: str) -> CARecord | None:
        row = self._session.get(CertificateAuthorityRow, ca_id)
        return ca_record(row) if row is not None else None

    def list_cas(self) -> list[CARecord]:
        rows = self._session.scalars(
            select(CertificateAuthorityRow).order_by(CertificateAuthorityRow.created_at, CertificateAuthorityRow.id)
        )
        return [ca_record(row) for row in rows]
