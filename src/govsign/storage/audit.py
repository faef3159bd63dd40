"""The audit log: the hash chain of events and its signed checkpoints."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from sqlalchemy import func, select

from govsign.audit.chain import GENESIS_HASH, ChainVerdict, LinkedEvent, canonical_details, event_hash, verify_chain
from govsign.audit.events import AuditEvent, AuditQuery
from govsign.storage.models import AuditCheckpointRow, AuditEventRow, AuditHeadRow
from govsign.storage.sql import Repository, to_record, to_row


class SQLAuditLog(Repository):
    """Appends events to the hash chain; the head row is locked so appends never fork it."""

    def append(self, event: AuditEvent, *, at: dt.datetime) -> None:
        head = self._session.scalars(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).one_or_none()
        if head is None:
            head = AuditHeadRow(id=1, last_event_id=0, last_hash=GENESIS_HASH)
            self._session.add(head)
            self._session.flush()
        sequence = head.last_event_id + 1
        details_json = canonical_details(event.details)
        at = at.astimezone(dt.UTC)
        linked = to_record(
            LinkedEvent,
            event,
            sequence=sequence,
            occurred_at=at,
            details_json=details_json,
            previous_hash=head.last_hash,
        )
        digest = event_hash(linked)
        self._session.add(to_row(AuditEventRow, linked, id=sequence, event_hash=digest))
        head.last_event_id = sequence
        head.last_hash = digest
        self._session.flush()

    def verify(self) -> ChainVerdict:
        columns = [getattr(AuditEventRow, f.name) for f in dataclasses.fields(LinkedEvent) if f.name != "sequence"]
        rows = self._session.execute(
            select(AuditEventRow.id.label("sequence"), *columns, AuditEventRow.event_hash).order_by(AuditEventRow.id)
        )
        verdict = verify_chain((to_record(LinkedEvent, row), row.event_hash) for row in rows)
        if not verdict.intact:
            return verdict
        head = self._session.get(AuditHeadRow, 1)
        last_id = head.last_event_id if head else 0
        last_hash = head.last_hash if head else GENESIS_HASH
        if verdict.events_checked != last_id:
            return ChainVerdict.broken(
                verdict.events_checked,
                verdict.events_checked + 1,
                f"The audit log ends at event {verdict.events_checked} but its head records event {last_id}; events were deleted.",
            )
        if last_id:
            stored_last = self._session.get(AuditEventRow, last_id)
            if stored_last is None or stored_last.event_hash != last_hash:
                problem = f"Audit event {last_id} does not match the chain head."
                return ChainVerdict.broken(verdict.events_checked, last_id, problem)
        return verdict

    def count(self) -> int:
        return int(self._session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)

    def search(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Events in id order after ``after_id``, filtered (keyset pagination)."""
        select_events = select(AuditEventRow).order_by(AuditEventRow.id).limit(query.limit)
        for name in ("action", "actor", "client_id", "agency_id", "object_id"):
            if (value := getattr(query, name)) is not None:
                select_events = select_events.where(getattr(AuditEventRow, name) == value)
        if query.since is not None:
            select_events = select_events.where(AuditEventRow.occurred_at >= query.since)
        if query.until is not None:
            select_events = select_events.where(AuditEventRow.occurred_at < query.until)
        if query.after_id is not None:
            select_events = select_events.where(AuditEventRow.id > query.after_id)
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
            for row in self._session.scalars(select_events)
        ]


class SQLAuditCheckpoints(Repository):
    """Signed checkpoints of the audit chain head."""

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
