"""Engine and session helpers; one engine per process and database URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.config import get_settings


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The process's engine for ``url`` (default: the configured database)."""
    url = url or get_settings().resolved_database_url
    if url.startswith("sqlite"):
        # Several worker processes share one SQLite file in embedded mode: WAL lets readers go on
        # while a writer commits, and the busy timeout makes writers wait instead of failing.
        # synchronous: under WAL, FULL syncs the log at every commit, so a committed row (e.g. the
        # index row of an instance whose C-STORE success went back) survives a power loss; NORMAL
        # syncs only at checkpoints (about 1 ms less per commit): never corrupt, but a power loss
        # (not a process crash) may undo the last commits. The default keeps the receiver's promise.
        synchronous = get_settings().sqlite_synchronous
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(f"PRAGMA synchronous={synchronous}")  # a Literal of the settings: no injection
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=8)
def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A sessionmaker bound to :func:`get_engine` for ``url``."""
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@contextmanager
def transaction(sessions: Callable[[], Session]) -> Iterator[Session]:
    """A session from ``sessions`` that commits on success, rolls back on error and is closed."""
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session of the configured (or ``url``) database that commits on success and rolls back on error."""
    with transaction(session_factory(url)) as session:
        yield session
