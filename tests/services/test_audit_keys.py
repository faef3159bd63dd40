"""The audit keys are created once per deployment (SQLite and PostgreSQL, the real token), events
written while the HSM cannot key them are keyed later, and a trail begun before the keyed chain
(SHA-256 events and unchained checkpoints) still verifies, with its keyed continuation.

The race of issue 13: ``govsign audit checkpoint`` run while the service started made a second
audit key with the same label on PostgreSQL, and ``audit verify`` then failed ("More than one
private key"). Now a registry row per key purpose decides the race, and keys are used by id.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pkcs11 import Attribute, ObjectClass
from sqlalchemy import delete, insert, select, update

from govsign.audit.chain import CHAIN_UNKEYED, GENESIS_HASH, LinkedEvent, canonical_details, event_hash
from govsign.audit.checkpoints import CHECKPOINT_UNCHAINED, Checkpoint
from govsign.audit.events import AuditQuery
from govsign.clock import FixedClock, SystemClock
from govsign.keystore.api import KeyAlgorithm
from govsign.keystore.pkcs11 import PKCS11KeyStore
from govsign.services.audit_log import (
    AUDIT_KEY_LABEL,
    CHAIN_KEY_LABEL,
    CHAIN_PURPOSE,
    SIGNING_PURPOSE,
    AuditKeys,
    AuditLog,
)
from govsign.services.bootstrap import Services, open_database
from govsign.storage.models import AuditCheckpointRow, AuditEventRow, AuditHeadRow, AuditKeyRow
from helpers.fixtures import TEST_HSM_PIN, build_settings

GOVSIGN = Path(sys.executable).parent / "govsign"


@pytest.fixture
def services(fresh_database_url: str, hsm_data_dir: Path) -> Iterator[Services]:
    opened = Services.open(
        build_settings(hsm_data_dir, database_url=fresh_database_url),
        initialize=True,
        clock=FixedClock(SystemClock().now()),
    )
    yield opened
    opened.close()


def head(services: Services) -> int:
    with services.database.read_only() as ports:
        return ports.checkpoints.head()[0]


def chain_secret_ids(keystore: PKCS11KeyStore) -> set[bytes]:
    def find(session: Any) -> set[bytes]:
        found = session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: CHAIN_KEY_LABEL})
        return {bytes(obj[Attribute.ID]) for obj in found}

    return keystore._call("inspect", find)


def registry(services: Services) -> dict[str, str]:
    with services.database.read_only() as ports:
        rows = ports.session.scalars(select(AuditKeyRow)).all()
        return {row.purpose: row.key_id_hex for row in rows}


def test_a_process_that_loses_the_key_race_destroys_its_own_key_and_uses_the_winners(services: Services) -> None:
    """The winner's registration is still uncommitted when the loser reads the registry (finds
    nothing), generates a key and tries to register it: its insert waits for the winner's
    transaction, fails, and the loser destroys its key and uses the winner's."""
    keystore = services.keystore
    with services.database.engine.begin() as connection:
        connection.execute(delete(AuditKeyRow).where(AuditKeyRow.purpose == CHAIN_PURPOSE))
    winner = keystore.generate_hmac_secret(label=CHAIN_KEY_LABEL)
    before = chain_secret_ids(keystore)
    loser = AuditKeys(database=services.database, keystore=keystore, clock=services.clock)
    found: list[Any] = []
    with services.database.engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(
            insert(AuditKeyRow).values(
                purpose=CHAIN_PURPOSE,
                label=CHAIN_KEY_LABEL,
                key_id_hex=winner.key_id.hex(),
                created_at=services.clock.now(),
            )
        )
        racer = threading.Thread(target=lambda: found.append(loser.chain_secret(create=True)))
        racer.start()
        racer.join(timeout=1.5)
        assert racer.is_alive(), "the loser did not wait for the winner's registration"
        transaction.commit()
    racer.join(timeout=30)
    assert found and found[0].key_id == winner.key_id
    assert chain_secret_ids(keystore) == before, "the loser's key was left on the token"
    assert registry(services)[CHAIN_PURPOSE] == winner.key_id.hex()


def run_cli(hsm_data_dir: Path, url: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSIGN_") and k != "SOFTHSM2_CONF"}
    env.update(
        GOVSIGN_DATA_DIR=str(hsm_data_dir),
        GOVSIGN_DATABASE_URL=url,
        GOVSIGN_HSM_PIN=TEST_HSM_PIN,
        GOVSIGN_PUBLIC_BASE_URL="http://pki.example.gov.vn",
        LC_ALL="C.UTF-8",
    )
    return subprocess.Popen([str(GOVSIGN), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_cli_and_nodes_starting_together_make_one_audit_key_of_each_kind(
    fresh_database_url: str, hsm_data_dir: Path, keystore: PKCS11KeyStore
) -> None:
    open_database(build_settings(hsm_data_dir, database_url=fresh_database_url), initialize=True).dispose()
    before = chain_secret_ids(keystore)
    signing_before = keystore.find_keys(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
    started = [run_cli(hsm_data_dir, fresh_database_url, "audit", "checkpoint") for _ in range(3)]
    for process in started:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    made = chain_secret_ids(keystore) - before
    assert len(made) == 1, f"{len(made)} audit chain keys were left on the token"
    signing_after = keystore.find_keys(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
    assert len(signing_after) - len(signing_before) <= 1
    services = Services.open(build_settings(hsm_data_dir, database_url=fresh_database_url))
    try:
        assert registry(services)[CHAIN_PURPOSE] == next(iter(made)).hex()
        assert set(registry(services)) == {CHAIN_PURPOSE, SIGNING_PURPOSE}
        with services.database.unit_of_work() as ports:
            services.audit.record(ports, "test.event", actor="operator:t", object_type="x", object_id="1", details={})
        assert services.audit_checkpoints.checkpoint(force=True) == 1
        verdict = services.audit_checkpoints.verify()
        assert verdict.intact, verdict
    finally:
        services.close()


def test_two_audit_signing_keys_of_one_label_no_longer_stop_verify(services: Services) -> None:
    """What the race of earlier versions left: a second key labelled like the audit key."""
    with services.database.unit_of_work() as ports:
        services.audit.record(ports, "test.event", actor="operator:t", object_type="x", object_id="1", details={})
    assert services.audit_checkpoints.checkpoint(force=True) == 1
    extra = services.keystore.generate_key_pair(label=AUDIT_KEY_LABEL, algorithm=KeyAlgorithm.EC_P256)
    try:
        verdict = services.audit_checkpoints.verify()
        assert verdict.intact, verdict
    finally:
        services.keystore.destroy_key_pair(extra)


def test_events_written_while_the_hsm_cannot_key_them_are_keyed_by_the_next_append(
    services: Services, softhsm2_module: str
) -> None:
    """A process whose HSM session is gone (a closed keystore answers HSMUnavailableError, as a
    token taken away does) still records its events, unkeyed; the next append that can reach
    the HSM keys them."""
    unreachable = PKCS11KeyStore(module_path=softhsm2_module, token_label="govsign", pin=TEST_HSM_PIN)
    unreachable.close()
    keys = AuditKeys(database=services.database, keystore=unreachable, clock=services.clock)
    outage = AuditLog(database=services.database, clock=services.clock, keys=keys, keystore=unreachable)
    start = head(services)
    for n in range(3):
        with services.database.unit_of_work() as ports:
            outage.record(ports, "hsm.unavailable", actor="system", object_type="token", object_id=str(n), details={})
    with services.database.read_only() as ports:
        assert ports.session.get(AuditHeadRow, 1).unsealed_from == start + 1
    verdict = services.audit_checkpoints.verify()
    assert verdict.intact and any("not keyed yet" in note for note in verdict.notes), verdict
    with services.database.unit_of_work() as ports:
        services.audit.record(ports, "hsm.available", actor="system", object_type="token", object_id="t", details={})
    with services.database.read_only() as ports:
        assert ports.session.get(AuditHeadRow, 1).unsealed_from is None
        unkeyed = ports.session.scalars(select(AuditEventRow.id).where(AuditEventRow.chain_mac.is_(None))).all()
        said = ports.audit.search(AuditQuery(action="audit.keyed-late"))
    assert unkeyed == []
    assert [e["details"] for e in said] == [{"first_event": start + 1, "last_event": start + 3}]
    verdict = services.audit_checkpoints.verify()
    assert verdict.intact and verdict.notes == (
        "No audit export is configured (GOVSIGN_AUDIT_EXPORT): a deleted tail is found only up to the last checkpoint.",
        f"Audit events {start + 1}-{start + 3} were written while the HSM was unreachable and keyed later "
        f"(event {start + 5}).",
    ), verdict


def test_an_unkeyed_event_followed_by_keyed_ones_is_named(services: Services) -> None:
    for n in range(3):
        with services.database.unit_of_work() as ports:
            services.audit.record(
                ports, "test.event", actor="operator:t", object_type="x", object_id=str(n), details={}
            )
    with services.database.engine.begin() as connection:
        last = connection.execute(select(AuditEventRow.id).order_by(AuditEventRow.id.desc()).limit(1)).scalar_one()
        connection.execute(update(AuditEventRow).where(AuditEventRow.id == last - 1).values(chain_mac=None))
    verdict = services.audit_checkpoints.verify()
    assert not verdict.intact and verdict.first_broken_sequence == last - 1, verdict


# -- a trail begun before the keyed chain ---------------------------------------------------------


def write_legacy_trail(services: Services, count: int) -> Checkpoint:
    """What an older version wrote: SHA-256 events (chain version 1) and an unchained checkpoint
    signed by the audit key over the head."""
    start = services.clock.now() - dt.timedelta(hours=1)
    previous = GENESIS_HASH
    rows = []
    for sequence in range(1, count + 1):
        event = LinkedEvent(
            sequence=sequence,
            occurred_at=start + dt.timedelta(seconds=sequence),
            actor="operator:lan",
            action="certificate.issue",
            object_type="certificate",
            object_id=f"{sequence:032x}",
            outcome="success",
            details_json=canonical_details({"profile": "individual"}),
            previous_hash=previous,
            chain_version=CHAIN_UNKEYED,
        )
        digest = event_hash(event)
        values = {k: v for k, v in event.__dict__.items() if k != "sequence"}
        rows.append({**values, "id": sequence, "event_hash": digest, "chain_mac": None})
        previous = digest
    key = services.audit_keys.signing_key()
    assert key is not None
    unsigned = Checkpoint(
        number=1,
        version=CHECKPOINT_UNCHAINED,
        last_event_id=count,
        last_hash=previous,
        last_mac=None,
        previous_hash=None,
        keyed_from=None,
        signed_at=start + dt.timedelta(minutes=5),
        key_label=AUDIT_KEY_LABEL,
        key_id_hex=None,
        signature=b"",
    )
    signature = services.keystore.sign(
        key, unsigned.message(), scheme=key.algorithm.default_scheme, hash_algorithm=key.algorithm.default_hash
    )
    with services.database.engine.begin() as connection:
        assert connection.execute(select(AuditEventRow.id)).first() is None
        connection.execute(delete(AuditHeadRow))
        connection.execute(insert(AuditEventRow), rows)
        connection.execute(insert(AuditHeadRow).values(id=1, last_event_id=count, last_hash=previous))
        # the upgrade registers the chain key after the older events: keyed from the next one
        connection.execute(update(AuditKeyRow).where(AuditKeyRow.purpose == CHAIN_PURPOSE).values(keyed_from=count + 1))
        connection.execute(
            insert(AuditCheckpointRow).values(
                number=1,
                version=CHECKPOINT_UNCHAINED,
                last_event_id=count,
                last_hash=previous,
                signed_at=unsigned.signed_at,
                key_label=AUDIT_KEY_LABEL,
                signature=signature,
            )
        )
    return unsigned


@pytest.fixture
def upgraded(services: Services) -> Services:
    """Six events and a checkpoint of the older version, then three keyed events and a chained
    checkpoint of this one."""
    write_legacy_trail(services, 6)
    for n in range(3):
        with services.database.unit_of_work() as ports:
            services.audit.record(
                ports, "test.event", actor="operator:t", object_type="x", object_id=str(n), details={}
            )
    assert services.audit_checkpoints.checkpoint(force=True) == 9
    return services


def test_a_trail_begun_before_the_keyed_chain_verifies_and_continues_keyed(upgraded: Services) -> None:
    verdict = upgraded.audit_checkpoints.verify()
    # (a 10th event may follow: this deployment has no TSA, whose refusal is audited)
    assert verdict.intact and verdict.events_checked >= 9, verdict
    with upgraded.database.read_only() as ports:
        versions = ports.session.execute(select(AuditEventRow.id, AuditEventRow.chain_version)).all()
        checkpoints = ports.checkpoints.all()
    assert {k: v for k, v in versions if k <= 9} == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 2, 8: 2, 9: 2}
    assert [(c.number, c.version) for c in checkpoints] == [(1, 1), (2, 2)]
    assert checkpoints[1].previous_hash == checkpoints[0].digest() and checkpoints[1].keyed_from == 7


def test_an_altered_event_of_the_older_prefix_is_named(upgraded: Services) -> None:
    with upgraded.database.engine.begin() as connection:
        connection.execute(update(AuditEventRow).where(AuditEventRow.id == 3).values(actor="operator:nobody"))
    verdict = upgraded.audit_checkpoints.verify()
    assert not verdict.intact and verdict.first_broken_sequence == 3, verdict


def test_an_older_event_made_keyed_is_named(upgraded: Services) -> None:
    """The first keyed event comes after the older prefix; an older event cannot turn keyed, and a
    keyed one cannot turn unkeyed."""
    with upgraded.database.engine.begin() as connection:
        connection.execute(update(AuditEventRow).where(AuditEventRow.id == 8).values(chain_version=1, chain_mac=None))
    verdict = upgraded.audit_checkpoints.verify()
    assert not verdict.intact and verdict.first_broken_sequence == 8, verdict


def test_a_removed_chain_key_registration_is_not_replaced_and_verify_says_so(
    services: Services, fresh_database_url: str, hsm_data_dir: Path
) -> None:
    with services.database.unit_of_work() as ports:
        services.audit.record(ports, "test.event", actor="operator:t", object_type="x", object_id="1", details={})
    with services.database.engine.begin() as connection:
        connection.execute(delete(AuditKeyRow).where(AuditKeyRow.purpose == CHAIN_PURPOSE))
        first_keyed = connection.execute(
            select(AuditEventRow.id).where(AuditEventRow.chain_mac.is_not(None)).order_by(AuditEventRow.id).limit(1)
        ).scalar_one()
    before = chain_secret_ids(services.keystore)
    restarted = Services.open(build_settings(hsm_data_dir, database_url=fresh_database_url))
    try:
        assert chain_secret_ids(services.keystore) == before, "a new chain key would hide the removal"
        verdict = restarted.audit_checkpoints.verify()
        assert not verdict.intact and verdict.first_broken_sequence == first_keyed, verdict
        assert "not registered" in str(verdict.problem)
    finally:
        restarted.close()


def test_events_under_a_checkpoint_made_to_look_unkeyed_are_not_keyed_again(services: Services) -> None:
    """An intruder clears the keyed values of checkpointed events and marks them as written during
    an outage, hoping the service keys a rewrite: it refuses, and verify names the first one."""
    for n in range(4):
        with services.database.unit_of_work() as ports:
            services.audit.record(
                ports, "test.event", actor="operator:t", object_type="x", object_id=str(n), details={}
            )
    covered = services.audit_checkpoints.checkpoint(force=True)
    assert covered is not None
    with services.database.engine.begin() as connection:
        connection.execute(update(AuditEventRow).where(AuditEventRow.id >= covered - 1).values(chain_mac=None))
        connection.execute(update(AuditHeadRow).values(unsealed_from=covered - 1))
    with services.database.unit_of_work() as ports:
        services.audit.record(ports, "test.event", actor="operator:t", object_type="x", object_id="late", details={})
    with services.database.read_only() as ports:
        still = ports.session.scalars(select(AuditEventRow.id).where(AuditEventRow.chain_mac.is_(None))).all()
    assert still == list(range(covered - 1, head(services) + 1)), "nothing after the marker was keyed"
    verdict = services.audit_checkpoints.verify()
    assert not verdict.intact and verdict.first_broken_sequence == covered - 1, verdict
