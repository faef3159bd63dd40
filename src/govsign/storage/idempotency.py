"""Idempotency keys of creating requests and the answers they got."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from govsign.storage.models import IdempotencyKeyRow
from govsign.storage.sql import Repository, to_record


@dataclass(frozen=True, kw_only=True)
class IdempotencyRecord:
    client_id: str
    """The client that sent the key."""
    key: str
    """The Idempotency-Key."""
    request_hash: str
    """SHA-256 of the request it was first sent with."""
    response_status: int | None
    """The answer's status (None while the first request runs)."""
    response_body: str | None
    """The answer's body."""
    created_at: dt.datetime
    """When it was claimed."""


class SQLIdempotencyStore(Repository):
    """Idempotency keys of creating requests."""

    def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = self._session.scalars(
            select(IdempotencyKeyRow).where(IdempotencyKeyRow.client_id == client_id, IdempotencyKeyRow.key == key)
        ).one_or_none()
        return to_record(IdempotencyRecord, row) if row is not None else None

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
