"""The audit log's chain: canonical serialisation, hashing, keying and verification (pure logic).

Each event's hash covers its sequence number, time, fields and the previous event's hash, in a
canonical JSON form (sorted keys, no whitespace, UTF-8, times as UTC ISO 8601). Changing,
deleting, inserting or reordering any event breaks the chain at that event.

The hash alone can be recomputed by anyone who can write the database. So each event of chain
version 2 also carries its *keyed chain value*: HMAC-SHA256, computed inside the HSM with a
secret that never leaves it, over the event's sequence number and hash (which commits to every
event before it). Someone with database access only can rewrite events and recompute hashes,
but not keyed values: the first rewritten event is the first whose keyed value does not match.
Events written before the keyed chain existed (version 1) are verified by their hashes and the
signed checkpoints, as before; after the first version 2 event every event must be version 2.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

GENESIS_HASH = "0" * 64

#: Events hashed with SHA-256 only (written before the keyed chain).
CHAIN_UNKEYED = 1
#: Events hashed and keyed by the audit chain key in the HSM.
CHAIN_KEYED = 2

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
    notes: tuple[str, ...] = ()
    """Facts an auditor should know that do not break the chain (a checkpoint without a
    time-stamp, events not yet keyed)."""

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
    chain_version: int = CHAIN_UNKEYED
    """:data:`CHAIN_UNKEYED` or :data:`CHAIN_KEYED` (hashed from version 2 on)."""


@dataclass(frozen=True, kw_only=True)
class StoredEvent:
    """An event as read back, with the values stored beside it."""

    event: LinkedEvent
    """What was recorded."""
    event_hash: str
    """The hash stored with it."""
    chain_mac: str | None
    """The keyed chain value stored with it (None for version 1, or not sealed yet)."""


class ChainKey(Protocol):
    """The audit chain key: HMAC-SHA256 computed where the secret lives (the HSM)."""

    def mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message``."""
        ...


def mac_message(sequence: int, digest: str) -> bytes:
    """What an event's keyed chain value covers: its place and its hash (which covers the chain
    before it)."""
    return f"govsign-audit-event\n{sequence}\n{digest}\n".encode("ascii")


def chain_mac(key: ChainKey, sequence: int, digest: str) -> str:
    """The keyed chain value of event ``sequence`` with hash ``digest``, hex."""
    return key.mac(mac_message(sequence, digest)).hex()


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
    if event.chain_version != CHAIN_UNKEYED:  # version 1 hashes stay what they were
        body["v"] = event.chain_version
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def verify_chain(
    events: Iterable[StoredEvent], key: ChainKey | None, keyed_from: int | None = None, sealed_through: int = 0
) -> ChainVerdict:
    """Check stored events, given in sequence order. ``key`` checks the keyed chain values (None
    when the audit chain key is not available: keyed events then fail); from event
    ``keyed_from`` on every event must be keyed, and up to ``sealed_through`` every keyed event
    must carry its keyed value (as the signed checkpoints say: they are made over keyed events
    only)."""
    expected_previous = GENESIS_HASH
    expected_sequence = 1
    checked = 0
    keyed_seen = False
    unsealed_from: int | None = None
    for stored in events:
        event = stored.event
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
        if event.chain_version not in (CHAIN_UNKEYED, CHAIN_KEYED):
            return ChainVerdict.broken(
                checked, sequence, f"Audit event {sequence} has an unknown chain version {event.chain_version}."
            )
        if event.chain_version == CHAIN_UNKEYED and keyed_from is not None and sequence >= keyed_from:
            return ChainVerdict.broken(
                checked,
                sequence,
                f"Audit event {sequence} was altered: it is unkeyed, but every event from event {keyed_from} on is keyed.",
            )
        if event.chain_version == CHAIN_UNKEYED and keyed_seen:
            return ChainVerdict.broken(
                checked, sequence, f"Audit event {sequence} was altered: it is unkeyed after keyed events."
            )
        if event_hash(event) != stored.event_hash:
            return ChainVerdict.broken(checked, sequence, f"Audit event {sequence} was altered after it was written.")
        if event.chain_version == CHAIN_KEYED and stored.chain_mac is None and sequence <= sealed_through:
            return ChainVerdict.broken(
                checked,
                sequence,
                f"Audit event {sequence} was altered: it lost its keyed chain value (a signed checkpoint covers it).",
            )
        if event.chain_version == CHAIN_KEYED:
            keyed_problem = _keyed_problem(stored, key, keyed_seen, unsealed_from)
            if keyed_problem is not None:
                return ChainVerdict.broken(checked, unsealed_from or sequence, keyed_problem)
            if stored.chain_mac is None and unsealed_from is None:
                unsealed_from = sequence
            keyed_seen = True
        expected_previous = stored.event_hash
        expected_sequence += 1
    return ChainVerdict(intact=True, events_checked=checked, first_broken_sequence=None, problem=None)


def _keyed_problem(
    stored: StoredEvent, key: ChainKey | None, keyed_before: bool, unsealed_from: int | None
) -> str | None:
    sequence = stored.event.sequence
    if stored.chain_mac is None:
        return None  # written while the HSM was unreachable; allowed only as the chain's tail
    if unsealed_from is not None:
        return f"Audit event {unsealed_from} was altered: it lost its keyed chain value, later events have theirs."
    if key is None:
        return f"Audit event {sequence} cannot be checked: the audit chain key is not registered (audit_keys) or not in the HSM."
    if not hmac.compare_digest(chain_mac(key, sequence, stored.event_hash), stored.chain_mac):
        if keyed_before:
            return f"Audit event {sequence} was altered after it was written (its keyed chain value does not match)."
        return (
            f"Audit event {sequence} was altered after it was written, or an unkeyed event before it was "
            "(its keyed chain value does not match)."
        )
    return None
