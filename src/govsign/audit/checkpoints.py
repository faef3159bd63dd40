"""Checkpoints of the audit chain and the export outside the database (pure logic).

A checkpoint is a signature by the audit key in the HSM over the chain at one event. Version 2
checkpoints are numbered 1, 2, 3... and each signs the hash of the checkpoint before it, so a
deleted, reordered or changed checkpoint breaks the numbering or the chain of checkpoints. They
are made when event 100, 200, ... is written (one covering exactly that event) and whenever an
event has waited five minutes without a checkpoint covering it: so the numbering and the fixed
interval say where one must be.

Each checkpoint, and a *head record* (the sequence number, hash and keyed chain value of the
latest event) at least every 10 seconds while events arrive, are also written to an append-only
JSON-lines export outside the database, which an auditor keeps elsewhere. The export names a
head the database must still reach, and checkpoints the database must still hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

#: A checkpoint covering exactly every hundredth event.
CHECKPOINT_EVERY_EVENTS = 100
#: No event waits longer than this without a checkpoint covering it (while the service runs).
CHECKPOINT_EVERY = dt.timedelta(minutes=5)
#: How late a due checkpoint may be before ``audit verify`` calls it missing (the background
#: loop makes it within seconds; this leaves room for a busy or restarting service).
CHECKPOINT_GRACE = dt.timedelta(seconds=120)
#: A head record is exported at least this often while events arrive.
HEAD_EXPORT_EVERY = dt.timedelta(seconds=10)

#: The previous-checkpoint hash of checkpoint 1.
NO_PREVIOUS_CHECKPOINT = "0" * 64

CHECKPOINT_UNCHAINED = 1
CHECKPOINT_CHAINED = 2


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    """One signed checkpoint, as stored and exported."""

    number: int
    """1, 2, 3... in order."""
    version: int
    """:data:`CHECKPOINT_UNCHAINED` (made before checkpoints were chained) or :data:`CHECKPOINT_CHAINED`."""
    last_event_id: int
    """The event it covers."""
    last_hash: str
    """That event's hash."""
    last_mac: str | None
    """That event's keyed chain value (version 2)."""
    previous_hash: str | None
    """The hash of the checkpoint before it (version 2)."""
    keyed_from: int | None
    """The first event of the keyed chain (version 2): no event from it on may be unkeyed."""
    signed_at: dt.datetime
    """When it was signed (to the second)."""
    key_label: str
    """The audit signing key's label."""
    key_id_hex: str | None
    """The audit signing key's id (version 2)."""
    signature: bytes
    """ECDSA P-256 over :meth:`message`, DER."""
    timestamp_token: bytes | None = None
    """Our TSA's RFC 3161 token over :meth:`digest` (None when the TSA was unavailable)."""
    timestamp_problem: str | None = None
    """Why there is no time-stamp token."""

    def message(self) -> bytes:
        """What the signature covers."""
        stamp = self.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.version == CHECKPOINT_UNCHAINED:
            return f"govsign-audit-checkpoint\n{self.last_event_id}\n{self.last_hash}\n{stamp}\n".encode("ascii")
        return (
            f"govsign-audit-checkpoint-v2\n{self.number}\n{self.last_event_id}\n{self.last_hash}\n"
            f"{self.last_mac or ''}\n{self.previous_hash}\n{self.keyed_from}\n{stamp}\n"
        ).encode("ascii")

    def digest(self) -> str:
        """The checkpoint's hash: SHA-256 over its message and signature, hex (what the next
        checkpoint signs and the time-stamp covers)."""
        return hashlib.sha256(self.message() + self.signature).hexdigest()

    def export_record(self) -> dict[str, Any]:
        """Its line in the export."""
        return {
            "type": "checkpoint",
            "number": self.number,
            "version": self.version,
            "last_event_id": self.last_event_id,
            "last_hash": self.last_hash,
            "last_mac": self.last_mac,
            "previous_hash": self.previous_hash,
            "keyed_from": self.keyed_from,
            "signed_at": self.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "key_label": self.key_label,
            "key_id": self.key_id_hex,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "hash": self.digest(),
            "timestamp_token": base64.b64encode(self.timestamp_token).decode("ascii") if self.timestamp_token else None,
            "timestamp_problem": self.timestamp_problem,
        }


@dataclass(frozen=True, kw_only=True)
class HeadRecord:
    """The chain's latest event, as exported."""

    sequence: int
    """Its sequence number."""
    event_hash: str
    """Its hash."""
    chain_mac: str | None
    """Its keyed chain value (None when written while the HSM was unreachable)."""
    at: dt.datetime
    """When the record was written."""

    def export_record(self) -> dict[str, Any]:
        """Its line in the export."""
        return {
            "type": "head",
            "sequence": self.sequence,
            "event_hash": self.event_hash,
            "chain_mac": self.chain_mac,
            "at": self.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }


@dataclass(frozen=True, kw_only=True)
class ExportContents:
    """What an export file holds: its checkpoints by number and its head records in order."""

    checkpoints: dict[int, dict[str, Any]]
    """The exported checkpoint records by number."""
    heads: list[HeadRecord]
    """The head records, in the order written."""
    torn_lines: tuple[int, ...] = ()
    """Lines that are not whole JSON (writes cut short by a crash), left out."""


def export_line(record: dict[str, Any]) -> str:
    """One JSON line (no newline inside)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def parse_export(lines: list[str]) -> ExportContents:
    """Read an export's lines; lines that are not whole JSON (a write cut short by a crash) are
    left out and named; raise ValueError naming the first whole line that is not a record."""
    checkpoints: dict[int, dict[str, Any]] = {}
    heads: list[HeadRecord] = []
    torn: list[int] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            torn.append(number)
            continue
        try:
            if record["type"] == "checkpoint":
                checkpoints[int(record["number"])] = record
            elif record["type"] == "head":
                heads.append(
                    HeadRecord(
                        sequence=int(record["sequence"]),
                        event_hash=str(record["event_hash"]),
                        chain_mac=record["chain_mac"],
                        at=dt.datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00")),
                    )
                )
            else:
                raise ValueError(record["type"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number} of the audit export is not an export record") from exc
    return ExportContents(checkpoints=checkpoints, heads=heads, torn_lines=tuple(torn))


def missing_checkpoint(
    *, keyed_events: list[tuple[int, dt.datetime]], covered_through: int, hundreds_covered: set[int]
) -> tuple[int, str] | None:
    """Where a checkpoint must be and is not: the event it must cover and a sentence, or None.

    ``keyed_events`` are the (sequence, time) of the version 2 events, in order;
    ``covered_through`` the last event any checkpoint covers; ``hundreds_covered`` the multiples
    of :data:`CHECKPOINT_EVERY_EVENTS` a checkpoint covers exactly. A checkpoint is missing when
    events kept arriving well after it was due (the service was writing events, so it was
    running and would have made it): judged by the events' own times, not by the clock of the
    verifier, so a log that simply stopped is not called incomplete."""
    latest = keyed_events[-1][1] if keyed_events else None
    for sequence, at in keyed_events:
        assert latest is not None
        if (
            sequence % CHECKPOINT_EVERY_EVENTS == 0
            and sequence not in hundreds_covered
            and latest > at + CHECKPOINT_GRACE
        ):
            return sequence, (
                f"The audit checkpoint at event {sequence} is missing (one is made at every "
                f"{CHECKPOINT_EVERY_EVENTS}th event); checkpoints were deleted."
            )
        if sequence > covered_through and latest > at + CHECKPOINT_EVERY + CHECKPOINT_GRACE:
            return sequence, (
                f"The audit checkpoint covering event {sequence} is missing: events were written more than "
                f"{int(CHECKPOINT_EVERY.total_seconds() // 60)} minutes after it and none covers it; "
                "checkpoints were deleted."
            )
    return None
