"""The audit trail's checkpoints and its export outside the database: numbered, chained and
time-stamped checkpoints signed by the audit key in the HSM, head records, and ``audit verify``
(every event, every checkpoint, the export; the first altered event named)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from govsign.audit.chain import CHAIN_KEYED, ChainVerdict, StoredEvent
from govsign.audit.checkpoints import (
    CHECKPOINT_CHAINED,
    CHECKPOINT_EVERY,
    CHECKPOINT_EVERY_EVENTS,
    CHECKPOINT_UNCHAINED,
    NO_PREVIOUS_CHECKPOINT,
    Checkpoint,
    ExportContents,
    HeadRecord,
    export_line,
    missing_checkpoint,
    parse_export,
)
from govsign.clock import Clock
from govsign.errors import ConfigurationError, GovsignError, InvalidInputError
from govsign.keystore.api import KeyRef, KeyStore
from govsign.services.audit_log import KEYED_LATE_ACTION, AuditKeys, AuditLog, HSMChainKey, signature_verifies
from govsign.storage.engine import Database
from govsign.storage.ports import SQLPorts
from govsign.tsa.authority import TimeStampResponse

log = logging.getLogger(__name__)

#: While events arrive, a head record is exported when this much time passed since the last one
#: (the background loop looks every second, so records are at most ~6 s apart: within 10 s).
HEAD_EXPORT_GAP_SECONDS = 5.0

export_log = logging.getLogger("govsign.audit.export")


class AuditExport:
    """The append-only export outside the database: one JSON line per checkpoint and head record,
    appended to the file named by GOVSIGN_AUDIT_EXPORT (mode 0600) and logged on the
    ``govsign.audit.export`` logger (the log stream). Writing never raises: the record is in the
    database already, and a failed write is logged."""

    def __init__(self, path: Path | None) -> None:
        if path is not None and not path.parent.is_dir():
            raise ConfigurationError(
                f"GOVSIGN_AUDIT_EXPORT names {path}, but its directory {path.parent} does not exist."
            )
        if path is not None and path.is_dir():
            raise ConfigurationError(f"GOVSIGN_AUDIT_EXPORT names {path}, which is a directory, not a file.")
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        line = export_line(record)
        export_log.info("audit export %s", line)
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    line = "\n" + line  # after a write cut short: start a line of our own
                os.write(fd, (line + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.error("could not append to the audit export %s: %s", self.path, exc.strerror or exc)

    @staticmethod
    def read(path: Path) -> ExportContents:
        """The records of an export file; InvalidInputError with one sentence when it cannot be read."""
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InvalidInputError(f"Cannot read the audit export {path}: {reason}.") from None
        try:
            return parse_export(text.splitlines())
        except ValueError as exc:
            raise InvalidInputError(f"The audit export {path} is not valid: {exc}.") from None


#: ``timestamp(query_der)`` -> an RFC 3161 TimeStampResp (our TSA, in process).
TimeStamper = Callable[[bytes], bytes]


class AuditCheckpoints:
    """Numbered, chained, time-stamped checkpoints of the chain, signed by the audit key in the
    HSM, their export with the head records, and the check of the whole trail."""

    def __init__(
        self,
        *,
        database: Database,
        keystore: KeyStore,
        clock: Clock,
        keys: AuditKeys,
        audit: AuditLog,
        export: AuditExport,
        timestamp: TimeStamper | None = None,
    ) -> None:
        self._database = database
        self._keystore = keystore
        self._clock = clock
        self._keys = keys
        self._audit = audit
        self._export = export
        self._timestamp = timestamp
        self._exported_head: str | None = None  # the event hash of the last head exported
        self._exported_at = 0.0
        self._export_lock = threading.Lock()

    # -- making checkpoints ---------------------------------------------------------------------

    def checkpoint(self, *, force: bool = False) -> int | None:
        """Make the checkpoints that are due: one at each multiple of 100 events not yet covered,
        and one at the head when an event has waited five minutes uncovered (or, with ``force``,
        when any event is uncovered). Returns the last event covered, or None when none was due.
        Events written while the HSM was unreachable are keyed first. Decided on a read first,
        so the background loop takes the chain's lock only when there is work."""
        with self._database.read_only() as ports:
            if not self._due(ports, force=force) and not ports.audit.has_unsealed():
                return None
        key = self._keys.signing_key()
        if key is None:
            self._keys.ensure()
            key = self._keys.signing_key()
        assert key is not None
        made: list[Checkpoint] = []
        with self._database.unit_of_work() as ports:
            ports.checkpoints.lock()
            keyed_late = ports.audit.seal_pending(self._audit.sealer(ports))
            if ports.audit.has_unsealed():
                return None  # the HSM is still unreachable
            if keyed_late is not None:
                self._audit.record_keyed_late(ports, keyed_late)
            previous = ports.checkpoints.latest()
            keyed_from = self._keys.keyed_from(ports)
            for target in self._due(ports, force=force):
                stored = ports.audit.event(target)
                assert stored is not None
                previous = self._sign(key, stored, previous, keyed_from)
                ports.checkpoints.add(previous)
                made.append(previous)
        # time-stamped after the chain's lock is released: our TSA may write an audit event of
        # its own (a refusal), which needs that lock; the token is not part of what is signed
        stamped = []
        for checkpoint in made:
            token, problem = self._time_stamp(checkpoint.digest())
            with self._database.unit_of_work() as ports:
                ports.checkpoints.set_timestamp(checkpoint.number, token=token, problem=problem)
            stamped.append(dataclasses.replace(checkpoint, timestamp_token=token, timestamp_problem=problem))
        for checkpoint in stamped:
            self._export.write(checkpoint.export_record())
        return made[-1].last_event_id if made else None

    def _due(self, ports: SQLPorts, *, force: bool) -> list[int]:
        """The events a checkpoint is due at, in order."""
        last_id, _ = ports.checkpoints.head()
        latest = ports.checkpoints.latest()
        covered = latest.last_event_id if latest else 0
        first_hundred = (covered // CHECKPOINT_EVERY_EVENTS + 1) * CHECKPOINT_EVERY_EVENTS
        targets = list(range(first_hundred, last_id + 1, CHECKPOINT_EVERY_EVENTS))
        after = targets[-1] if targets else covered
        if last_id > after:
            oldest = ports.audit.event(after + 1)
            if force or (oldest is not None and self._clock.now() - oldest.event.occurred_at >= CHECKPOINT_EVERY):
                targets.append(last_id)
        return targets

    def _sign(
        self, key: KeyRef, stored: StoredEvent, previous: Checkpoint | None, keyed_from: int | None
    ) -> Checkpoint:
        unsigned = Checkpoint(
            keyed_from=keyed_from,
            number=previous.number + 1 if previous else 1,
            version=CHECKPOINT_CHAINED,
            last_event_id=stored.event.sequence,
            last_hash=stored.event_hash,
            last_mac=stored.chain_mac,
            previous_hash=previous.digest() if previous else NO_PREVIOUS_CHECKPOINT,
            signed_at=self._clock.now().replace(microsecond=0),
            key_label=key.label,
            key_id_hex=key.key_id_hex,
            signature=b"",
        )
        signature = self._keystore.sign(
            key, unsigned.message(), scheme=key.algorithm.default_scheme, hash_algorithm=key.algorithm.default_hash
        )
        return dataclasses.replace(unsigned, signature=signature, timestamp_problem="not time-stamped yet")

    def _time_stamp(self, digest_hex: str) -> tuple[bytes | None, str | None]:
        """Our TSA's token over the checkpoint's hash; (None, why) when the TSA is unavailable."""
        if self._timestamp is None:
            return None, "no time-stamping authority is configured"
        query = tsp.TimeStampReq(
            {
                "version": "v1",
                "message_imprint": {
                    "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                    "hashed_message": bytes.fromhex(digest_hex),
                },
                "nonce": secrets.randbits(63),
                "cert_req": True,
            }
        )
        try:
            reply = TimeStampResponse.load(self._timestamp(query.dump()))
            status = reply["status"]["status"].native
            if status not in ("granted", "granted_with_mods"):
                text = reply["status"]["status_string"].native
                return None, f"the TSA refused: {'; '.join(text) if text else status}"[:500]
            return reply["time_stamp_token"].dump(), None
        except (GovsignError, ValueError, KeyError, TypeError) as exc:  # recorded whatever the TSA does
            log.warning("audit checkpoint not time-stamped: %s", exc)
            return None, "the TSA did not answer"

    def export_head(self, *, force: bool = False) -> HeadRecord | None:
        """Export a head record when the head moved and HEAD_EXPORT_GAP_SECONDS passed since the
        last one (or, with ``force``, whenever the head moved since this process last exported)."""
        with self._export_lock:
            if not force and time.monotonic() - self._exported_at < HEAD_EXPORT_GAP_SECONDS:
                return None
            with self._database.read_only() as ports:
                last_id, _ = ports.checkpoints.head()
                stored = ports.audit.event(last_id) if last_id else None
            if stored is None or stored.event_hash == self._exported_head:
                return None
            record = HeadRecord(
                sequence=last_id, event_hash=stored.event_hash, chain_mac=stored.chain_mac, at=self._clock.now()
            )
            self._export.write(record.export_record())
            self._exported_head, self._exported_at = stored.event_hash, time.monotonic()
            return record

    def tick(self) -> None:
        """The background work (every second): due checkpoints, then the head record."""
        if self._keys.chain_secret() is None or self._keys.signing_key() is None:
            self._keys.ensure()  # not made at start-up (the HSM failed then)
        self.checkpoint()
        self.export_head()

    def at_close(self) -> None:
        """When a process stops: if it wrote events (a CLI command, a worker), a checkpoint over
        what is left uncovered; if it wrote events or exported heads before (a serving worker),
        a last head record. Never raises."""
        try:
            if self._audit.recorded:
                self.checkpoint(force=True)
            if self._audit.recorded or self._exported_head is not None:
                self.export_head(force=True)
        except Exception as exc:  # noqa: BLE001 - stopping: the database or HSM may be gone already
            log.warning("could not write the audit head at shutdown: %s", type(exc).__name__)

    # -- verifying ------------------------------------------------------------------------------

    def verify_events(self) -> ChainVerdict:
        """The events only (hash, link, keyed chain value): what must hold at any moment, also
        while a checkpoint is not made yet."""
        with self._database.read_only() as ports:
            secret = self._keys.chain_secret(ports=ports)
            return ports.audit.verify(HSMChainKey(self._keystore, secret) if secret is not None else None)

    def verify(self, export: Path | None = None) -> ChainVerdict:
        """The whole trail: every event (hash, link, keyed chain value), the checkpoints
        (numbering, chaining, signatures, the events they cover, the fixed interval), and the
        export (``export``, else the configured one): its checkpoints must all be in the
        database and its heads reached. Names the first altered event."""
        contents, notes = self._export_contents(export)
        notes += self._export_notes(contents)
        with self._database.read_only() as ports:
            secret = self._keys.chain_secret(ports=ports)
            key = HSMChainKey(self._keystore, secret) if secret is not None else None
            events = list(ports.audit.stored_events())
            checkpoints = ports.checkpoints.all()
            signed = self._latest_signed(checkpoints)
            keyed_from = signed.keyed_from if signed is not None else self._keys.keyed_from(ports)
            sealed_through = signed.last_event_id if signed is not None else 0
            verdict = ports.audit.verify(key, events, keyed_from, sealed_through)
            our_cas = [x509.load_der_x509_certificate(ca.certificate_der) for ca in ports.cas.list_cas()]
        for stored in events:
            if stored.event.action == KEYED_LATE_ACTION and stored.event.actor == "system:audit":
                notes.append(
                    f"Audit events {stored.event.object_id} were written while the HSM was unreachable and keyed "
                    f"later (event {stored.event.sequence})."
                )
        unsealed = sum(1 for s in events if s.event.chain_version == CHAIN_KEYED and s.chain_mac is None)
        if unsealed:
            notes.append(f"{unsealed} events written while the HSM was unreachable are not keyed yet.")
        # 1. an altered event: the first one the chain names, whatever became of the checkpoints
        if not verdict.intact:
            return dataclasses.replace(verdict, events_checked=len(events), notes=tuple(notes))
        # 2. what the checkpoints in the database and the export say is missing or changed
        by_sequence = {stored.event.sequence: stored for stored in events}
        problems = self._checkpoint_problems(checkpoints, by_sequence, contents, notes, our_cas)
        if contents is not None:
            problems += _export_problems(contents, checkpoints, events)
        elif checkpoints and export is None and self._export.path is not None:
            problems.append((1, f"The audit export {self._export.path} (GOVSIGN_AUDIT_EXPORT) is missing."))
        # 3. where the numbering and the fixed interval say a checkpoint must be
        if not problems:
            keyed = [(s.event.sequence, s.event.occurred_at) for s in events if s.event.chain_version == CHAIN_KEYED]
            missing = missing_checkpoint(
                keyed_events=keyed,
                covered_through=max((c.last_event_id for c in checkpoints), default=0),
                hundreds_covered={c.last_event_id for c in checkpoints},
            )
            problems += [missing] if missing is not None else []
        if problems:
            sequence, problem = min(problems, key=lambda found: found[0])
            return dataclasses.replace(ChainVerdict.broken(len(events), sequence, problem), notes=tuple(notes))
        return ChainVerdict(
            intact=True, events_checked=len(events), first_broken_sequence=None, problem=None, notes=tuple(notes)
        )

    def _latest_signed(self, checkpoints: list[Checkpoint]) -> Checkpoint | None:
        """The latest chained checkpoint whose signature verifies (what it says about the events
        holds: from which one on they are keyed, up to which one they carry keyed values)."""
        key = self._keys.signing_key()
        for checkpoint in reversed(checkpoints):
            if (
                checkpoint.version == CHECKPOINT_CHAINED
                and key is not None
                and checkpoint.key_id_hex == key.key_id_hex
                and signature_verifies(self._keystore, key, checkpoint)
            ):
                return checkpoint
        return None

    def _export_contents(self, export: Path | None) -> tuple[ExportContents | None, list[str]]:
        if export is not None:
            return AuditExport.read(export), []
        if self._export.path is None:
            return None, [
                "No audit export is configured (GOVSIGN_AUDIT_EXPORT): a deleted tail is found only up to the last checkpoint."
            ]
        if not self._export.path.exists():
            return None, []
        return AuditExport.read(self._export.path), []

    @staticmethod
    def _export_notes(contents: ExportContents | None) -> list[str]:
        if contents is not None and contents.torn_lines:
            numbers = ", ".join(str(n) for n in contents.torn_lines)
            return [f"Lines {numbers} of the audit export are not whole records (writes cut short) and were left out."]
        return []

    def _checkpoint_problems(
        self,
        checkpoints: list[Checkpoint],
        events: dict[int, StoredEvent],
        contents: ExportContents | None,
        notes: list[str],
        our_cas: list[x509.Certificate],
    ) -> list[tuple[int, str]]:
        problems: list[tuple[int, str]] = []
        legacy_keys: list[KeyRef] | None = None
        previous: Checkpoint | None = None
        for checkpoint in checkpoints:
            where = f"The audit checkpoint at event {checkpoint.last_event_id} (number {checkpoint.number})"
            expected_number = previous.number + 1 if previous else 1
            if checkpoint.number != expected_number:
                exported = contents.checkpoints.get(expected_number) if contents else None
                after = previous.last_event_id if previous else 0
                hundred = (after // CHECKPOINT_EVERY_EVENTS + 1) * CHECKPOINT_EVERY_EVENTS
                event = (
                    int(exported["last_event_id"])
                    if exported
                    else (hundred if hundred < checkpoint.last_event_id else after + 1)
                )
                problems.append(
                    (
                        event,
                        f"The audit checkpoint number {expected_number}, due at event {event}, is missing; checkpoints were deleted.",
                    )
                )
            why = None
            if checkpoint.version == CHECKPOINT_UNCHAINED:
                if previous is not None and previous.version != CHECKPOINT_UNCHAINED:
                    why = "an unchained checkpoint follows chained ones"
                else:
                    if legacy_keys is None:
                        legacy_keys = self._keys.legacy_signing_keys()
                    if not any(signature_verifies(self._keystore, key, checkpoint) for key in legacy_keys):
                        why = "its signature does not verify"
            elif checkpoint.version == CHECKPOINT_CHAINED:
                why = self._chained_problem(checkpoint, previous)
            else:
                why = f"unknown version {checkpoint.version}"
            if why is None and previous is not None and checkpoint.last_event_id <= previous.last_event_id:
                why = "it covers an event before the previous checkpoint's"
            stored = events.get(checkpoint.last_event_id)
            if why is None and stored is None:
                why = "the event it covers is missing; events were deleted"
            if (
                why is None
                and stored is not None
                and (
                    stored.event_hash != checkpoint.last_hash
                    or (checkpoint.version == CHECKPOINT_CHAINED and stored.chain_mac != checkpoint.last_mac)
                )
            ):
                after = previous.last_event_id if previous else 0
                why = f"the events after event {after} up to it were changed"
            if why is None and checkpoint.version == CHECKPOINT_CHAINED:
                if checkpoint.timestamp_token is None:  # the TSA may have been unavailable: a note
                    missing = checkpoint.timestamp_problem or "none recorded"
                    notes.append(f"Audit checkpoint {checkpoint.number} has no time-stamp ({missing}).")
                else:
                    why = _timestamp_problem(checkpoint.timestamp_token, checkpoint.digest(), our_cas)
            if why is not None:
                problems.append((checkpoint.last_event_id, f"{where} is not valid: {why}."))
            previous = checkpoint
        return problems

    def _chained_problem(self, checkpoint: Checkpoint, previous: Checkpoint | None) -> str | None:
        expected_previous = previous.digest() if previous else NO_PREVIOUS_CHECKPOINT
        if checkpoint.previous_hash != expected_previous:
            return "it does not sign the hash of the checkpoint before it"
        key = self._keys.signing_key()
        if key is None or checkpoint.key_id_hex != key.key_id_hex:
            return "it is not signed by the audit key of this deployment"
        if not signature_verifies(self._keystore, key, checkpoint):
            return "its signature does not verify"
        return None


def _timestamp_problem(token_der: bytes, digest_hex: str, our_cas: list[x509.Certificate]) -> str | None:
    """Why the time-stamp token is not our TSA's over ``digest_hex``, or None: its imprint must be
    the checkpoint's hash, its signer a certificate one of our CAs issued, and its signature over
    the signed attributes (whose messageDigest is the TSTInfo's) must verify."""
    try:
        signed = cms.ContentInfo.load(token_der)["content"]
        tst_info = signed["encap_content_info"]["content"]
        if not hmac.compare_digest(
            tst_info.parsed["message_imprint"]["hashed_message"].native, bytes.fromhex(digest_hex)
        ):
            return "its time-stamp covers something else"
        signer = signed["signer_infos"][0]
        hash_name = signer["digest_algorithm"]["algorithm"].native
        attributes = {a["type"].native: a["values"][0].native for a in signer["signed_attrs"]}
        if attributes.get("message_digest") != hashlib.new(hash_name, tst_info.contents).digest():
            return "its time-stamp token was altered"
        signed_attributes = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT -> SET OF
        signature = signer["signature"].native
        sid = signer["sid"]
        certificates = [
            x509.load_der_x509_certificate(c.chosen.dump())
            for c in signed["certificates"]
            if (
                c.chosen.serial_number == sid.chosen["serial_number"].native
                if sid.name == "issuer_and_serial_number"
                else c.chosen.key_identifier == sid.chosen.native
            )
        ]
    except (ValueError, KeyError, TypeError, IndexError):
        return "its time-stamp token cannot be read"
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}.get(hash_name)
    if algorithm is None:
        return f"its time-stamp uses {hash_name}"
    for certificate in certificates:
        if not any(_issued_by(certificate, ca) for ca in our_cas):
            continue
        public = certificate.public_key()
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, signed_attributes, ec.ECDSA(algorithm))
            elif isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, signed_attributes, padding.PKCS1v15(), algorithm)
            else:
                continue
        except InvalidSignature:
            return "its time-stamp's signature does not verify"
        return None
    return "its time-stamp is not by our TSA"


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _export_problems(
    contents: ExportContents, checkpoints: list[Checkpoint], events: list[StoredEvent]
) -> list[tuple[int, str]]:
    """What the export says the database should still hold and does not."""
    problems: list[tuple[int, str]] = []
    by_number = {checkpoint.number: checkpoint for checkpoint in checkpoints}
    for number, record in sorted(contents.checkpoints.items()):
        event = int(record["last_event_id"])
        stored = by_number.get(number)
        if stored is None:
            problems.append(
                (
                    event,
                    f"The audit checkpoint at event {event} (number {number}), recorded in the audit export, is missing from the database; checkpoints were deleted.",
                )
            )
        elif stored.digest() != record.get("hash") or stored.export_record()["timestamp_token"] != record.get(
            "timestamp_token"
        ):
            problems.append(
                (
                    event,
                    f"The audit checkpoint at event {event} (number {number}) differs from the one recorded in the audit export.",
                )
            )
    last = events[-1].event.sequence if events else 0
    by_sequence = {stored.event.sequence: stored for stored in events}
    matched = 0
    for head in contents.heads:
        if head.sequence > last:
            problems.append(
                (
                    last + 1,
                    f"Audit events from event {last + 1} to event {head.sequence} are missing: the audit export names event {head.sequence} as the head; events were deleted.",
                )
            )
            break
        at_head = by_sequence.get(head.sequence)
        if at_head is None or at_head.event_hash != head.event_hash or at_head.chain_mac != head.chain_mac:
            problems.append(
                (
                    matched + 1,
                    f"Audit events after event {matched} up to event {head.sequence} were changed: event {head.sequence} does not match the audit export's head record.",
                )
            )
            break
        matched = max(matched, head.sequence)
    return problems
