"""Tamper evidence of the audit log (SQLite data dir): an untouched log verifies; changing any
field of a row, deleting a row (first, middle, last), or reordering rows (swapping their content
or their ids) makes verification fail and name that row; a tampered checkpoint, and a rewrite of
the chain with recomputed hashes, are caught by the HSM-signed checkpoint.

One pristine database is built per module; each case tampers with a copy of it (plain SQL through
sqlite3, as an intruder with database access would) and verifies it with the audit checkpoints service (``audit verify``)
(what ``govsign audit verify`` runs); the CLI itself is run on an untouched and a tampered copy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from govsign.audit.chain import ChainVerdict, LinkedEvent, event_hash
from govsign.audit.events import AuditContext
from govsign.clock import SystemClock
from govsign.config import Settings
from govsign.services.bootstrap import Services

GOVSIGN = Path(sys.executable).parent / "govsign"
COLUMNS = (
    "occurred_at", "actor", "action", "object_type", "object_id", "outcome", "details_json",
    "client_id", "agency_id", "request_id", "previous_hash", "event_hash",
)  # fmt: skip
PAYLOAD = COLUMNS[:10]


def settings_for(data_dir: Path, database: Path, pin: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        database_url=f"sqlite:///{database}",
        hsm_pin=pin,
        pkcs11_module=None,
        hsm_token_label="govsign",
        hsm_pin_file=None,
        public_base_url="http://pki.example.gov.vn",
    )


@dataclass(frozen=True)
class Pristine:
    path: Path
    events: int
    """How many events (ids 1..events)."""
    checkpoint: int
    """The event the signed checkpoint covers."""
    data_dir: Path
    pin: str


@pytest.fixture(scope="module")
def pristine(hsm_data_dir: Path, hsm_pin: str, tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    path = tmp_path_factory.mktemp("audit") / "pristine.sqlite3"
    services = Services.open(settings_for(hsm_data_dir, path, hsm_pin), initialize=True, clock=SystemClock())
    try:
        directory = services.directory
        directory.add_agency("bo-tu-phap", "Bộ Tư pháp", None, actor="operator:test")
        directory.add_agency("vu-phap-che", "Vụ Pháp chế", "bo-tu-phap", actor="operator:test")
        directory.add_client("dms", role="ra-officer", agency_id="vu-phap-che", actor="operator:test")
        with services.database.unit_of_work() as ports:
            for n in range(6):  # events of API requests: with client, agency and request id
                services.audit.record(
                    ports,
                    "certificate.issue",
                    actor="client:dms",
                    object_type="certificate",
                    object_id=f"{n:032x}",
                    details={"profile": "individual", "n": n},
                    context=AuditContext(client_id=f"{n:016x}", agency_id="vu-phap-che", request_id=f"req-{n:08d}"),
                )
        checkpoint = services.audit_checkpoints.checkpoint(force=True)
        assert checkpoint is not None
        directory.add_agency("bo-tai-chinh", "Bộ Tài chính", None, actor="operator:test")
        directory.add_agency("cuc-thue", "Cục Thuế", "bo-tai-chinh", actor="operator:test")
        with services.database.read_only() as ports:
            events = ports.audit.count()
    finally:
        services.close()
    assert events >= 10 and checkpoint == events - 2
    return Pristine(path=path, events=events, checkpoint=checkpoint, data_dir=hsm_data_dir, pin=hsm_pin)


@pytest.fixture
def copy(pristine: Pristine, tmp_path: Path) -> Path:
    target = tmp_path / "tampered.sqlite3"
    shutil.copyfile(pristine.path, target)
    return target


def verify(pristine: Pristine, database: Path) -> ChainVerdict:
    services = Services.open(settings_for(pristine.data_dir, database, pristine.pin))
    try:
        return services.audit_checkpoints.verify()
    finally:
        services.close()


@contextmanager
def sql(database: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(database)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def row(connection: sqlite3.Connection, event_id: int) -> dict[str, object]:
    values = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE id = ?", (event_id,)).fetchone()
    assert values is not None, event_id
    return dict(zip(COLUMNS, values, strict=True))


def set_columns(connection: sqlite3.Connection, event_id: int, values: dict[str, object]) -> None:
    assignments = ", ".join(f"{column} = ?" for column in values)
    connection.execute(f"UPDATE audit_events SET {assignments} WHERE id = ?", (*values.values(), event_id))


def changed(value: object) -> object:
    """A different value of the same shape."""
    if value is None:
        return "injected"
    text = str(value)
    last = text[-1]
    return text[:-1] + ("1" if last != "1" else "2") if last.isalnum() else text + " "


def swap(connection: sqlite3.Connection, first: int, second: int, columns: tuple[str, ...]) -> None:
    a, b = row(connection, first), row(connection, second)
    if "event_hash" in columns:  # unique: park one value first
        set_columns(connection, first, {"event_hash": "parked"})
    set_columns(connection, second, {c: a[c] for c in columns})
    set_columns(connection, first, {c: b[c] for c in columns})


def swap_ids(connection: sqlite3.Connection, first: int, second: int) -> None:
    connection.execute("UPDATE audit_events SET id = -1 WHERE id = ?", (first,))
    connection.execute("UPDATE audit_events SET id = ? WHERE id = ?", (first, second))
    connection.execute("UPDATE audit_events SET id = ? WHERE id = -1", (second,))


def assert_names(verdict: ChainVerdict, event_id: int) -> None:
    assert not verdict.intact, verdict
    assert verdict.problem is not None
    assert verdict.first_broken_sequence == event_id, verdict
    assert re.search(rf"\bevent {event_id}\b", verdict.problem), verdict.problem


# -- an untouched log, through the CLI ------------------------------------------------------------


def cli_verify(pristine: Pristine, database: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(pristine.data_dir),
        GOVSIGN_DATABASE_URL=f"sqlite:///{database}",
        GOVSIGN_HSM_PIN=pristine.pin,
        LC_ALL="C.UTF-8",
    )
    return subprocess.run(
        [str(GOVSIGN), "audit", "verify", "--json"], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def cli_runs(
    pristine: Pristine, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``govsign audit verify --json`` on an untouched copy and on one with row 5 changed."""
    directory = tmp_path_factory.mktemp("cli")
    untouched, tampered = directory / "untouched.sqlite3", directory / "tampered.sqlite3"
    shutil.copyfile(pristine.path, untouched)
    shutil.copyfile(pristine.path, tampered)
    with sql(tampered) as connection:
        set_columns(connection, 5, {"actor": "operator:someone-else"})
    return {"untouched": cli_verify(pristine, untouched), "tampered": cli_verify(pristine, tampered)}


def test_cli_verifies_an_untouched_log(
    pristine: Pristine, cli_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = cli_runs["untouched"]
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "intact": True,
        "events_checked": pristine.events,
        "first_broken_event": None,
        "problem": None,
    }


def test_cli_names_a_changed_row(cli_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = cli_runs["tampered"]
    report = json.loads(result.stdout)
    assert report["intact"] is False and report["first_broken_event"] == 5, report
    assert re.search(r"\bevent 5\b", result.stderr), result.stderr


def test_cli_exits_non_zero_on_a_changed_row(cli_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert cli_runs["tampered"].returncode == 1


def test_untouched_log_verifies(pristine: Pristine, copy: Path) -> None:
    verdict = verify(pristine, copy)
    assert verdict.intact and verdict.events_checked == pristine.events, verdict


# -- single-row tampering -----------------------------------------------------------------------

#: Rows with a request context are ids 4..9 (three platform events come first).
MIDDLE = 6


@pytest.mark.parametrize("column", COLUMNS)
def test_changing_any_field_of_a_row_is_named(pristine: Pristine, copy: Path, column: str) -> None:
    with sql(copy) as connection:
        set_columns(connection, MIDDLE, {column: changed(row(connection, MIDDLE)[column])})
    assert_names(verify(pristine, copy), MIDDLE)


@pytest.mark.parametrize("column", ["client_id", "agency_id", "request_id"])
def test_clearing_the_request_context_of_a_row_is_named(pristine: Pristine, copy: Path, column: str) -> None:
    with sql(copy) as connection:
        set_columns(connection, MIDDLE, {column: None})
    assert_names(verify(pristine, copy), MIDDLE)


@pytest.mark.parametrize("where", ["first", "last"])
def test_changing_the_first_or_last_row_is_named(pristine: Pristine, copy: Path, where: str) -> None:
    event_id = 1 if where == "first" else pristine.events
    with sql(copy) as connection:
        set_columns(connection, event_id, {"details_json": '{"forged":true}'})
    assert_names(verify(pristine, copy), event_id)


def test_deleting_the_last_row_is_named(pristine: Pristine, copy: Path) -> None:
    with sql(copy) as connection:
        connection.execute("DELETE FROM audit_events WHERE id = ?", (pristine.events,))
    assert_names(verify(pristine, copy), pristine.events)


DELETION_GAP = (
    "src/govsign/audit/chain.py:128-134: after a deleted row k the verdict names the next row "
    "(first_broken_sequence=k+1, 'Audit event k+1 follows event k-1'), never the deleted row k. Fix: when "
    "sequence > expected_sequence return first_broken_sequence=expected_sequence and problem=f'Audit event "
    "{expected_sequence} is missing (the next event is {sequence}).' (and for sequence < expected, name it as "
    "out of order)."
)


@pytest.mark.parametrize("where", ["first", "middle"])
def test_deleting_a_row_is_named(pristine: Pristine, copy: Path, where: str) -> None:
    event_id = 1 if where == "first" else MIDDLE
    with sql(copy) as connection:
        connection.execute("DELETE FROM audit_events WHERE id = ?", (event_id,))
    assert_names(verify(pristine, copy), event_id)


@pytest.mark.parametrize("where", ["first", "middle"])
def test_deleting_a_row_is_detected_at_its_place(pristine: Pristine, copy: Path, where: str) -> None:
    """What holds today: the break is reported at the row that follows the deleted one."""
    event_id = 1 if where == "first" else MIDDLE
    with sql(copy) as connection:
        connection.execute("DELETE FROM audit_events WHERE id = ?", (event_id,))
    verdict = verify(pristine, copy)
    assert not verdict.intact and verdict.first_broken_sequence in (event_id, event_id + 1), verdict


REORDERINGS: dict[str, Callable[[sqlite3.Connection], None]] = {
    # the recorded facts of two rows exchanged, ids and hash columns left in place
    "swap-payload": lambda c: swap(c, 4, 8, PAYLOAD),
    # everything but the id exchanged (the rows' places in the chain swapped)
    "swap-content": lambda c: swap(c, 4, 8, COLUMNS),
    "swap-content-adjacent": lambda c: swap(c, 4, 5, COLUMNS),
    # the ids exchanged (the same rows, renumbered)
    "swap-ids": lambda c: swap_ids(c, 4, 8),
    "swap-ids-adjacent": lambda c: swap_ids(c, 4, 5),
}


@pytest.mark.parametrize("reordering", REORDERINGS)
def test_reordering_rows_is_named(pristine: Pristine, copy: Path, reordering: str) -> None:
    with sql(copy) as connection:
        REORDERINGS[reordering](connection)
    assert_names(verify(pristine, copy), 4)


# -- checkpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["signature", "signed_at", "last_hash"])
def test_a_tampered_checkpoint_is_detected(pristine: Pristine, copy: Path, column: str) -> None:
    with sql(copy) as connection:
        (value,) = connection.execute(f"SELECT {column} FROM audit_checkpoints").fetchone()
        if isinstance(value, bytes):
            value = value[:-1] + bytes([value[-1] ^ 0x01])
        elif column == "signed_at":  # signed to the second: move it by a minute
            value = str(dt.datetime.fromisoformat(value) + dt.timedelta(minutes=1))
        else:
            value = changed(value)
        connection.execute(f"UPDATE audit_checkpoints SET {column} = ?", (value,))
    verdict = verify(pristine, copy)
    assert not verdict.intact and verdict.first_broken_sequence == pristine.checkpoint, verdict
    assert f"checkpoint at event {pristine.checkpoint}" in str(verdict.problem), verdict.problem


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(pristine: Pristine, copy: Path) -> None:
    """An intruder who changes row 2 and recomputes every later hash and the head: the chain is
    consistent again, but the HSM-signed checkpoint no longer matches."""
    with sql(copy) as connection:
        set_columns(connection, 2, {"actor": "operator:nobody"})
        previous = str(row(connection, 1)["event_hash"])
        for event_id in range(2, pristine.events + 1):
            values = row(connection, event_id)
            event = LinkedEvent(
                sequence=event_id,
                occurred_at=dt.datetime.fromisoformat(str(values["occurred_at"])).replace(tzinfo=dt.UTC),
                actor=str(values["actor"]),
                action=str(values["action"]),
                object_type=str(values["object_type"]),
                object_id=str(values["object_id"]),
                outcome=str(values["outcome"]),
                details_json=str(values["details_json"]),
                previous_hash=previous,
                client_id=values["client_id"],  # type: ignore[arg-type]
                agency_id=values["agency_id"],  # type: ignore[arg-type]
                request_id=values["request_id"],  # type: ignore[arg-type]
            )
            digest = event_hash(event)
            set_columns(connection, event_id, {"previous_hash": previous, "event_hash": digest})
            previous = digest
        connection.execute("UPDATE audit_head SET last_hash = ?", (previous,))
        chain_only = connection.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
    assert chain_only == pristine.events
    verdict = verify(pristine, copy)
    assert not verdict.intact, "a rewritten chain went unnoticed"
    assert verdict.first_broken_sequence == pristine.checkpoint, verdict
    assert "changed" in str(verdict.problem), verdict.problem
