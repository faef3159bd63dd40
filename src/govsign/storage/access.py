"""Agencies and API clients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from govsign.storage.models import AgencyRow, APIClientRow, RemoteAccessTokenRow
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


@dataclass(frozen=True, kw_only=True)
class RemoteAccessTokenRecord:
    token_sha256: str
    """SHA-256 of the access token (never the token)."""
    client_id: str
    """The API client it was given to."""
    created_at: dt.datetime
    """When it was given."""
    expires_at: dt.datetime
    """When it stops working."""
    revoked_at: dt.datetime | None
    """When the client revoked it (None while not revoked)."""


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

    # -- remote-signing (CSC) access tokens ---------------------------------------------------

    def add_remote_token(self, record: RemoteAccessTokenRecord) -> None:
        self._session.add(to_row(RemoteAccessTokenRow, record))
        self._session.flush()

    def remote_token(self, token_sha256: str) -> RemoteAccessTokenRecord | None:
        row = self._session.get(RemoteAccessTokenRow, token_sha256)
        return to_record(RemoteAccessTokenRecord, row) if row else None

    def revoke_remote_token(self, token_sha256: str, client_id: str, at: dt.datetime) -> bool:
        """Revoke the client's own token; False when it has no such unrevoked token."""
        result = self._session.execute(
            update(RemoteAccessTokenRow)
            .where(
                RemoteAccessTokenRow.token_sha256 == token_sha256,
                RemoteAccessTokenRow.client_id == client_id,
                RemoteAccessTokenRow.revoked_at.is_(None),
            )
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))

    def purge_remote_tokens(self, *, expired_before: dt.datetime) -> int:
        result = self._session.execute(
            delete(RemoteAccessTokenRow).where(RemoteAccessTokenRow.expires_at < expired_before)
        )
        return int(getattr(result, "rowcount", 0) or 0)
