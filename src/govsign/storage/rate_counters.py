"""Requests counted per key and minute, shared by every worker process and node."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from govsign.storage.models import RateCounterRow
from govsign.storage.sql import Repository, database_errors, upsertable_insert


class SQLRateCounterStore(Repository):
    """Per-minute counters (the public page's rate per address)."""

    @database_errors
    def add(self, key: str, window_start: dt.datetime, count: int = 1) -> int:
        """Count ``count`` for ``key`` in the minute starting at ``window_start``; the minute's total."""
        statement = upsertable_insert(self._session, RateCounterRow).values(
            key=key, window_start=window_start, count=count
        )
        statement = statement.on_conflict_do_update(
            index_elements=["key", "window_start"], set_={"count": RateCounterRow.count + count}
        ).returning(RateCounterRow.count)
        total = int(self._session.execute(statement).scalar_one())
        self._session.execute(
            delete(RateCounterRow).where(RateCounterRow.window_start < window_start - dt.timedelta(minutes=5))
        )
        return total
