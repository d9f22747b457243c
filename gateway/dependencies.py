"""Request-scoped dependencies: settings, a database session and the object store of the running app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.storage.base import ObjectStore


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; services commit what they change.

    A plain function on purpose: FastAPI runs it in the worker threads, as closing a session may wait
    on the database. The other dependencies do no I/O and are ``async`` to avoid thread hops.
    """
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        session.close()


async def get_store(request: Request) -> ObjectStore:
    """The app's object store."""
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
