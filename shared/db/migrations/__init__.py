"""Alembic migration environment of the ctriage database (run through :mod:`shared.db.migrate`)."""
