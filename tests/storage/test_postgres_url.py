"""A PostgreSQL URL with ``options=-csearch_path=...`` reaches psycopg through govsign's settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from govsign.config import Settings
from govsign.storage.engine import Database
from govsign.storage.migrate import upgrade_to_head

pytestmark = pytest.mark.postgres


def _schema_of(url: str) -> str:
    options = parse_qs(urlsplit(url).query)["options"][0]
    assert options.startswith("-csearch_path=")
    return options.removeprefix("-csearch_path=")


def test_sqlalchemy_url_keeps_the_query(
    postgres_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=postgres_url)
    url = settings.sqlalchemy_url()
    assert url.startswith("postgresql+psycopg://")
    assert urlsplit(url).query == urlsplit(postgres_url).query


def test_psycopg_honours_the_search_path(
    postgres_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    schema = _schema_of(postgres_url)
    database = Database(make_settings(tmp_path, database_url=postgres_url).sqlalchemy_url())
    try:
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT current_schema()")).scalar_one() == schema
    finally:
        database.dispose()


@pytest.mark.parametrize("db_backend", ["postgresql"], indirect=True)
def test_migrations_create_the_tables_in_the_private_schema(fresh_database_url: str) -> None:
    schema = _schema_of(fresh_database_url)
    database = Database(fresh_database_url)
    try:
        upgrade_to_head(database.engine)
        with database.engine.connect() as connection:
            tables = set(
                connection.execute(
                    text("SELECT table_name FROM information_schema.tables WHERE table_schema = :schema"),
                    {"schema": schema},
                ).scalars()
            )
        assert {"alembic_version", "certificates", "audit_events"} <= tables
    finally:
        database.dispose()
