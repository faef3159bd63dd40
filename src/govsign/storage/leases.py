"""Leases of deployment-wide background jobs: a row per job naming its holder and when the lease
ends. A row rather than an advisory lock: it works the same on SQLite and PostgreSQL, it is
visible (who runs the job, until when), and it is scoped to the schema, so deployments sharing
one PostgreSQL database in separate schemas never take each other's leases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, delete, or_, select, update

from govsign.storage.models import LeaseRow
from govsign.storage.sql import Repository, database_errors, to_record, upsertable_insert


@dataclass(frozen=True, kw_only=True)
class LeaseRecord:
    name: str
    """The job (or group of jobs) the lease is for."""
    holder: str
    """The process that holds it (host, pid and a random part)."""
    acquired_at: dt.datetime
    """When this holder took it."""
    expires_at: dt.datetime
    """When it ends unless renewed."""


class SQLLeaseStore(Repository):
    """Take, renew and give back leases."""

    @database_errors
    def acquire(self, name: str, holder: str, *, now: dt.datetime, until: dt.datetime) -> bool:
        """Take the lease ``name`` for ``holder`` until ``until``, or renew it when ``holder`` has it
        already; True when ``holder`` holds it afterwards. Nobody else can take a lease before it
        expires: the update is one conditional statement, so of two processes racing for an
        expired lease exactly one wins (PostgreSQL re-checks the condition on the row the other
        changed; SQLite runs one writer at a time)."""
        self._session.execute(
            upsertable_insert(self._session, LeaseRow)
            .values(name=name, holder=holder, acquired_at=now, expires_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        taken = self._session.execute(
            update(LeaseRow)
            .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at <= now))
            .values(
                holder=holder,
                expires_at=until,
                acquired_at=case((LeaseRow.holder == holder, LeaseRow.acquired_at), else_=now),
            )
        )
        return bool(getattr(taken, "rowcount", 0))

    @database_errors
    def release(self, name: str, holder: str) -> None:
        """Give the lease back (when ``holder`` still has it), so another process may take it now."""
        self._session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))

    @database_errors
    def get(self, name: str) -> LeaseRecord | None:
        """The lease ``name`` as stored (possibly expired)."""
        row = self._session.scalars(select(LeaseRow).where(LeaseRow.name == name)).one_or_none()
        return to_record(LeaseRecord, row) if row is not None else None
