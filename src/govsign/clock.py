"""Time, injected: the cores never call ``datetime.now()`` themselves."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock, truncated to whole seconds (certificates carry no fractions)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)


class FixedClock:
    """A clock that stands still until moved; for tests."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at = self._at + delta


VIETNAM_TZ = dt.timezone(dt.timedelta(hours=7), "ICT")


def to_vietnam_time(moment: dt.datetime) -> str:
    """ISO 8601 in +07:00, the way Vietnamese users are shown times."""
    return moment.astimezone(VIETNAM_TZ).isoformat()
