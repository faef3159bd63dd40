"""The audit log: the hash chain of events (keyed by the audit chain key), its signed
checkpoints and the registry of the audit keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from govsign.audit.chain import (
    CHAIN_KEYED,
    GENESIS_HASH,
    ChainKey,
    ChainVerdict,
    LinkedEvent,
    StoredEvent,
    canonical_details,
    event_hash,
    verify_chain,
)
from govsign.audit.checkpoints import Checkpoint
from govsign.audit.events import AuditEvent, AuditQuery
from govsign.storage.models import AuditCheckpointRow, AuditEventRow, AuditHeadRow, AuditKeyRow
from govsign.storage.sql import Repository, to_record, to_row

log = logging.getLogger(__name__)

#: ``seal(sequence, event_hash)``: the event's keyed chain value, or None when the HSM cannot
#: compute it right now.
Sealer = Callable[[int, str], str | None]

_LINKED_FIELDS = [f.name for f in dataclasses.fields(LinkedEvent) if f.name != "sequence"]


class SQLAuditLog(Repository):
    """Appends events to the hash chain; the head row is locked so appends never fork it."""

    def _locked_head(self) -> AuditHeadRow:
        head = self._session.scalars(select(AuditHeadRow).where(AuditHeadRow.id == 1).with_for_update()).one_or_none()
        if head is None:
            head = AuditHeadRow(id=1, last_event_id=0, last_hash=GENESIS_HASH)
            self._session.add(head)
            self._session.flush()
        return head

    def append(self, event: AuditEvent, *, at: dt.datetime, seal: Sealer) -> tuple[int, int] | None:
        """Append a version 2 event with its keyed chain value; when ``seal`` cannot compute it,
        the event is stored without and sealed by a later append (:meth:`seal_pending`). Returns
        the first and last earlier events this append sealed, if any."""
        head = self._locked_head()
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
            chain_version=CHAIN_KEYED,
        )
        digest = event_hash(linked)
        sealed = self._seal_pending(head, seal) if head.unsealed_from is not None else None
        mac = seal(sequence, digest) if head.unsealed_from is None else None
        self._session.add(to_row(AuditEventRow, linked, id=sequence, event_hash=digest, chain_mac=mac))
        if mac is None and head.unsealed_from is None:
            head.unsealed_from = sequence
        head.last_event_id = sequence
        head.last_hash = digest
        self._session.flush()
        return sealed

    def seal_pending(self, seal: Sealer) -> tuple[int, int] | None:
        """Seal the events written while the HSM was unreachable, in order; the first and last
        sealed, if any (:meth:`has_unsealed` says whether some are left)."""
        head = self._locked_head()
        return self._seal_pending(head, seal) if head.unsealed_from is not None else None

    def _seal_pending(self, head: AuditHeadRow, seal: Sealer) -> tuple[int, int] | None:
        assert head.unsealed_from is not None
        covered = self._session.scalar(select(func.max(AuditCheckpointRow.last_event_id))) or 0
        if head.unsealed_from <= covered:
            # never legitimate (checkpoints are signed only over sealed events): someone moved
            # the marker to have rewritten events sealed; leave them for verify to report
            log.error("refusing to seal audit events from %d: a checkpoint covers them", head.unsealed_from)
            return None
        rows = self._session.scalars(
            select(AuditEventRow)
            .where(AuditEventRow.id >= head.unsealed_from, AuditEventRow.chain_mac.is_(None))
            .where(AuditEventRow.chain_version == CHAIN_KEYED)
            .order_by(AuditEventRow.id)
        )
        sealed: list[int] = []
        for row in rows:
            mac = seal(row.id, row.event_hash)
            if mac is None:
                head.unsealed_from = row.id
                break
            row.chain_mac = mac
            sealed.append(row.id)
        else:
            head.unsealed_from = None
        self._session.flush()
        return (sealed[0], sealed[-1]) if sealed else None

    def has_keyed_events(self) -> bool:
        """Whether any event carries a keyed chain value."""
        found = self._session.scalar(select(AuditEventRow.id).where(AuditEventRow.chain_mac.is_not(None)).limit(1))
        return found is not None

    def has_unsealed(self) -> bool:
        """Whether events wait for their keyed chain value."""
        head = self._session.get(AuditHeadRow, 1)
        return head is not None and head.unsealed_from is not None

    def stored_events(self) -> Iterator[StoredEvent]:
        """Every event in sequence order, with the values stored beside it."""
        columns = [getattr(AuditEventRow, name) for name in _LINKED_FIELDS]
        rows = self._session.execute(
            select(
                AuditEventRow.id.label("sequence"), *columns, AuditEventRow.event_hash, AuditEventRow.chain_mac
            ).order_by(AuditEventRow.id)
        )
        for row in rows:
            yield StoredEvent(event=to_record(LinkedEvent, row), event_hash=row.event_hash, chain_mac=row.chain_mac)

    def verify(
        self,
        key: ChainKey | None,
        events: list[StoredEvent] | None = None,
        keyed_from: int | None = None,
        sealed_through: int = 0,
    ) -> ChainVerdict:
        """The chain (``events``, or every stored event), then the head row against it."""
        stored = events if events is not None else self.stored_events()
        verdict = verify_chain(stored, key, keyed_from, sealed_through)
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

    def event(self, sequence: int) -> StoredEvent | None:
        """One event, if it is there."""
        row = self._session.get(AuditEventRow, sequence)
        if row is None:
            return None
        values = {name: getattr(row, name) for name in _LINKED_FIELDS}
        return StoredEvent(
            event=LinkedEvent(sequence=row.id, **values), event_hash=row.event_hash, chain_mac=row.chain_mac
        )

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
    """Signed checkpoints of the audit chain."""

    def head(self) -> tuple[int, str]:
        head = self._session.get(AuditHeadRow, 1)
        return (head.last_event_id, head.last_hash) if head else (0, GENESIS_HASH)

    def lock(self) -> None:
        """Serialise checkpoint makers across processes (the chain head row, as appends do)."""
        SQLAuditLog(self._session)._locked_head()

    def latest(self) -> Checkpoint | None:
        row = self._session.scalars(
            select(AuditCheckpointRow).order_by(AuditCheckpointRow.number.desc()).limit(1)
        ).one_or_none()
        return _checkpoint(row) if row is not None else None

    def add(self, checkpoint: Checkpoint) -> None:
        self._session.add(AuditCheckpointRow(**dataclasses.asdict(checkpoint)))
        self._session.flush()

    def set_timestamp(self, number: int, *, token: bytes | None, problem: str | None) -> None:
        """Record the time-stamp token of checkpoint ``number`` (or why there is none)."""
        self._session.execute(
            update(AuditCheckpointRow)
            .where(AuditCheckpointRow.number == number)
            .values(timestamp_token=token, timestamp_problem=problem)
        )

    def all(self) -> list[Checkpoint]:
        rows = self._session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.number))
        return [_checkpoint(row) for row in rows]

    def event_hash_at(self, event_id: int) -> str | None:
        row = self._session.get(AuditEventRow, event_id)
        return row.event_hash if row else None


def _checkpoint(row: AuditCheckpointRow) -> Checkpoint:
    return Checkpoint(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Checkpoint)})


class SQLAuditKeys(Repository):
    """The registry of the audit keys: one (label, key id) per purpose."""

    def get(self, purpose: str) -> tuple[str, str, int | None] | None:
        """The label, hex key id and first keyed event registered for ``purpose``."""
        row = self._session.get(AuditKeyRow, purpose)
        return (row.label, row.key_id_hex, row.keyed_from) if row is not None else None

    def register(self, purpose: str, *, label: str, key_id_hex: str, at: dt.datetime, chain: bool = False) -> bool:
        """Register a key for ``purpose`` (for the ``chain`` key with the next event as the first
        keyed one); False when another process registered one first (on PostgreSQL the insert
        waits for that process's transaction to end)."""
        head = self._session.get(AuditHeadRow, 1)
        keyed_from = (head.last_event_id if head else 0) + 1 if chain else None
        try:
            with self._session.begin_nested():
                self._session.add(
                    AuditKeyRow(
                        purpose=purpose, label=label, key_id_hex=key_id_hex, created_at=at, keyed_from=keyed_from
                    )
                )
                self._session.flush()
        except IntegrityError:
            return False
        return True
