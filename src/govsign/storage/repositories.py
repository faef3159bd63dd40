"""All SQL of the service. Implements the ports of :mod:`govsign.pki.ports`."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from govsign.audit.chain import GENESIS_HASH, ChainVerdict, canonical_details, event_hash, verify_chain
from govsign.errors import DatabaseUnavailableError, NotFoundError
from govsign.keystore.api import KeyAlgorithm, KeyRef
from govsign.pki.crl import CRLState, StoredCRL
from govsign.pki.ports import (
    AuditEvent,
    CARecord,
    CARole,
    CertificateRecord,
    CertificateStatus,
    RevocationReason,
    RevocationRecord,
)
from govsign.storage.models import (
    AgencyRow,
    APIClientRow,
    ApprovalRow,
    AuditCheckpointRow,
    AuditEventRow,
    AuditHeadRow,
    CertificateAuthorityRow,
    CertificateRow,
    CredentialFactorsRow,
    CRLRow,
    CRLStateRow,
    IdempotencyKeyRow,
    OCSPResponseRow,
    RevocationRow,
    SignatureActivationRow,
    StampImageRow,
)

F = TypeVar("F", bound=Callable[..., Any])


def _database_errors(method: F) -> F:
    """Turn a lost database into DatabaseUnavailableError at the storage seam, so protocol
    handlers can answer tryLater / 503 without knowing SQLAlchemy."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailableError("The database is not available.") from exc

    return wrapper  # type: ignore[return-value]


def _upsertable_insert(session: Session, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(model)


def _ca_record(row: CertificateAuthorityRow) -> CARecord:
    return CARecord(
        id=row.id,
        role=CARole(row.role),
        parent_id=row.parent_id,
        subject=row.subject,
        serial_hex=row.serial_hex,
        key=KeyRef(
            label=row.key_label, key_id=bytes.fromhex(row.key_id_hex), algorithm=KeyAlgorithm(row.key_algorithm)
        ),
        certificate_der=row.certificate_der,
        not_before=row.not_before,
        not_after=row.not_after,
        created_at=row.created_at,
    )


def _certificate_record(row: CertificateRow) -> CertificateRecord:
    algorithm = KeyAlgorithm(row.key_algorithm)
    key = None
    if row.key_label is not None and row.key_id_hex is not None:
        key = KeyRef(label=row.key_label, key_id=bytes.fromhex(row.key_id_hex), algorithm=algorithm)
    return CertificateRecord(
        id=row.id,
        issuer_id=row.issuer_id,
        serial_hex=row.serial_hex,
        subject=row.subject,
        profile=row.profile,
        email=row.email,
        not_before=row.not_before,
        not_after=row.not_after,
        status=CertificateStatus(row.status),
        key_algorithm=algorithm,
        key=key,
        certificate_der=row.certificate_der,
        fingerprint_sha256=row.fingerprint_sha256,
        spki_sha256=row.spki_sha256,
        replaces_id=row.replaces_id,
        created_at=row.created_at,
        agency_id=row.agency_id,
    )


def _revocation_record(row: RevocationRow) -> RevocationRecord:
    return RevocationRecord(
        id=row.id,
        certificate_id=row.certificate_id,
        issuer_id=row.issuer_id,
        serial_hex=row.serial_hex,
        reason=RevocationReason(row.reason),
        revoked_at=row.revoked_at,
        invalidity_date=row.invalidity_date,
        actor=row.actor,
        released_at=row.released_at,
        released_by=row.released_by,
    )


class SQLCARegistry:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_ca(self, record: CARecord) -> None:
        self._session.add(
            CertificateAuthorityRow(
                id=record.id,
                role=record.role.value,
                parent_id=record.parent_id,
                subject=record.subject,
                serial_hex=record.serial_hex,
                key_label=record.key.label,
                key_id_hex=record.key.key_id_hex,
                key_algorithm=record.key.algorithm.value,
                certificate_der=record.certificate_der,
                not_before=record.not_before,
                not_after=record.not_after,
                created_at=record.created_at,
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
        return _ca_record(row) if row is not None else None

    def list_cas(self) -> list[CARecord]:
        rows = self._session.scalars(
            select(CertificateAuthorityRow).order_by(CertificateAuthorityRow.created_at, CertificateAuthorityRow.id)
        )
        return [_ca_record(row) for row in rows]


class SQLCertificateStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_certificate(self, record: CertificateRecord) -> CertificateRecord:
        row = CertificateRow(
            issuer_id=record.issuer_id,
            serial_hex=record.serial_hex,
            subject=record.subject,
            profile=record.profile,
            email=record.email,
            not_before=record.not_before,
            not_after=record.not_after,
            status=record.status.value,
            key_algorithm=record.key_algorithm.value,
            key_label=record.key.label if record.key else None,
            key_id_hex=record.key.key_id_hex if record.key else None,
            certificate_der=record.certificate_der,
            fingerprint_sha256=record.fingerprint_sha256,
            spki_sha256=record.spki_sha256,
            replaces_id=record.replaces_id,
            created_at=record.created_at,
            agency_id=record.agency_id,
        )
        self._session.add(row)
        self._session.flush()
        return _certificate_record(row)

    def find_by_serial(self, serial_hex: str, issuer_id: str | None = None) -> list[CertificateRecord]:
        query = select(CertificateRow).where(CertificateRow.serial_hex == serial_hex)
        if issuer_id is not None:
            query = query.where(CertificateRow.issuer_id == issuer_id)
        return [_certificate_record(row) for row in self._session.scalars(query)]

    def get(self, certificate_id: int) -> CertificateRecord | None:
        row = self._session.get(CertificateRow, certificate_id)
        return _certificate_record(row) if row is not None else None

    def get_for_update(self, certificate_id: int) -> CertificateRecord:
        row = self._session.scalars(
            select(CertificateRow).where(CertificateRow.id == certificate_id).with_for_update()
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"Certificate {certificate_id} does not exist.")
        self._session.refresh(row)
        return _certificate_record(row)

    def set_status(self, certificate_id: int, status: CertificateStatus) -> None:
        self._session.execute(
            update(CertificateRow).where(CertificateRow.id == certificate_id).values(status=status.value)
        )

    def list_certificates(
        self, *, status: CertificateStatus | None = None, now: dt.datetime, limit: int = 1000
    ) -> list[CertificateRecord]:
        query = select(CertificateRow).order_by(CertificateRow.id).limit(limit)
        if status is CertificateStatus.EXPIRED:
            query = query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after < now)
        elif status is CertificateStatus.VALID:
            query = query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after >= now)
        elif status is not None:
            query = query.where(CertificateRow.status == status.value)
        return [_certificate_record(row) for row in self._session.scalars(query)]

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
        return _certificate_record(row) if row is not None else None

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
        query = select(CertificateRow).order_by(CertificateRow.id).limit(limit)
        if status is CertificateStatus.EXPIRED:
            query = query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after < now)
        elif status is CertificateStatus.VALID:
            query = query.where(CertificateRow.status == CertificateStatus.VALID.value, CertificateRow.not_after >= now)
        elif status is not None:
            query = query.where(CertificateRow.status == status.value)
        if profile is not None:
            query = query.where(CertificateRow.profile == profile)
        if agency_ids is not None:
            query = query.where(CertificateRow.agency_id.in_(sorted(agency_ids)))
        if subject_contains:
            escaped = subject_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(CertificateRow.subject.like(f"%{escaped}%", escape="\\"))
        if after_id is not None:
            query = query.where(CertificateRow.id > after_id)
        return [_certificate_record(row) for row in self._session.scalars(query)]


class SQLRevocationStore:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_revocation(self, record: RevocationRecord) -> RevocationRecord:
        row = RevocationRow(
            certificate_id=record.certificate_id,
            issuer_id=record.issuer_id,
            serial_hex=record.serial_hex,
            reason=record.reason.value,
            revoked_at=record.revoked_at,
            invalidity_date=record.invalidity_date,
            actor=record.actor,
            released_at=record.released_at,
            released_by=record.released_by,
        )
        self._session.add(row)
        self._session.flush()
        SQLCRLStore(self._session).record_revocation_change(record.issuer_id)
        return _revocation_record(row)

    def active_revocation(self, certificate_id: int) -> RevocationRecord | None:
        row = self._session.scalars(
            select(RevocationRow)
            .where(RevocationRow.certificate_id == certificate_id, RevocationRow.released_at.is_(None))
            .order_by(RevocationRow.id.desc())
            .limit(1)
        ).one_or_none()
        return _revocation_record(row) if row is not None else None

    def release_hold(self, revocation_id: int, *, released_at: dt.datetime, released_by: str) -> None:
        row = self._session.get(RevocationRow, revocation_id)
        if row is None:
            raise NotFoundError(f"Revocation {revocation_id} does not exist.")
        row.released_at = released_at
        row.released_by = released_by
        self._session.flush()
        SQLCRLStore(self._session).record_revocation_change(row.issuer_id)


class SQLAuditLog:
    """Appends events to the hash chain; the head row is locked so appends never fork it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, event: AuditEvent, *, at: dt.datetime) -> None:
        head = self._session.scalars(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).one_or_none()
        if head is None:
            head = AuditHeadRow(id=1, last_event_id=0, last_hash=GENESIS_HASH)
            self._session.add(head)
            self._session.flush()
        sequence = head.last_event_id + 1
        details_json = canonical_details(event.details)
        at = at.astimezone(dt.UTC)
        digest = event_hash(
            sequence=sequence,
            occurred_at=at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            outcome=event.outcome,
            details_json=details_json,
            previous_hash=head.last_hash,
            client_id=event.client_id,
            agency_id=event.agency_id,
            request_id=event.request_id,
        )
        self._session.add(
            AuditEventRow(
                id=sequence,
                occurred_at=at,
                actor=event.actor,
                action=event.action,
                object_type=event.object_type,
                object_id=event.object_id,
                outcome=event.outcome,
                details_json=details_json,
                client_id=event.client_id,
                agency_id=event.agency_id,
                request_id=event.request_id,
                previous_hash=head.last_hash,
                event_hash=digest,
            )
        )
        head.last_event_id = sequence
        head.last_hash = digest
        self._session.flush()

    def verify(self) -> ChainVerdict:
        rows = self._session.execute(
            select(
                AuditEventRow.id,
                AuditEventRow.occurred_at,
                AuditEventRow.actor,
                AuditEventRow.action,
                AuditEventRow.object_type,
                AuditEventRow.object_id,
                AuditEventRow.outcome,
                AuditEventRow.details_json,
                AuditEventRow.previous_hash,
                AuditEventRow.event_hash,
                AuditEventRow.client_id,
                AuditEventRow.agency_id,
                AuditEventRow.request_id,
            ).order_by(AuditEventRow.id)
        )
        verdict = verify_chain(tuple(row) for row in rows)  # type: ignore[misc]
        if not verdict.intact:
            return verdict
        head = self._session.get(AuditHeadRow, 1)
        last_id = head.last_event_id if head else 0
        last_hash = head.last_hash if head else GENESIS_HASH
        if verdict.events_checked != last_id:
            return ChainVerdict(
                intact=False,
                events_checked=verdict.events_checked,
                first_broken_sequence=verdict.events_checked + 1,
                problem=f"The audit log ends at event {verdict.events_checked} but its head records event {last_id}; events were deleted.",
            )
        if last_id:
            stored_last = self._session.get(AuditEventRow, last_id)
            if stored_last is None or stored_last.event_hash != last_hash:
                return ChainVerdict(
                    intact=False,
                    events_checked=verdict.events_checked,
                    first_broken_sequence=last_id,
                    problem=f"Audit event {last_id} does not match the chain head.",
                )
        return verdict

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._session.scalars(select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit))
        return [
            {
                "id": row.id,
                "occurred_at": row.occurred_at.isoformat(),
                "actor": row.actor,
                "action": row.action,
                "object_type": row.object_type,
                "object_id": row.object_id,
                "outcome": row.outcome,
                "details": json.loads(row.details_json),
            }
            for row in rows
        ]

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)

    def search(
        self,
        *,
        action: str | None = None,
        actor: str | None = None,
        client_id: str | None = None,
        agency_id: str | None = None,
        object_id: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Events in id order after ``after_id``, filtered (keyset pagination)."""
        query = select(AuditEventRow).order_by(AuditEventRow.id).limit(limit)
        for column, value in (
            (AuditEventRow.action, action),
            (AuditEventRow.actor, actor),
            (AuditEventRow.client_id, client_id),
            (AuditEventRow.agency_id, agency_id),
            (AuditEventRow.object_id, object_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(AuditEventRow.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEventRow.occurred_at < until)
        if after_id is not None:
            query = query.where(AuditEventRow.id > after_id)
        return [
            {
                "id": row.id,
                "occurred_at": row.occurred_at,
                "actor": row.actor,
                "action": row.action,
                "object_type": row.object_type,
                "object_id": row.object_id,
                "outcome": row.outcome,
                "client_id": row.client_id,
                "agency_id": row.agency_id,
                "request_id": row.request_id,
                "details": json.loads(row.details_json),
            }
            for row in self._session.scalars(query)
        ]


def _stored_crl(row: CRLRow) -> StoredCRL:
    return StoredCRL(
        ca_id=row.ca_id,
        number=row.crl_number,
        is_delta=row.kind == "delta",
        base_number=row.base_crl_number,
        this_update=row.this_update,
        next_update=row.next_update,
        entry_count=row.entry_count,
        der=row.crl_der,
    )


class SQLCRLStore:
    """CRL numbering, change tracking and storage."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _state_row(self, ca_id: str, *, lock: bool) -> CRLStateRow:
        query = select(CRLStateRow).where(CRLStateRow.ca_id == ca_id)
        if lock:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        if row is None:
            # Databases from before CA creation made this row: create it, tolerating a racer.
            self._session.execute(
                _upsertable_insert(self._session, CRLStateRow)
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

    def ensure_crl_state(self, ca_id: str) -> None:
        self._state_row(ca_id, lock=False)

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
        return CRLState(
            ca_id=row.ca_id,
            next_crl_number=row.next_crl_number,
            change_seq=row.change_seq,
            published_change_seq=row.published_change_seq,
            delta_base_number=row.delta_base_number,
        )

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
        return [_revocation_record(row) for row in rows]

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
        self._session.add(
            CRLRow(
                ca_id=crl.ca_id,
                crl_number=crl.number,
                kind="delta" if crl.is_delta else "full",
                base_crl_number=crl.base_number,
                this_update=crl.this_update,
                next_update=crl.next_update,
                entry_count=crl.entry_count,
                crl_der=crl.der,
                created_at=crl.this_update,
            )
        )
        self._session.flush()


class SQLOCSPStore:
    """Certificate status lookups and pre-produced OCSP responses."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @_database_errors
    def certificate_status(
        self, issuer_id: str, serial_hex: str
    ) -> tuple[CertificateRecord, RevocationRecord | None] | None:
        row = self._session.scalars(
            select(CertificateRow).where(CertificateRow.issuer_id == issuer_id, CertificateRow.serial_hex == serial_hex)
        ).one_or_none()
        if row is None:
            return None
        record = _certificate_record(row)
        if record.status is CertificateStatus.VALID:
            return record, None
        revocation = self._session.scalars(
            select(RevocationRow)
            .where(RevocationRow.certificate_id == row.id, RevocationRow.released_at.is_(None))
            .order_by(RevocationRow.id.desc())
            .limit(1)
        ).one_or_none()
        return record, _revocation_record(revocation) if revocation is not None else None

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

    def put_response(
        self,
        *,
        certificate_id: int,
        issuer_id: str,
        serial_hex: str,
        hash_algorithm: str,
        cert_status: str,
        this_update: dt.datetime,
        next_update: dt.datetime,
        responder_serial_hex: str,
        response_der: bytes,
    ) -> None:
        values = {
            "certificate_id": certificate_id,
            "issuer_id": issuer_id,
            "serial_hex": serial_hex,
            "hash_algorithm": hash_algorithm,
            "cert_status": cert_status,
            "this_update": this_update,
            "next_update": next_update,
            "responder_serial_hex": responder_serial_hex,
            "response_der": response_der,
        }
        # An upsert: the background refresher and a revocation may write the same response at
        # the same moment; the later one wins instead of failing on the unique constraint.
        statement = _upsertable_insert(self._session, OCSPResponseRow).values(**values)
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
        return [_certificate_record(row) for row in rows]


@dataclass(frozen=True, kw_only=True)
class AgencyRecord:
    id: str
    name: str
    parent_id: str | None
    created_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class APIClientRecord:
    id: str
    name: str
    role: str
    agency_id: str
    secret_hash: str
    status: str
    certificate_fingerprint: str | None
    created_at: dt.datetime
    rotated_at: dt.datetime | None


@dataclass(frozen=True, kw_only=True)
class ApprovalRecord:
    id: str
    operation: str
    target: str
    parameters: dict[str, Any]
    agency_id: str | None
    requested_by: str
    requested_at: dt.datetime
    status: str
    decided_by: str | None
    decided_at: dt.datetime | None
    result: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    client_id: str
    key: str
    request_hash: str
    response_status: int | None
    response_body: str | None
    created_at: dt.datetime


def _client_record(row: APIClientRow) -> APIClientRecord:
    return APIClientRecord(
        id=row.id,
        name=row.name,
        role=row.role,
        agency_id=row.agency_id,
        secret_hash=row.secret_hash,
        status=row.status,
        certificate_fingerprint=row.certificate_fingerprint,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )


def _approval_record(row: ApprovalRow) -> ApprovalRecord:
    return ApprovalRecord(
        id=row.id,
        operation=row.operation,
        target=row.target,
        parameters=json.loads(row.parameters_json),
        agency_id=row.agency_id,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        result=json.loads(row.result_json) if row.result_json else None,
    )


class SQLAccessStore:
    """Agencies and API clients."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add_agency(self, record: AgencyRecord) -> None:
        self._session.add(
            AgencyRow(id=record.id, name=record.name, parent_id=record.parent_id, created_at=record.created_at)
        )
        self._session.flush()

    def get_agency(self, agency_id: str) -> AgencyRecord | None:
        row = self._session.get(AgencyRow, agency_id)
        return (
            AgencyRecord(id=row.id, name=row.name, parent_id=row.parent_id, created_at=row.created_at) if row else None
        )

    def list_agencies(self) -> list[AgencyRecord]:
        rows = self._session.scalars(select(AgencyRow).order_by(AgencyRow.id))
        return [AgencyRecord(id=r.id, name=r.name, parent_id=r.parent_id, created_at=r.created_at) for r in rows]

    def agency_parents(self) -> dict[str, str | None]:
        return {row[0]: row[1] for row in self._session.execute(select(AgencyRow.id, AgencyRow.parent_id))}

    def add_client(self, record: APIClientRecord) -> None:
        self._session.add(
            APIClientRow(
                id=record.id,
                name=record.name,
                role=record.role,
                agency_id=record.agency_id,
                secret_hash=record.secret_hash,
                status=record.status,
                certificate_fingerprint=record.certificate_fingerprint,
                created_at=record.created_at,
                rotated_at=record.rotated_at,
            )
        )
        self._session.flush()

    def get_client(self, client_id: str) -> APIClientRecord | None:
        row = self._session.get(APIClientRow, client_id)
        return _client_record(row) if row else None

    def client_by_name(self, name: str) -> APIClientRecord | None:
        row = self._session.scalars(select(APIClientRow).where(APIClientRow.name == name)).one_or_none()
        return _client_record(row) if row else None

    def client_by_certificate(self, fingerprint: str) -> APIClientRecord | None:
        row = self._session.scalars(
            select(APIClientRow).where(APIClientRow.certificate_fingerprint == fingerprint)
        ).one_or_none()
        return _client_record(row) if row else None

    def list_clients(self) -> list[APIClientRecord]:
        return [_client_record(row) for row in self._session.scalars(select(APIClientRow).order_by(APIClientRow.name))]

    def update_client(self, client_id: str, **values: Any) -> None:
        self._session.execute(update(APIClientRow).where(APIClientRow.id == client_id).values(**values))


class SQLIdempotencyStore:
    """Idempotency keys of creating requests."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = self._session.scalars(
            select(IdempotencyKeyRow).where(IdempotencyKeyRow.client_id == client_id, IdempotencyKeyRow.key == key)
        ).one_or_none()
        if row is None:
            return None
        return IdempotencyRecord(
            client_id=row.client_id,
            key=row.key,
            request_hash=row.request_hash,
            response_status=row.response_status,
            response_body=row.response_body,
            created_at=row.created_at,
        )

    def claim(self, client_id: str, key: str, request_hash: str, at: dt.datetime) -> bool:
        """Insert the key; False when it exists already (another request has it)."""
        try:
            with self._session.begin_nested():
                self._session.add(
                    IdempotencyKeyRow(client_id=client_id, key=key, request_hash=request_hash, created_at=at)
                )
        except IntegrityError:
            return False
        return True

    def take_over(self, client_id: str, key: str, *, older_than: dt.datetime, at: dt.datetime) -> bool:
        """Claim an abandoned key (no response stored, claimed before ``older_than``)."""
        result = self._session.execute(
            update(IdempotencyKeyRow)
            .where(
                IdempotencyKeyRow.client_id == client_id,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.response_status.is_(None),
                IdempotencyKeyRow.created_at < older_than,
            )
            .values(created_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    def complete(self, client_id: str, key: str, status: int, body: str) -> None:
        self._session.execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.client_id == client_id, IdempotencyKeyRow.key == key)
            .values(response_status=status, response_body=body)
        )

    def release(self, client_id: str, key: str) -> None:
        self._session.execute(
            delete(IdempotencyKeyRow).where(
                IdempotencyKeyRow.client_id == client_id,
                IdempotencyKeyRow.key == key,
                IdempotencyKeyRow.response_status.is_(None),
            )
        )


class SQLApprovalStore:
    """Dual-control requests."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, record: ApprovalRecord) -> None:
        self._session.add(
            ApprovalRow(
                id=record.id,
                operation=record.operation,
                target=record.target,
                parameters_json=json.dumps(record.parameters, sort_keys=True),
                agency_id=record.agency_id,
                requested_by=record.requested_by,
                requested_at=record.requested_at,
                status=record.status,
            )
        )
        self._session.flush()

    def get_for_update(self, approval_id: str) -> ApprovalRecord | None:
        row = self._session.scalars(
            select(ApprovalRow).where(ApprovalRow.id == approval_id).with_for_update()
        ).one_or_none()
        if row is not None:
            self._session.refresh(row)
        return _approval_record(row) if row else None

    def get(self, approval_id: str) -> ApprovalRecord | None:
        row = self._session.get(ApprovalRow, approval_id)
        return _approval_record(row) if row else None

    def decide(
        self, approval_id: str, *, status: str, decided_by: str, decided_at: dt.datetime, result: dict[str, Any] | None
    ) -> None:
        self._session.execute(
            update(ApprovalRow)
            .where(ApprovalRow.id == approval_id)
            .values(
                status=status,
                decided_by=decided_by,
                decided_at=decided_at,
                result_json=json.dumps(result, sort_keys=True) if result is not None else None,
            )
        )

    def list(
        self,
        *,
        status: str | None,
        limit: int,
        after: tuple[dt.datetime, str] | None,
        agency_ids: frozenset[str] | None = None,
    ) -> list[ApprovalRecord]:
        """Newest first; keyset pagination after (requested_at, id); ``agency_ids`` limits the
        agencies (None: any; CA-wide requests have no agency and are listed only then)."""
        query = select(ApprovalRow).order_by(ApprovalRow.requested_at.desc(), ApprovalRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(ApprovalRow.status == status)
        if agency_ids is not None:
            query = query.where(ApprovalRow.agency_id.in_(sorted(agency_ids)))
        if after is not None:
            at, approval_id = after
            query = query.where(
                (ApprovalRow.requested_at < at) | ((ApprovalRow.requested_at == at) & (ApprovalRow.id < approval_id))
            )
        return [_approval_record(row) for row in self._session.scalars(query)]


class SQLAuditCheckpoints:
    """Signed checkpoints of the audit chain head."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def head(self) -> tuple[int, str]:
        head = self._session.get(AuditHeadRow, 1)
        return (head.last_event_id, head.last_hash) if head else (0, GENESIS_HASH)

    def latest(self) -> AuditCheckpointRow | None:
        return self._session.scalars(
            select(AuditCheckpointRow).order_by(AuditCheckpointRow.last_event_id.desc()).limit(1)
        ).one_or_none()

    def add(
        self, *, last_event_id: int, last_hash: str, signed_at: dt.datetime, key_label: str, signature: bytes
    ) -> None:
        self._session.add(
            AuditCheckpointRow(
                last_event_id=last_event_id,
                last_hash=last_hash,
                signed_at=signed_at,
                key_label=key_label,
                signature=signature,
            )
        )
        self._session.flush()

    def all(self) -> list[tuple[int, str, dt.datetime, str, bytes]]:
        rows = self._session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.last_event_id))
        return [(r.last_event_id, r.last_hash, r.signed_at, r.key_label, r.signature) for r in rows]

    def event_hash_at(self, event_id: int) -> str | None:
        row = self._session.get(AuditEventRow, event_id)
        return row.event_hash if row else None


@dataclass(frozen=True, kw_only=True)
class CredentialFactorsRecord:
    certificate_id: int
    totp_label: str | None
    totp_key_id_hex: str | None
    totp_last_step: int | None
    pin_hash: str | None
    failed_attempts: int
    locked_until: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True, kw_only=True)
class SignatureActivationRecord:
    token_sha256: str
    certificate_id: int
    client_id: str
    hash_algorithm: str
    hashes: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None


class SQLSoleControlStore:
    """Second factors of officials and their signature activations."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def factors_for_update(self, certificate_id: int) -> CredentialFactorsRecord | None:
        """The factors, row-locked so concurrent checks count failures and steps one at a time."""
        row = self._session.scalars(
            select(CredentialFactorsRow).where(CredentialFactorsRow.certificate_id == certificate_id).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        self._session.refresh(row)
        return CredentialFactorsRecord(
            certificate_id=row.certificate_id,
            totp_label=row.totp_label,
            totp_key_id_hex=row.totp_key_id_hex,
            totp_last_step=row.totp_last_step,
            pin_hash=row.pin_hash,
            failed_attempts=row.failed_attempts,
            locked_until=row.locked_until,
            updated_at=row.updated_at,
        )

    def save_factors(self, certificate_id: int, *, at: dt.datetime, **values: Any) -> None:
        """Update the factors row (created on first use) with the given columns."""
        row = self._session.get(CredentialFactorsRow, certificate_id)
        if row is None:
            row = CredentialFactorsRow(certificate_id=certificate_id, failed_attempts=0, updated_at=at)
            self._session.add(row)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = at
        self._session.flush()

    def add_activation(self, record: SignatureActivationRecord) -> None:
        self._session.add(
            SignatureActivationRow(
                token_sha256=record.token_sha256,
                certificate_id=record.certificate_id,
                client_id=record.client_id,
                hash_algorithm=record.hash_algorithm,
                hashes_json=json.dumps(list(record.hashes)),
                created_at=record.created_at,
                expires_at=record.expires_at,
                used_at=None,
            )
        )
        self._session.flush()

    def activation_for_update(self, token_sha256: str) -> SignatureActivationRecord | None:
        row = self._session.scalars(
            select(SignatureActivationRow).where(SignatureActivationRow.token_sha256 == token_sha256).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        self._session.refresh(row)
        return SignatureActivationRecord(
            token_sha256=row.token_sha256,
            certificate_id=row.certificate_id,
            client_id=row.client_id,
            hash_algorithm=row.hash_algorithm,
            hashes=tuple(json.loads(row.hashes_json)),
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    def consume_activation(self, token_sha256: str, at: dt.datetime) -> bool:
        """Mark it used; False when another request used it first."""
        result = self._session.execute(
            update(SignatureActivationRow)
            .where(SignatureActivationRow.token_sha256 == token_sha256, SignatureActivationRow.used_at.is_(None))
            .values(used_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    def purge_activations(self, *, expired_before: dt.datetime) -> int:
        """Delete activations that expired before the given time (used or not)."""
        result = self._session.execute(
            delete(SignatureActivationRow).where(SignatureActivationRow.expires_at < expired_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class SQLStampImageStore:
    """Images shown by credentials' visible signatures."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, certificate_id: int) -> bytes | None:
        row = self._session.get(StampImageRow, certificate_id)
        return bytes(row.image_png) if row is not None else None

    def put(self, certificate_id: int, image_png: bytes, at: dt.datetime) -> None:
        row = self._session.get(StampImageRow, certificate_id)
        if row is None:
            self._session.add(StampImageRow(certificate_id=certificate_id, image_png=image_png, updated_at=at))
        else:
            row.image_png, row.updated_at = image_png, at
        self._session.flush()


class SQLPorts:
    """The ports of one unit of work, all on the same session (one transaction)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cas = SQLCARegistry(session)
        self.certificates = SQLCertificateStore(session)
        self.revocations = SQLRevocationStore(session)
        self.audit = SQLAuditLog(session)
        self.crls = SQLCRLStore(session)
        self.ocsp = SQLOCSPStore(session)
        self.access = SQLAccessStore(session)
        self.idempotency = SQLIdempotencyStore(session)
        self.approvals = SQLApprovalStore(session)
        self.checkpoints = SQLAuditCheckpoints(session)
        self.sole_control = SQLSoleControlStore(session)
        self.stamp_images = SQLStampImageStore(session)
