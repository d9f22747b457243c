"""Bring a database to the newest schema with Alembic, safely from several processes at once.

Every service may call :func:`upgrade_database` on start: on PostgreSQL a session-level advisory lock,
on SQLite an exclusive lock on a file beside the database, makes the processes take turns, and the
ones that come after find the schema at head and do nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, func, make_url, pool, select
from sqlalchemy.engine import URL

from shared.config import get_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# pg_advisory_lock key: any 64-bit number that no other application on the server uses ("ctriage").
POSTGRES_LOCK_KEY = int.from_bytes(b"ctriage", "big")


def alembic_config(url: str) -> Config:
    """An Alembic configuration built in code (no ``alembic.ini``), pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolates '%', which URL-escaped passwords contain.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations define."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at; ``None`` for a database never migrated."""
    engine = create_engine(_resolve(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade_database(url: str | None = None, *, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` (default: the configured one) to ``revision``; returns the revision reached."""
    url = _resolve(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection, _migration_lock(connection):
            before = MigrationContext.configure(connection).get_current_revision()
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
            after = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    if before != after:
        log.info("migrated database %s from %s to %s", masked_url(url), before or "empty", after)
    return after


def _resolve(url: str | None) -> str:
    url = url or get_settings().resolved_database_url
    parsed = make_url(url)
    database = _sqlite_path(parsed) if parsed.get_backend_name() == "sqlite" else None
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return url


def _sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; ``None`` for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database).resolve()


@contextlib.contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the database's migration lock for the duration; other migrating processes wait."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # Session-level (not transaction-level) so it survives Alembic's own commits.
        connection.execute(select(func.pg_advisory_lock(POSTGRES_LOCK_KEY)))
        connection.commit()
        try:
            yield
        finally:
            connection.rollback()
            connection.execute(select(func.pg_advisory_unlock(POSTGRES_LOCK_KEY)))
            connection.commit()
        return
    database = _sqlite_path(connection.engine.url) if dialect == "sqlite" else None
    if database is None:
        yield
        return
    import fcntl

    with open(database.with_name(database.name + ".migrate-lock"), "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def masked_url(url: str) -> str:
    """``url`` with its password hidden, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)
