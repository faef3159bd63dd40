"""Alembic environment: the URL comes from the service's settings unless the caller passes a
connection (``config.attributes["connection"]``), as govsign's own migrate() and the tests do."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from govsign.storage import models  # noqa: F401  (registers the tables)
from govsign.storage.base import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from govsign.config import load_settings
    from govsign.storage.engine import make_engine

    url = config.get_main_option("sqlalchemy.url") or load_settings().sqlalchemy_url()
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline migrations are not supported; run against a database.")
run_migrations_online()
