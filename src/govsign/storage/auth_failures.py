"""Counters of failed authentications per address, claimed client and minute, shared by every
worker process and node of a deployment (the limiter and the audit of failures read them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from govsign.storage.models import AuthFailureRow
from govsign.storage.sql import Repository, database_errors, upsertable_insert


@dataclass(frozen=True, kw_only=True)
class AuthFailureCount:
    """The failed authentications of one address in one minute."""

    source: str
    """The address."""
    window_start: dt.datetime
    """The minute's start."""
    failures: int
    """How many failed."""
    client_ids: tuple[str, ...]
    """The clients the failed credentials named (sorted; none for credentials naming none)."""


class SQLAuthFailureStore(Repository):
    """Count failed authentications; take the counts of minutes that are over."""

    @database_errors
    def add(self, source: str, client_id: str, window_start: dt.datetime, count: int = 1) -> tuple[int, int]:
        """Count ``count`` failures; returns the failures of this minute from ``source`` naming
        ``client_id`` and from ``source`` in all (these included)."""
        statement = upsertable_insert(self._session, AuthFailureRow).values(
            source=source, client_id=client_id, window_start=window_start, failures=count
        )
        statement = statement.on_conflict_do_update(
            index_elements=["source", "client_id", "window_start"],
            set_={"failures": AuthFailureRow.failures + count},
        ).returning(AuthFailureRow.failures)
        for_client = int(self._session.execute(statement).scalar_one())
        for_source = self._session.scalar(
            select(func.sum(AuthFailureRow.failures)).where(
                AuthFailureRow.source == source, AuthFailureRow.window_start == window_start
            )
        )
        return for_client, int(for_source or for_client)

    @database_errors
    def take_before(self, window_start: dt.datetime) -> list[AuthFailureCount]:
        """Remove and return the counts of minutes before ``window_start``, one per address and
        minute. The rows are locked first, so two processes never take the same counts."""
        rows = list(
            self._session.scalars(
                select(AuthFailureRow)
                .where(AuthFailureRow.window_start < window_start)
                .order_by(AuthFailureRow.window_start, AuthFailureRow.source, AuthFailureRow.client_id)
                .with_for_update()
            )
        )
        grouped: dict[tuple[str, dt.datetime], list[AuthFailureRow]] = {}
        for row in rows:
            grouped.setdefault((row.source, row.window_start), []).append(row)
        for row in rows:
            self._session.execute(
                delete(AuthFailureRow).where(
                    AuthFailureRow.source == row.source,
                    AuthFailureRow.client_id == row.client_id,
                    AuthFailureRow.window_start == row.window_start,
                )
            )
        return [
            AuthFailureCount(
                source=source,
                window_start=start,
                failures=sum(row.failures for row in group),
                client_ids=tuple(sorted(row.client_id for row in group if row.client_id)),
            )
            for (source, start), group in grouped.items()
        ]
