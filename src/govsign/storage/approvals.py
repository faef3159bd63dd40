"""Dual-control approval requests."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from govsign.storage.models import ApprovalRow
from govsign.storage.sql import Repository, locked_row, to_record, to_row


@dataclass(frozen=True, kw_only=True)
class ApprovalRecord:
    id: str
    """Random identifier."""
    operation: str
    """What is asked (enrol, revoke, hold, release, publish-crls)."""
    target: str
    """What it is asked on (a serial, a subject, all)."""
    parameters: dict[str, Any]
    """The request as it will be executed (JSON)."""
    agency_id: str | None
    """The agency concerned (None for CA-wide requests)."""
    requested_by: str
    """The officer who asked."""
    requested_at: dt.datetime
    """When."""
    status: str
    """pending, executed, rejected or failed."""
    decided_by: str | None
    """The second officer who decided."""
    decided_at: dt.datetime | None
    """When it was decided."""
    result: dict[str, Any] | None
    """What executing it gave (JSON), once decided."""


def _approval_record(row: ApprovalRow) -> ApprovalRecord:
    result = json.loads(row.result_json) if row.result_json else None
    return to_record(ApprovalRecord, row, parameters=json.loads(row.parameters_json), result=result)


class SQLApprovalStore(Repository):
    """Dual-control requests."""

    def add(self, record: ApprovalRecord) -> None:
        parameters_json = json.dumps(record.parameters, sort_keys=True)
        self._session.add(
            to_row(ApprovalRow, record, omit={"decided_by", "decided_at"}, parameters_json=parameters_json)
        )
        self._session.flush()

    def get_for_update(self, approval_id: str) -> ApprovalRecord | None:
        row = locked_row(self._session, select(ApprovalRow).where(ApprovalRow.id == approval_id))
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
