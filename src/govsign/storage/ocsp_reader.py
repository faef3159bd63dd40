"""The OCSP hot path's one query: a stored (pre-produced) response by issuer, serial and CertID
hash, read without an ORM session.

On SQLite each thread keeps a read-only connection in autocommit mode (in WAL mode every
SELECT sees the latest commit, so a revocation is visible as soon as its transaction commits);
on PostgreSQL the query runs on a pooled connection with SQLAlchemy Core.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from typing import cast
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from govsign.errors import DatabaseUnavailableError
from govsign.pki.records import CertificateRecord, CertificateStatus, RevocationRecord
from govsign.storage.models import CertificateRow, OCSPResponseRow, RevocationRow
from govsign.storage.records import certificate_record, revocation_record

StoredResponse = tuple[bytes, dt.datetime, dt.datetime]

_SQL = "SELECT response_der, this_update, next_update FROM ocsp_responses WHERE issuer_id = ? AND serial_hex = ? AND hash_algorithm = ?"


def _utc(value: object) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class StoredResponseReader:
    """Reads pre-produced OCSP responses as cheaply as the database allows."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite_path = engine.url.database if engine.dialect.name == "sqlite" else None
        self._local = threading.local()
        self._statement = select(OCSPResponseRow.response_der, OCSPResponseRow.this_update, OCSPResponseRow.next_update)

    @property
    def is_local(self) -> bool:
        """True when a read costs microseconds and may run on the event loop (SQLite)."""
        return self._sqlite_path is not None

    def _sqlite(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            uri = f"file:{quote(str(self._sqlite_path))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True, timeout=5)
            self._local.connection = connection
        return connection

    def fetch(self, issuer_id: str, serial_hex: str, hash_algorithm: str) -> StoredResponse | None:
        try:
            if self._sqlite_path is not None:
                row = self._sqlite().execute(_SQL, (issuer_id, serial_hex, hash_algorithm)).fetchone()
            else:
                with self._engine.connect() as connection:
                    row = connection.execute(
                        self._statement.where(
                            OCSPResponseRow.issuer_id == issuer_id,
                            OCSPResponseRow.serial_hex == serial_hex,
                            OCSPResponseRow.hash_algorithm == hash_algorithm,
                        )
                    ).first()
        except (sqlite3.Error, OperationalError, InterfaceError) as exc:
            self._local.connection = None
            raise DatabaseUnavailableError("The database is not available.") from exc
        if row is None:
            return None
        return bytes(row[0]), _utc(row[1]), _utc(row[2])


class OCSPStatusReader:
    """The OCSP responder's read-only port (``OCSPStatusSource``) without an ORM session: the
    certificate's status and its revocation in one Core query per CertID."""

    def __init__(self, engine: Engine, stored: StoredResponseReader) -> None:
        self._engine = engine
        self._stored = stored
        self._certificates = CertificateRow.__table__
        self._revocations = RevocationRow.__table__

    def certificate_status(
        self, issuer_id: str, serial_hex: str
    ) -> tuple[CertificateRecord, RevocationRecord | None] | None:
        try:
            with self._engine.connect().execution_options(govsign_read_only=True) as connection:
                certificates = self._certificates.c
                certificate = connection.execute(
                    select(self._certificates).where(
                        certificates.issuer_id == issuer_id, certificates.serial_hex == serial_hex
                    )
                ).first()
                if certificate is None:
                    return None
                # Core rows have the mapped attributes' names, which the record builders read.
                record = certificate_record(cast(CertificateRow, certificate))
                if record.status is CertificateStatus.VALID:
                    return record, None
                revocations = self._revocations.c
                revocation = connection.execute(
                    select(self._revocations)
                    .where(revocations.certificate_id == record.id, revocations.released_at.is_(None))
                    .order_by(revocations.id.desc())
                    .limit(1)
                ).first()
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailableError("The database is not available.") from exc
        return record, revocation_record(cast(RevocationRow, revocation)) if revocation is not None else None

    def stored_response(self, issuer_id: str, serial_hex: str, hash_algorithm: str) -> StoredResponse | None:
        return self._stored.fetch(issuer_id, serial_hex, hash_algorithm)
