"""Agencies and API clients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from govsign.storage.models import AgencyRow, APIClientRow
from govsign.storage.sql import Repository, to_record, to_row


@dataclass(frozen=True, kw_only=True)
class AgencyRecord:
    id: str
    """Short identifier (also in client records and certificates)."""
    name: str
    """The agency's name."""
    parent_id: str | None
    """The agency it is a unit of, if any."""
    created_at: dt.datetime
    """When it was added."""


@dataclass(frozen=True, kw_only=True)
class APIClientRecord:
    id: str
    """Random identifier."""
    name: str
    """Unique name (as the CLI names it)."""
    role: str
    """admin, ra-officer, signer, verifier or auditor."""
    agency_id: str
    """The agency it acts for."""
    secret_hash: str
    """Keyed hash of its token (never the token)."""
    status: str
    """active or disabled."""
    certificate_fingerprint: str | None
    """SHA-256 of its TLS client certificate, if registered."""
    created_at: dt.datetime
    """When it was added."""
    rotated_at: dt.datetime | None
    """When its token was last replaced."""


class SQLAccessStore(Repository):
    """Agencies and API clients."""

    def add_agency(self, record: AgencyRecord) -> None:
        self._session.add(to_row(AgencyRow, record))
        self._session.flush()

    def get_agency(self, agency_id: str) -> AgencyRecord | None:
        row = self._session.get(AgencyRow, agency_id)
        return to_record(AgencyRecord, row) if row else None

    def list_agencies(self) -> list[AgencyRecord]:
        rows = self._session.scalars(select(AgencyRow).order_by(AgencyRow.id))
        return [to_record(AgencyRecord, row) for row in rows]

    def agency_parents(self) -> dict[str, str | None]:
        return {row[0]: row[1] for row in self._session.execute(select(AgencyRow.id, AgencyRow.parent_id))}

    def add_client(self, record: APIClientRecord) -> None:
        self._session.add(to_row(APIClientRow, record))
        self._session.flush()

    def get_client(self, client_id: str) -> APIClientRecord | None:
        row = self._session.get(APIClientRow, client_id)
        return to_record(APIClientRecord, row) if row else None

    def client_by_name(self, name: str) -> APIClientRecord | None:
        row = self._session.scalars(select(APIClientRow).where(APIClientRow.name == name)).one_or_none()
        return to_record(APIClientRecord, row) if row else None

    def client_by_certificate(self, fingerprint: str) -> APIClientRecord | None:
        row = self._session.scalars(
            select(APIClientRow).where(APIClientRow.certificate_fingerprint == fingerprint)
        ).one_or_none()
        return to_record(APIClientRecord, row) if row else None

    def list_clients(self) -> list[APIClientRecord]:
        return [
            to_record(APIClientRecord, row)
            for row in self._session.scalars(select(APIClientRow).order_by(APIClientRow.name))
        ]

    def update_client(self, client_id: str, **values: Any) -> None:
        self._session.execute(update(APIClientRow).where(APIClientRow.id == client_id).values(**values))
