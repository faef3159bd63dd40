"""CRL state (numbers, change counters) and the published CRLs of each CA."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from govsign.pki.crl import CRLState, StoredCRL
from govsign.pki.records import RevocationReason, RevocationRecord
from govsign.storage.models import CRLRow, CRLStateRow, RevocationRow
from govsign.storage.records import revocation_record
from govsign.storage.sql import Repository, to_record, to_row, upsertable_insert


def _stored_crl(row: CRLRow) -> StoredCRL:
    return to_record(
        StoredCRL,
        row,
        number=row.crl_number,
        is_delta=row.kind == "delta",
        base_number=row.base_crl_number,
        der=row.crl_der,
    )


class SQLCRLStore(Repository):
    """CRL numbering, change tracking and storage."""

    def _state_row(self, ca_id: str, *, lock: bool) -> CRLStateRow:
        query = select(CRLStateRow).where(CRLStateRow.ca_id == ca_id)
        if lock:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        if row is None:
            # Databases from before CA creation made this row: create it, tolerating a racer.
            self._session.execute(
                upsertable_insert(self._session, CRLStateRow)
                .values(ca_id=ca_id, next_crl_number=1, change_seq=0, published_change_seq=0, delta_base_number=None)
                .on_conflict_do_nothing(index_elements=["ca_id"])
            )
            row = self._session.scalars(query).one()
        return row

    def released_holds_since(self, ca_id: str, since: dt.datetime) -> list[str]:
        """Serials whose hold was released at or after ``since`` and that are not revoked now."""
        released = self._session.scalars(
            select(RevocationRow.serial_hex).where(
                RevocationRow.issuer_id == ca_id,
                RevocationRow.reason == RevocationReason.CERTIFICATE_HOLD.value,
                RevocationRow.released_at.is_not(None),
                RevocationRow.released_at >= since,
            )
        )
        active = {r.serial_hex for r in self.active_revocations(ca_id)}
        return sorted({serial for serial in released if serial not in active})

    def record_revocation_change(self, ca_id: str) -> None:
        """Bump the CA's change counter, so the publisher signs a fresh CRL."""
        updated = self._session.execute(
            update(CRLStateRow).where(CRLStateRow.ca_id == ca_id).values(change_seq=CRLStateRow.change_seq + 1)
        )
        if getattr(updated, "rowcount", 1) == 0:
            row = self._state_row(ca_id, lock=True)
            row.change_seq += 1
            self._session.flush()

    def lock_crl_state(self, ca_id: str) -> CRLState:
        row = self._state_row(ca_id, lock=True)
        self._session.refresh(row)
        return to_record(CRLState, row)

    def save_crl_state(self, state: CRLState) -> None:
        self._session.execute(
            update(CRLStateRow)
            .where(CRLStateRow.ca_id == state.ca_id)
            .values(
                next_crl_number=state.next_crl_number,
                published_change_seq=state.published_change_seq,
                delta_base_number=state.delta_base_number,
            )
        )

    def pending_changes(self, ca_id: str) -> bool:
        row = self._session.get(CRLStateRow, ca_id)
        return row is not None and row.change_seq > row.published_change_seq

    def active_revocations(self, ca_id: str) -> list[RevocationRecord]:
        rows = self._session.scalars(
            select(RevocationRow)
            .where(RevocationRow.issuer_id == ca_id, RevocationRow.released_at.is_(None))
            .order_by(RevocationRow.revoked_at, RevocationRow.id)
        )
        return [revocation_record(row) for row in rows]

    def latest_crl(self, ca_id: str, *, delta: bool) -> StoredCRL | None:
        row = self._session.scalars(
            select(CRLRow)
            .where(CRLRow.ca_id == ca_id, CRLRow.kind == ("delta" if delta else "full"))
            .order_by(CRLRow.crl_number.desc())
            .limit(1)
        ).one_or_none()
        return _stored_crl(row) if row is not None else None

    def crl_by_number(self, ca_id: str, number: int) -> StoredCRL | None:
        row = self._session.scalars(
            select(CRLRow).where(CRLRow.ca_id == ca_id, CRLRow.crl_number == number)
        ).one_or_none()
        return _stored_crl(row) if row is not None else None

    def add_crl(self, crl: StoredCRL) -> None:
        kind = "delta" if crl.is_delta else "full"
        self._session.add(
            to_row(
                CRLRow,
                crl,
                crl_number=crl.number,
                kind=kind,
                base_crl_number=crl.base_number,
                crl_der=crl.der,
                created_at=crl.this_update,
            )
        )
        self._session.flush()
