"""Engines and units of work. A unit of work commits on success and rolls back on error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from govsign.errors import DatabaseUnavailableError
from govsign.storage.ports import SQLPorts

log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, immediate write transactions, busy wait) or PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(connection: Any) -> None:
            # Take the write lock at the start: two deferred transactions that both try to
            # upgrade to writers would otherwise fail with "database is locked". Read-only
            # units of work (OCSP, CRL and CA certificate serving) begin deferred.
            if connection.get_execution_options().get("govsign_read_only"):
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def describe_url(url: str) -> str:
    """The database URL without credentials, for error messages."""
    if url.startswith("sqlite"):
        return url
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.split('+')[0]}://{host}{port}{parts.path}"


def check_database(engine: Engine) -> None:
    """Raise DatabaseUnavailableError with one sentence unless the database answers."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise DatabaseUnavailableError(
            f"Cannot reach the database named by GOVSIGN_DATABASE_URL ({describe_url(str(engine.url))}): {reason}."
        ) from None


class Database:
    """An engine and its session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(govsign_read_only=True), expire_on_commit=False
        )

    @contextmanager
    def read_only(self) -> Iterator[SQLPorts]:
        """A transaction that only reads (never takes SQLite's write lock); always rolled back."""
        session: Session = self._read_sessions()
        try:
            yield SQLPorts(session)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailableError("The database is not available.") from exc
        finally:
            try:
                session.rollback()
                session.close()
            except SQLAlchemyError:
                log.warning("could not close a read-only session cleanly")

    @contextmanager
    def unit_of_work(self) -> Iterator[SQLPorts]:
        """One transaction: committed when the block ends normally, rolled back otherwise."""
        session: Session = self._sessions()
        try:
            ports = SQLPorts(session)
            yield ports
            session.commit()
        except SQLAlchemyError as exc:
            try:
                session.rollback()
            except SQLAlchemyError:
                log.warning("could not roll back after a database error")
            if isinstance(exc, OperationalError | InterfaceError) or getattr(exc, "connection_invalidated", False):
                raise DatabaseUnavailableError("The database is not available; nothing was changed.") from None
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check(self) -> None:
        check_database(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
