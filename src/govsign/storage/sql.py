"""Helpers of every repository: database errors at the storage seam, dialect-aware upserts, rows
locked for update, and the name-for-name mapping between rows and the cores' records."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from sqlalchemy import Select, inspect
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from govsign.errors import DatabaseUnavailableError

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")
T = TypeVar("T")


def database_errors(method: F) -> F:
    """Turn a lost database into DatabaseUnavailableError at the storage seam, so protocol
    handlers can answer tryLater / 503 without knowing SQLAlchemy."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailableError("The database is not available.") from exc

    return wrapper  # type: ignore[return-value]


def upsertable_insert(session: Session, model: type[Any]) -> Any:
    """INSERT with ON CONFLICT support, in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(model)


class Repository:
    """A repository over the session of one unit of work (its transaction)."""

    def __init__(self, session: Session) -> None:
        self._session = session


def locked_row(session: Session, query: Select[T]) -> T | None:
    """The one row ``query`` selects, locked for update (SELECT ... FOR UPDATE) and read afresh."""
    row = session.scalars(query.with_for_update()).one_or_none()
    if row is not None:
        session.refresh(row)
    return row


def to_record(record_type: type[R], row: object, **values: Any) -> R:
    """A record (a frozen dataclass) from a row: each field read from the row's attribute of the same
    name, except those given in ``values`` (named or typed differently in the table)."""
    fields = dataclasses.fields(record_type)  # type: ignore[arg-type]
    return record_type(**{f.name: getattr(row, f.name) for f in fields if f.name not in values}, **values)


def to_row(row_type: type[T], record: Any, *, omit: Collection[str] = (), **values: Any) -> T:
    """A new row from a record: each mapped column that the record has a field of the same name
    for, except those in ``omit`` (such as an id the database assigns) or given in ``values``."""
    names = {f.name for f in dataclasses.fields(record)}
    columns = [attribute.key for attribute in inspect(row_type).column_attrs]
    given = {
        name: getattr(record, name) for name in columns if name in names and name not in omit and name not in values
    }
    return row_type(**given, **values)
