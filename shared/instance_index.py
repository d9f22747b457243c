"""The PACS intake's per-instance SQL, compiled once per dialect and run on the database driver's cursor.

A C-STORE receiver indexes every instance before it answers, and once its series exists that takes
three statements: look the instance up, insert its row, add it to the series (totals and completeness
clock). Through SQLAlchemy's execution layer these cost about three times what the driver itself
needs (SQLite: 0.28 of 0.45 ms per instance, measured), so they are compiled once per dialect into the
driver's SQL and parameter style and run on the DBAPI cursor of the caller's connection: in its
transaction, which the caller commits as before. psycopg prepares a query after a few executions on
one connection, so on PostgreSQL they become server-side prepared statements as well. Driver errors
are raised as SQLAlchemy's exceptions (``IntegrityError``, ``OperationalError``), as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, and_, bindparam, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

from shared.completeness import RECORD_NEW_INSTANCE
from shared.db.models import Instance, Series, Study

KNOWN_INSTANCE = (  # the series' pk and folder, its study's patient, and the instance's pk when stored
    select(Series.id, Series.storage_prefix, Study.patient_pk, Instance.id)
    .join(Study, Series.study_pk == Study.id)
    .outerjoin(Instance, and_(Instance.series_pk == Series.id, Instance.sop_instance_uid == bindparam("sop_uid")))
    .where(Study.study_instance_uid == bindparam("study_uid"), Series.series_instance_uid == bindparam("series_uid"))
)
INSERT_INSTANCE = insert(Instance).values(
    series_pk=bindparam("series_pk"), sop_instance_uid=bindparam("sop_instance_uid"),
    sop_class_uid=bindparam("sop_class_uid"), storage_key=bindparam("storage_key"),
    size_bytes=bindparam("size_bytes"), sha256=bindparam("sha256"), received_at=bindparam("now"),
)


class DriverStatement:
    """One Core statement as its dialect's SQL text, with what the driver needs to run it."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._dialect = dialect
        self._dbapi_error = dialect.loaded_dbapi.Error
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Literals of the statement (the 1 of "n + 1") are bound parameters with their value.
        self._literals = {name: bind.value for name, bind in compiled.binds.items() if not bind.required}
        # Conversions the dialect makes (SQLite stores a datetime as text), as SQLAlchemy would make them.
        self._processors = {
            name: processor for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def run(self, connection: Connection, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """Execute with ``values`` in ``connection``'s transaction; the first row, if the statement returns rows."""
        if not connection.in_transaction():  # begin as SQLAlchemy's own execute would, so commit() commits
            connection.begin()
        parameters = {**self._literals, **values}
        for name, processor in self._processors.items():
            parameters[name] = processor(parameters[name])
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, parameters if self._order is None else tuple(parameters[n] for n in self._order))
            return cursor.fetchone() if cursor.description else None
        except self._dbapi_error as error:
            lost = self._dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:  # the pool must not hand this connection out again
                connection.invalidate(error)
            raise DBAPIError.instance(self.sql, values, error, self._dbapi_error, connection_invalidated=lost,
                                      dialect=self._dialect) from error
        finally:
            cursor.close()


@dataclass(frozen=True, slots=True)
class IndexStatements:
    """The intake's hot-path statements for one dialect."""

    known_instance: DriverStatement
    insert_instance: DriverStatement
    record_new_instance: DriverStatement


@lru_cache(maxsize=8)
def index_statements(dialect: Dialect) -> IndexStatements:
    """The statements compiled for ``dialect`` (one per engine: compiled on the first instance, or the warm-up)."""
    return IndexStatements(
        known_instance=DriverStatement(KNOWN_INSTANCE, dialect),
        insert_instance=DriverStatement(INSERT_INSTANCE, dialect),
        record_new_instance=DriverStatement(RECORD_NEW_INSTANCE, dialect),
    )
