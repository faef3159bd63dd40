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

    @classmethod
    def broken(cls, events_checked: int, sequence: int, problem: str) -> ChainVerdict:
        """The chain is broken at event ``sequence``, for the reason ``problem``."""
        return cls(intact=False, events_checked=events_checked, first_broken_sequence=sequence, problem=problem)


@dataclass(frozen=True, kw_only=True)
class LinkedEvent:
    """One event as the chain stores and hashes it."""

    sequence: int
    """Its place in the chain, from 1."""
    occurred_at: dt.datetime
    """When it happened (hashed as UTC)."""
    actor: str
    """Who did it."""
    action: str
    """What was done."""
    object_type: str
    """Kind of object acted on."""
    object_id: str
    """Which object."""
    outcome: str
    """success, failure or denied."""
    details_json: str
    """The details in canonical JSON (:func:`canonical_details`)."""
    previous_hash: str
    """The hash of the event before it (:data:`GENESIS_HASH` for the first)."""
    client_id: str | None = None
    """The API client that made the request (hashed when present)."""
    agency_id: str | None = None
    """Its agency (hashed when present)."""
    request_id: str | None = None
    """The request id (hashed when present)."""


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


def event_hash(event: LinkedEvent) -> str:
    """The event's SHA-256 over its canonical JSON form, hex."""
    body: dict[str, object] = {
        "seq": event.sequence,
        "at": event.occurred_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "details": event.details_json,
        "prev": event.previous_hash,
    }
    # Request context is hashed when present (events written by the CLI have none).
    for key, value in (("client", event.client_id), ("agency", event.agency_id), ("request", event.request_id)):
        if value is not None:
            body[key] = value
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(events: Iterable[tuple[LinkedEvent, str]]) -> ChainVerdict:
    """Check stored events, given in sequence order with the hash stored beside each."""
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    for event, stored in events:
        checked += 1
        sequence = event.sequence
        if sequence > expected_sequence:
            return ChainVerdict.broken(
                checked,
                expected_sequence,
                f"Audit event {expected_sequence} is missing (the next event is {sequence}); events were deleted.",
            )
        if sequence != expected_sequence:
            problem = f"Audit event {sequence} follows event {expected_sequence - 1}; events are missing or reordered."
            return ChainVerdict.broken(checked, sequence, problem)
        if event.previous_hash != expected_previous:
            return ChainVerdict.broken(
                checked, sequence, f"Audit event {sequence} does not link to the event before it."
            )
        if event_hash(event) != stored:
            return ChainVerdict.broken(checked, sequence, f"Audit event {sequence} was altered after it was written.")
        expected_previous = stored
        expected_sequence += 1
    return ChainVerdict(intact=True, events_checked=checked, first_broken_sequence=None, problem=None)
