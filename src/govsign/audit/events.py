"""An audit event as the application describes it, before the hash chain stores it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    """One security-relevant action, as the core describes it."""

    action: str
    """What was done, e.g. ``certificate.issue``."""
    actor: str
    """Who did it (operator, client or system)."""
    object_type: str
    """Kind of object acted on."""
    object_id: str
    """Which object."""
    outcome: str = "success"
    """success, failure or denied."""
    details: dict[str, Any] | None = None
    """Further facts; never PINs, keys, secrets or document content."""
    client_id: str | None = None
    """The API client that made the request, if any."""
    agency_id: str | None = None
    """The agency of that client, if any."""
    request_id: str | None = None
    """The request id (also in the X-Request-ID response header)."""


@dataclass(frozen=True, kw_only=True)
class AuditContext:
    """Who is behind the events of one request."""

    client_id: str | None = None
    """The API client."""
    agency_id: str | None = None
    """Its agency."""
    request_id: str | None = None
    """The request id."""


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Which events an auditor asks for (every filter optional), oldest first."""

    action: str | None = None
    """Only this action."""
    actor: str | None = None
    """Only this actor."""
    client_id: str | None = None
    """Only events of this API client."""
    agency_id: str | None = None
    """Only events of clients of this agency."""
    object_id: str | None = None
    """Only events on this object."""
    since: dt.datetime | None = None
    """From this time (inclusive)."""
    until: dt.datetime | None = None
    """Until this time (exclusive)."""
    after_id: int | None = None
    """Only events after this one (pagination)."""
    limit: int = 100
    """At most this many."""
