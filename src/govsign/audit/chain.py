"""The audit log's hash chain: canonical serialisation, hashing and verification (pure logic).

Each event's hash covers its sequence number, time, fields and the previous event's hash, in a
canonical JSON form (sorted keys, no whitespace, UTF-8, times as UTC ISO 8601). Changing,
deleting, inserting or reordering any event breaks the chain at that event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64

#: Keys that must never appear in audit details, at any depth.
FORBIDDEN_DETAIL_KEYS = frozenset({"pin", "so_pin", "user_pin", "password", "secret", "private_key", "document"})


@dataclass(frozen=True, kw_only=True)
class ChainedEvent:
    """An audit event as stored, with its place in the chain."""

    sequence: int
    """Position in the chain, from 1, without gaps."""
    occurred_at: dt.datetime
    """When it happened (UTC)."""
    actor: str
    """Who acted."""
    action: str
    """What was done."""
    object_type: str
    """Kind of object."""
    object_id: str
    """Which object."""
    outcome: str
    """success, failure or denied."""
    details: dict[str, Any]
    """Further facts."""
    previous_hash: str
    """Hash of the event before (GENESIS_HASH for the first)."""
    event_hash: str
    """Hash of this event."""


@dataclass(frozen=True, kw_only=True)
class ChainVerdict:
    """The result of checking a chain."""

    intact: bool
    """True when every event links and hashes correctly."""
    events_checked: int
    """How many events were read."""
    first_broken_sequence: int | None
    """The first event that does not verify (None when intact)."""
    problem: str | None
    """What is wrong with it, in one sentence."""


def canonical_details(details: dict[str, Any] | None) -> str:
    details = details or {}
    _refuse_secrets(details)
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _refuse_secrets(value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if str(key).lower() in FORBIDDEN_DETAIL_KEYS:
                raise ValueError(f"audit details must not carry '{key}'")
            _refuse_secrets(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            _refuse_secrets(inner)


def event_hash(
    *,
    sequence: int,
    occurred_at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    outcome: str,
    details_json: str,
    previous_hash: str,
    client_id: str | None = None,
    agency_id: str | None = None,
    request_id: str | None = None,
) -> str:
    body: dict[str, object] = {
        "seq": sequence,
        "at": occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
        "details": details_json,
        "prev": previous_hash,
    }
    # Request context is hashed when present (events written by the CLI have none).
    for key, value in (("client", client_id), ("agency", agency_id), ("request", request_id)):
        if value is not None:
            body[key] = value
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(events: Iterable[tuple[Any, ...]]) -> ChainVerdict:
    """Check stored events given in id order as tuples
    ``(id, occurred_at, actor, action, object_type, object_id, outcome, details_json, previous_hash, event_hash)``,
    optionally followed by ``(client_id, agency_id, request_id)``.
    """
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for row in events:
        checked += 1
        (sequence, occurred_at, actor, action, object_type, object_id, outcome, details_json, previous, stored) = row[
            :10
        ]
        client_id, agency_id, request_id = ((*tuple(row[10:13]), None, None, None))[:3]
        if sequence > expected_sequence:
            return ChainVerdict(
                intact=False,
                events_checked=checked,
                first_broken_sequence=expected_sequence,
                problem=f"Audit event {expected_sequence} is missing (the next event is {sequence}); events were deleted.",
            )
        if sequence != expected_sequence:
            return ChainVerdict(
                intact=False,
                events_checked=checked,
                first_broken_sequence=sequence,
                problem=f"Audit event {sequence} follows event {expected_sequence - 1}; events are missing or reordered.",
            )
        if previous != expected_previous:
            return ChainVerdict(
                intact=False,
                events_checked=checked,
                first_broken_sequence=sequence,
                problem=f"Audit event {sequence} does not link to the event before it.",
            )
        computed = event_hash(
            sequence=sequence,
            occurred_at=occurred_at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            outcome=outcome,
            details_json=details_json,
            previous_hash=previous,
            client_id=client_id,
            agency_id=agency_id,
            request_id=request_id,
        )
        if computed != stored:
            return ChainVerdict(
                intact=False,
                events_checked=checked,
                first_broken_sequence=sequence,
                problem=f"Audit event {sequence} was altered after it was written.",
            )
        expected_previous = stored
        expected_sequence += 1
    return ChainVerdict(intact=True, events_checked=checked, first_broken_sequence=None, problem=None)
