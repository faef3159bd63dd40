"""The SQL repositories on both backends: constraints, units of work, the audit chain."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from govsign.audit.chain import GENESIS_HASH
from govsign.audit.events import AuditEvent
from govsign.keystore.api import KeyAlgorithm, KeyRef
from govsign.pki.records import CARecord, CARole, CertificateRecord, CertificateStatus
from govsign.storage.engine import Database
from govsign.storage.migrate import upgrade_to_head
from govsign.storage.models import AuditEventRow

NOW = dt.datetime(2026, 1, 15, 3, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def database(fresh_database_url: str) -> Iterator[Database]:
    database = Database(fresh_database_url)
    upgrade_to_head(database.engine)
    yield database
    database.dispose()


def _ca(ca_id: str) -> CARecord:
    return CARecord(
        id=ca_id,
        role=CARole.ISSUING,
        parent_id=None,
        subject=f"CN={ca_id},C=VN",
        serial_hex="1a2b",
        key=KeyRef(label=f"govsign-{ca_id}", key_id=os.urandom(16), algorithm=KeyAlgorithm.RSA2048),
        certificate_der=b"\x30\x00",
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=365),
        created_at=NOW,
    )


def _certificate(issuer_id: str, serial_hex: str) -> CertificateRecord:
    der = os.urandom(64)  # storage does not parse certificates; unique bytes, unique fingerprint
    return CertificateRecord(
        id=None,
        issuer_id=issuer_id,
        serial_hex=serial_hex,
        subject="CN=Nguyễn Thị Yến,C=VN",
        profile="individual",
        email=None,
        not_before=NOW,
        not_after=NOW + dt.timedelta(days=730),
        status=CertificateStatus.VALID,
        key_algorithm=KeyAlgorithm.EC_P256,
        key=None,
        certificate_der=der,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        spki_sha256=hashlib.sha256(der[:32]).hexdigest(),
        replaces_id=None,
        created_at=NOW,
    )


def _count_certificates(database: Database) -> int:
    with database.unit_of_work() as ports:
        return ports.certificates.count()


def test_records_round_trip_with_aware_utc_times(database: Database) -> None:
    with database.unit_of_work() as ports:
        ports.cas.add_ca(_ca("issuing-t"))
        stored = ports.certificates.add_certificate(_certificate("issuing-t", "abc123"))
    with database.unit_of_work() as ports:
        (found,) = ports.certificates.find_by_serial("abc123", "issuing-t")
        ca = ports.cas.get_ca("issuing-t")
    assert found == stored
    assert found.id is not None
    assert found.subject == "CN=Nguyễn Thị Yến,C=VN"
    assert found.not_before == NOW and found.not_before.tzinfo is not None
    assert ca is not None and ca.not_after == NOW + dt.timedelta(days=365)


def test_duplicate_serial_of_one_issuer_is_rejected(database: Database) -> None:
    with database.unit_of_work() as ports:
        ports.cas.add_ca(_ca("issuing-t"))
        ports.certificates.add_certificate(_certificate("issuing-t", "abc123"))
    with pytest.raises(IntegrityError), database.unit_of_work() as ports:
        ports.certificates.add_certificate(_certificate("issuing-t", "abc123"))
    assert _count_certificates(database) == 1


def test_same_serial_under_another_issuer_is_allowed(database: Database) -> None:
    with database.unit_of_work() as ports:
        ports.cas.add_ca(_ca("issuing-a"))
        ports.cas.add_ca(_ca("issuing-b"))
        ports.certificates.add_certificate(_certificate("issuing-a", "abc123"))
        ports.certificates.add_certificate(_certificate("issuing-b", "abc123"))
    with database.unit_of_work() as ports:
        assert len(ports.certificates.find_by_serial("abc123")) == 2


def test_unknown_issuer_is_rejected_by_the_foreign_key(database: Database) -> None:
    with pytest.raises(IntegrityError), database.unit_of_work() as ports:
        ports.certificates.add_certificate(_certificate("no-such-ca", "abc123"))


def test_unit_of_work_rolls_back_on_an_exception(database: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), database.unit_of_work() as ports:
        ports.cas.add_ca(_ca("issuing-t"))
        ports.certificates.add_certificate(_certificate("issuing-t", "abc123"))
        ports.audit.append(
            AuditEvent(action="certificate.issue", actor="t", object_type="certificate", object_id="abc123"),
            at=NOW,
            seal=unreachable_hsm,
        )
        raise Boom
    with database.unit_of_work() as ports:
        assert ports.cas.list_cas() == []
        assert ports.certificates.count() == 0
        assert ports.audit.count() == 0


def unreachable_hsm(sequence: int, digest: str) -> str | None:
    """The sealer while the HSM is unreachable: events are stored unkeyed (keyed chain values are
    tested with the real token in tests/api/test_audit_tamper.py)."""
    return None


def _append(database: Database, count: int, start: int = 0) -> None:
    for index in range(start, start + count):
        with database.unit_of_work() as ports:
            ports.audit.append(
                AuditEvent(
                    action="certificate.issue",
                    actor="operator:lan",
                    object_type="certificate",
                    object_id=f"{index:x}",
                    details={"subject": "CN=Nguyễn Thị Yến,C=VN", "index": index},
                ),
                at=NOW + dt.timedelta(seconds=index),
                seal=unreachable_hsm,
            )


def _rows(database: Database) -> list[AuditEventRow]:
    with database.unit_of_work() as ports:
        return list(ports.session.scalars(select(AuditEventRow).order_by(AuditEventRow.id)))


def test_audit_append_builds_a_chain(database: Database) -> None:
    _append(database, 4)
    rows = _rows(database)
    assert [row.id for row in rows] == [1, 2, 3, 4]
    assert rows[0].previous_hash == GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.previous_hash == before.event_hash
    with database.unit_of_work() as ports:
        verdict = ports.audit.verify(None)
        assert ports.audit.count() == 4
    assert verdict.intact and verdict.events_checked == 4


def test_audit_details_with_secrets_are_refused_and_nothing_is_written(database: Database) -> None:
    with pytest.raises(ValueError, match="must not carry"), database.unit_of_work() as ports:
        ports.audit.append(
            AuditEvent(
                action="hsm.login", actor="t", object_type="token", object_id="govsign", details={"pin": "1234"}
            ),
            at=NOW,
            seal=unreachable_hsm,
        )
    with database.unit_of_work() as ports:
        assert ports.audit.count() == 0


def test_audit_verify_finds_an_altered_event(database: Database) -> None:
    _append(database, 4)
    with database.unit_of_work() as ports:
        ports.session.execute(update(AuditEventRow).where(AuditEventRow.id == 2).values(actor="operator:mallory"))
    with database.unit_of_work() as ports:
        verdict = ports.audit.verify(None)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 2)


def test_audit_verify_finds_a_deleted_last_event(database: Database) -> None:
    _append(database, 4)
    with database.unit_of_work() as ports:
        ports.session.execute(delete(AuditEventRow).where(AuditEventRow.id == 4))
    with database.unit_of_work() as ports:
        verdict = ports.audit.verify(None)
    assert not verdict.intact
    assert "deleted" in (verdict.problem or "")


def test_audit_verify_finds_a_deleted_middle_event(database: Database) -> None:
    _append(database, 4)
    with database.unit_of_work() as ports:
        ports.session.execute(delete(AuditEventRow).where(AuditEventRow.id == 2))
    with database.unit_of_work() as ports:
        verdict = ports.audit.verify(None)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 2)


def test_audit_chain_continues_across_units_of_work_and_engines(fresh_database_url: str) -> None:
    first = Database(fresh_database_url)
    upgrade_to_head(first.engine)
    _append(first, 2)
    first.dispose()
    second = Database(fresh_database_url)
    try:
        _append(second, 2, start=2)
        with second.unit_of_work() as ports:
            verdict = ports.audit.verify(None)
        assert verdict.intact and verdict.events_checked == 4
    finally:
        second.dispose()
