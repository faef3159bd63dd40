"""Tamper evidence of the audit trail, on SQLite and PostgreSQL, with the real SoftHSM2 token.

One trail is built per backend: the CA hierarchy's events, then ~250 events written over
seven minutes of (fixed, moved) clock, with the checkpoints the service makes (at events 100
and 200, one after an event waited five minutes, numbered, chained and time-stamped by our TSA)
and head records in the export file (GOVSIGN_AUDIT_EXPORT), and a tail of events after the
last checkpoint. Each case tampers with it by plain SQL, as an intruder with database access
but not the HSM would (changing, deleting or swapping events; deleting or changing
checkpoints; rewriting events and recomputing every hash after them, which the keyed chain
value in the HSM makes useless), then runs what ``govsign audit verify`` runs: every case is
detected and the first altered event named. The tables and the export are restored after
each case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, select, text, update

from govsign.audit.chain import CHAIN_KEYED, CHAIN_UNKEYED, ChainVerdict, LinkedEvent, event_hash
from govsign.audit.checkpoints import Checkpoint
from govsign.audit.events import AuditContext
from govsign.clock import FixedClock, SystemClock
from govsign.errors import InvalidInputError
from govsign.services.audit_checkpoints import AuditCheckpoints, AuditExport
from govsign.services.bootstrap import Services
from govsign.storage.models import AuditCheckpointRow, AuditEventRow, AuditHeadRow
from helpers.fixtures import DEPLOYMENT_HIERARCHY, TEST_HSM_PIN, build_settings, postgres_schema

GOVSIGN = Path(sys.executable).parent / "govsign"
TABLES = (AuditEventRow.__table__, AuditHeadRow.__table__, AuditCheckpointRow.__table__)
PAYLOAD = (
    "occurred_at", "actor", "action", "object_type", "object_id", "outcome", "details_json",
    "client_id", "agency_id", "request_id",
)  # fmt: skip
COLUMNS = (*PAYLOAD, "previous_hash", "event_hash", "chain_mac", "chain_version")


@dataclass
class Trail:
    services: Services
    clock: FixedClock
    url: str
    export: Path
    events: int
    """The head: events 1..events."""
    checkpoints: list[Checkpoint]
    """As made, by number."""
    snapshot: dict[str, list[dict[str, Any]]]
    export_bytes: bytes

    @property
    def last_checkpoint(self) -> int:
        return self.checkpoints[-1].last_event_id


def record(services: Services, n: int) -> None:
    with services.database.unit_of_work() as ports:
        services.audit.record(
            ports,
            "document.sign",
            actor="client:dms",
            object_type="document",
            object_id=f"doc-{n:05d}",
            details={"profile": "individual", "n": n},
            context=AuditContext(client_id=f"{n:016x}", agency_id="vu-phap-che", request_id=f"req-{n:08d}"),
        )


def head(services: Services) -> int:
    with services.database.read_only() as ports:
        return ports.checkpoints.head()[0]


@pytest.fixture(scope="module")
def trail(
    db_backend: str, hsm_data_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Trail]:
    directory = tmp_path_factory.mktemp("trail")
    database: Any = (
        nullcontext(f"sqlite:///{directory / 'trail.sqlite3'}")
        if db_backend.startswith("sqlite")
        else postgres_schema(str(request.getfixturevalue("postgres_server_url")), prefix="gs_audit")
    )
    with database as url:
        export = directory / "audit-export.jsonl"
        settings = build_settings(hsm_data_dir, database_url=url, audit_export=export)
        clock = FixedClock(SystemClock().now())
        services = Services.open(settings, initialize=True, clock=clock)
        try:
            services.hierarchy.initialize(DEPLOYMENT_HIERARCHY, actor="test:audit")
            n = 0
            while head(services) < 230:  # checkpoints at 100 and 200, head records on the way
                n += 1
                record(services, n)
                clock.advance(dt.timedelta(seconds=1))
                if n % 10 == 0:
                    services.audit_checkpoints.checkpoint()
                    services.audit_checkpoints.export_head(force=True)
            clock.advance(dt.timedelta(minutes=7))  # events 201..230 waited: one checkpoint at the head
            for _ in range(5):
                n += 1
                record(services, n)
            services.audit_checkpoints.checkpoint()
            for _ in range(10):  # the tail: after the last checkpoint, in the last head record
                n += 1
                record(services, n)
                clock.advance(dt.timedelta(seconds=1))
            services.audit_checkpoints.export_head(force=True)
            with services.database.read_only() as ports:
                checkpoints = ports.checkpoints.all()
            with services.database.engine.connect() as connection:
                snapshot = {t.name: [dict(r) for r in connection.execute(select(t)).mappings()] for t in TABLES}
            built = Trail(
                services=services,
                clock=clock,
                url=url,
                export=export,
                events=head(services),
                checkpoints=checkpoints,
                snapshot=snapshot,
                export_bytes=export.read_bytes(),
            )
            assert [c.last_event_id for c in checkpoints][:2] == [100, 200], checkpoints
            assert len(checkpoints) == 3 and 200 < checkpoints[2].last_event_id < built.events - 5
            yield built
        finally:
            services.close()


@pytest.fixture
def pristine(trail: Trail) -> Iterator[Trail]:
    """The trail, restored after the test (tables and export)."""
    yield trail
    with trail.services.database.engine.begin() as connection:
        for table in reversed(TABLES):
            connection.execute(delete(table))
        for table in TABLES:
            if trail.snapshot[table.name]:
                connection.execute(insert(table), trail.snapshot[table.name])
    trail.export.write_bytes(trail.export_bytes)


@contextmanager
def sql(trail: Trail) -> Iterator[Connection]:
    with trail.services.database.engine.begin() as connection:
        yield connection


def verify(trail: Trail, *, with_export: bool = True) -> ChainVerdict:
    if with_export:
        return trail.services.audit_checkpoints.verify()
    services = trail.services
    without = AuditCheckpoints(
        database=services.database,
        keystore=services.keystore,
        clock=trail.clock,
        keys=services.audit_keys,
        audit=services.audit,
        export=AuditExport(None),
    )
    return without.verify()


def assert_names(verdict: ChainVerdict, event_id: int, *words: str) -> None:
    assert not verdict.intact, verdict
    assert verdict.problem is not None
    assert verdict.first_broken_sequence == event_id, verdict
    assert re.search(rf"\bevent {event_id}\b", verdict.problem), verdict.problem
    for word in words:
        assert word in verdict.problem, verdict.problem


def event_row(connection: Connection, event_id: int) -> dict[str, Any]:
    found = connection.execute(select(AuditEventRow.__table__).where(AuditEventRow.id == event_id)).mappings().one()
    return dict(found)


def set_event(connection: Connection, event_id: int, **values: Any) -> None:
    connection.execute(update(AuditEventRow).where(AuditEventRow.id == event_id).values(**values))


def changed(value: object) -> object:
    """A different value of the same shape."""
    if value is None:
        return "injected"
    if isinstance(value, int):
        return CHAIN_UNKEYED if value == CHAIN_KEYED else value + 1
    if isinstance(value, dt.datetime):
        return value + dt.timedelta(seconds=1)
    text_value = str(value)
    last = text_value[-1]
    return text_value[:-1] + ("1" if last != "1" else "2") if last.isalnum() else text_value + " "


def rehash_from(connection: Connection, first: int, *, fix_head: bool = True) -> None:
    """Recompute every event hash from ``first`` on and the head, as an intruder can (the keyed
    chain values stay: nobody without the HSM can recompute them)."""
    previous = str(event_row(connection, first - 1)["event_hash"]) if first > 1 else "0" * 64
    last = connection.execute(select(AuditEventRow.id).order_by(AuditEventRow.id.desc()).limit(1)).scalar_one()
    for event_id in range(first, last + 1):
        values = event_row(connection, event_id)
        event = LinkedEvent(
            sequence=event_id,
            previous_hash=previous,
            **{name: values[name] for name in (*PAYLOAD, "chain_version")},
        )
        digest = event_hash(dataclasses.replace(event, occurred_at=event.occurred_at.replace(tzinfo=dt.UTC)))
        set_event(connection, event_id, previous_hash=previous, event_hash=digest)
        previous = digest
    if fix_head:
        connection.execute(update(AuditHeadRow).values(last_event_id=last, last_hash=previous))


def delete_tail(connection: Connection, after: int) -> None:
    """Delete the events after ``after`` and make the head name ``after`` again."""
    connection.execute(delete(AuditEventRow).where(AuditEventRow.id > after))
    digest = event_row(connection, after)["event_hash"]
    connection.execute(update(AuditHeadRow).values(last_event_id=after, last_hash=digest))


MIDDLE = 150


# -- an untouched trail ---------------------------------------------------------------------------


def test_an_untouched_trail_verifies_with_and_without_the_export(pristine: Trail) -> None:
    for with_export in (True, False):
        verdict = verify(pristine, with_export=with_export)
        assert verdict.intact and verdict.events_checked == pristine.events, verdict


def test_every_event_is_keyed_and_every_checkpoint_numbered_chained_and_time_stamped(pristine: Trail) -> None:
    with sql(pristine) as connection:
        versions = set(connection.execute(select(AuditEventRow.chain_version)).scalars())
        unkeyed = connection.execute(select(AuditEventRow.id).where(AuditEventRow.chain_mac.is_(None))).all()
    assert versions == {CHAIN_KEYED} and unkeyed == []
    previous = "0" * 64
    for number, checkpoint in enumerate(pristine.checkpoints, start=1):
        assert checkpoint.number == number and checkpoint.previous_hash == previous
        assert checkpoint.timestamp_token is not None, checkpoint.timestamp_problem
        previous = checkpoint.digest()
    assert verify(pristine).notes == ()


def test_the_export_holds_every_checkpoint_and_the_last_head(pristine: Trail) -> None:
    records = [json.loads(line) for line in pristine.export.read_text().splitlines()]
    assert [r["number"] for r in records if r["type"] == "checkpoint"] == [1, 2, 3]
    heads = [r for r in records if r["type"] == "head"]
    assert heads[-1]["sequence"] == pristine.events
    assert all(set(r) >= {"sequence", "event_hash", "chain_mac", "at"} for r in heads)
    assert os.stat(pristine.export).st_mode & 0o777 == 0o600


# -- events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", COLUMNS)
def test_changing_any_field_of_an_event_is_named(pristine: Trail, column: str) -> None:
    with sql(pristine) as connection:
        set_event(connection, MIDDLE, **{column: changed(event_row(connection, MIDDLE)[column])})
    assert_names(verify(pristine), MIDDLE)


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_deleting_an_event_is_named(pristine: Trail, where: str) -> None:
    event_id = {"first": 1, "middle": MIDDLE, "last": pristine.events}[where]
    with sql(pristine) as connection:
        connection.execute(delete(AuditEventRow).where(AuditEventRow.id == event_id))
    assert_names(verify(pristine), event_id)


def test_swapping_two_events_is_named(pristine: Trail) -> None:
    with sql(pristine) as connection:
        a, b = event_row(connection, MIDDLE), event_row(connection, MIDDLE + 1)
        set_event(connection, MIDDLE, event_hash="parked")
        set_event(connection, MIDDLE + 1, **{c: a[c] for c in COLUMNS})
        set_event(connection, MIDDLE, **{c: b[c] for c in COLUMNS})
    assert_names(verify(pristine), MIDDLE)


@pytest.mark.parametrize("other", [MIDDLE + 1, MIDDLE + 40], ids=["adjacent", "apart"])
def test_swapping_the_ids_of_two_events_is_named(pristine: Trail, other: int) -> None:
    with sql(pristine) as connection:
        for old, new in ((MIDDLE, -1), (other, MIDDLE), (-1, other)):
            connection.execute(update(AuditEventRow).where(AuditEventRow.id == old).values(id=new))
    assert_names(verify(pristine), MIDDLE)


def test_swapping_two_events_and_rehashing_is_named(pristine: Trail) -> None:
    with sql(pristine) as connection:
        a, b = event_row(connection, MIDDLE), event_row(connection, MIDDLE + 1)
        set_event(connection, MIDDLE, **{c: b[c] for c in PAYLOAD})
        set_event(connection, MIDDLE + 1, **{c: a[c] for c in PAYLOAD})
        rehash_from(connection, MIDDLE)
    assert_names(verify(pristine), MIDDLE, "altered")


def test_deleting_the_tail_and_fixing_the_head_is_named(pristine: Trail) -> None:
    """Events after the last checkpoint deleted and the head row made to match: only the export
    (which names a later head) knows."""
    keep = pristine.last_checkpoint + 3
    with sql(pristine) as connection:
        delete_tail(connection, keep)
    assert verify(pristine, with_export=False).intact  # what the database alone can say
    assert_names(verify(pristine), keep + 1, "missing", "export")


def test_deleting_the_tail_with_its_checkpoint_is_named(pristine: Trail) -> None:
    keep = 210
    with sql(pristine) as connection:
        delete_tail(connection, keep)
        connection.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.last_event_id > keep))
    assert_names(verify(pristine), keep + 1, "missing")


def test_a_rewrite_before_a_checkpoint_rehashed_names_the_event_not_the_checkpoint(pristine: Trail) -> None:
    with sql(pristine) as connection:
        set_event(connection, MIDDLE, actor="operator:nobody")
        rehash_from(connection, MIDDLE)
    for with_export in (True, False):
        assert_names(verify(pristine, with_export=with_export), MIDDLE, "altered")


def test_a_rewrite_after_the_last_checkpoint_rehashed_is_named(pristine: Trail) -> None:
    event_id = pristine.last_checkpoint + 2
    with sql(pristine) as connection:
        set_event(connection, event_id, outcome="failure")
        rehash_from(connection, event_id)
    for with_export in (True, False):
        assert_names(verify(pristine, with_export=with_export), event_id, "altered")


def test_deleting_every_checkpoint_then_rewriting_and_rehashing_is_named(pristine: Trail) -> None:
    with sql(pristine) as connection:
        connection.execute(delete(AuditCheckpointRow))
        set_event(connection, MIDDLE, details_json='{"forged":true}')
        rehash_from(connection, MIDDLE)
    for with_export in (True, False):
        assert_names(verify(pristine, with_export=with_export), MIDDLE, "altered")


def test_turning_every_keyed_event_unkeyed_and_rehashing_is_named(pristine: Trail) -> None:
    """The keyed chain cannot be passed off as an older unkeyed one: the signed checkpoints say
    from which event on every event is keyed."""
    with sql(pristine) as connection:
        connection.execute(update(AuditEventRow).values(chain_version=CHAIN_UNKEYED, chain_mac=None))
        set_event(connection, MIDDLE, actor="operator:nobody")
        rehash_from(connection, 1)
    for with_export in (True, False):
        assert_names(verify(pristine, with_export=with_export), 1, "altered", "keyed")


def test_deleting_an_event_renumbering_and_rehashing_is_named(pristine: Trail) -> None:
    with sql(pristine) as connection:
        connection.execute(delete(AuditEventRow).where(AuditEventRow.id == MIDDLE))
        last = pristine.events
        for event_id in range(MIDDLE + 1, last + 1):
            connection.execute(update(AuditEventRow).where(AuditEventRow.id == event_id).values(id=event_id - 1))
        rehash_from(connection, MIDDLE)
    assert_names(verify(pristine), MIDDLE, "altered")


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("with_export", [True, False], ids=["export", "no-export"])
def test_deleting_a_checkpoint_is_named(pristine: Trail, which: int, with_export: bool) -> None:
    checkpoint = pristine.checkpoints[which]
    with sql(pristine) as connection:
        connection.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.number == checkpoint.number))
    if with_export:
        expected = checkpoint.last_event_id
    else:  # the numbering (100, 200) or the five-minute interval say where one must be
        expected = checkpoint.last_event_id if which < 2 else pristine.checkpoints[1].last_event_id + 1
    assert_names(verify(pristine, with_export=with_export), expected, "missing")


def test_deleting_every_checkpoint_is_named(pristine: Trail) -> None:
    with sql(pristine) as connection:
        connection.execute(delete(AuditCheckpointRow))
    assert_names(verify(pristine), 100, "missing")  # checkpoint 1 of the export
    # the interval: the CA's own first events waited more than five minutes uncovered
    assert_names(verify(pristine, with_export=False), 1, "missing")


CHECKPOINT_CHANGES: dict[str, Callable[[Any], Any]] = {
    "signature": lambda v: v[:-1] + bytes([v[-1] ^ 0x01]),
    "signed_at": lambda v: v + dt.timedelta(minutes=1),
    "last_hash": changed,
    "last_mac": changed,
    "previous_hash": changed,
    "keyed_from": lambda v: v + 1,
    "number": lambda v: v + 10,
    "timestamp_token": lambda v: None,
}


@pytest.mark.parametrize("column", CHECKPOINT_CHANGES)
@pytest.mark.parametrize("with_export", [True, False], ids=["export", "no-export"])
def test_changing_a_checkpoint_is_named(pristine: Trail, column: str, with_export: bool) -> None:
    checkpoint = pristine.checkpoints[1]
    with sql(pristine) as connection:
        value = getattr(checkpoint, column)
        connection.execute(
            update(AuditCheckpointRow)
            .where(AuditCheckpointRow.number == checkpoint.number)
            .values(**{column: CHECKPOINT_CHANGES[column](value)})
        )
    verdict = verify(pristine, with_export=with_export)
    if column == "timestamp_token" and not with_export:  # the TSA may have been down: a note
        assert verdict.intact and any("no time-stamp" in note for note in verdict.notes), verdict
        return
    assert_names(verdict, checkpoint.last_event_id, "checkpoint")


# -- the CLI ----------------------------------------------------------------------------------------


def cli_verify(trail: Trail, hsm_data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(hsm_data_dir),
        GOVSIGN_DATABASE_URL=trail.url,
        GOVSIGN_HSM_PIN=TEST_HSM_PIN,
        GOVSIGN_PUBLIC_BASE_URL="http://pki.example.gov.vn",
        LC_ALL="C.UTF-8",
    )
    return subprocess.run(
        [str(GOVSIGN), "audit", "verify", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_verify_reads_the_export_it_is_given(pristine: Trail, hsm_data_dir: Path) -> None:
    result = cli_verify(pristine, hsm_data_dir, "--export", str(pristine.export), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["intact"] is True
    with sql(pristine) as connection:
        delete_tail(connection, pristine.events - 4)
    result = cli_verify(pristine, hsm_data_dir, "--export", str(pristine.export))
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and f"event {pristine.events - 3}" in message, message
    missing = cli_verify(pristine, hsm_data_dir, "--export", str(pristine.export) + ".gone")
    assert missing.returncode != 0 and "Cannot read the audit export" in missing.stderr, missing.stderr


def test_text_of_the_export_is_in_the_log_stream(pristine: Trail, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="govsign.audit.export")
    record(pristine.services, 10_000)
    assert pristine.services.audit_checkpoints.export_head(force=True) is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "govsign.audit.export"]
    assert lines and f'"sequence":{pristine.events + 1}' in lines[-1], lines
    with sql(pristine) as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM audit_events")).scalar_one() == pristine.events + 1


@pytest.mark.parametrize("with_export", [True, False], ids=["export", "no-export"])
def test_a_changed_time_stamp_token_is_named(pristine: Trail, with_export: bool) -> None:
    checkpoint = pristine.checkpoints[1]
    token = checkpoint.timestamp_token
    assert token is not None
    with sql(pristine) as connection:
        connection.execute(
            update(AuditCheckpointRow)
            .where(AuditCheckpointRow.number == checkpoint.number)
            .values(timestamp_token=token[:-1] + bytes([token[-1] ^ 0x01]))  # the TSA's signature
        )
    assert_names(verify(pristine, with_export=with_export), checkpoint.last_event_id, "time-stamp")


def test_a_line_cut_short_in_the_export_is_left_out_with_a_note(pristine: Trail) -> None:
    with pristine.export.open("a", encoding="ascii") as export:
        export.write('{"type":"head","sequence":99')  # a crash in the middle of a write
    record(pristine.services, 10_001)
    assert pristine.services.audit_checkpoints.export_head(force=True) is not None  # on a line of its own
    lines = pristine.export.read_text().splitlines()
    assert lines[-2] == '{"type":"head","sequence":99' and json.loads(lines[-1])["type"] == "head"
    verdict = verify(pristine)
    assert verdict.intact and any("cut short" in note for note in verdict.notes), verdict
    with pristine.export.open("a", encoding="ascii") as export:
        export.write('{"type": "other"}\n')  # a whole line that is not a record: refused with one sentence
    with pytest.raises(InvalidInputError, match="is not valid: line"):
        verify(pristine)
