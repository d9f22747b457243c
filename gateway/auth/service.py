"""API key management: create, verify, list, revoke; the bootstrap admin key."""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.auth.keys import (
    MIN_KEY_LENGTH,
    Principal,
    generate_key,
    hash_key,
    key_prefix,
    verify_key,
)
from shared.config import Settings
from shared.db.models import ApiKey, Role, utcnow

logger = logging.getLogger(__name__)


def verify_api_key(*, session_factory: sessionmaker[Session], key: str) -> Principal | None:
    """The principal of a valid, unrevoked ``key`` (recording its use), else None."""
    if len(key) < MIN_KEY_LENGTH:
        return None
    with session_factory() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == key_prefix(key), ApiKey.revoked_at.is_(None)))
        if row is None or not verify_key(key, row.key_hash):
            return None
        # Written on verification only (about once per cache TTL), not on every request.
        row.last_used_at = utcnow()
        session.commit()
        return Principal(key_id=row.id, name=row.name, role=row.role)


def create_key(*, session: Session, name: str, role: Role, key: str | None = None) -> tuple[ApiKey, str]:
    """Store a new key (``key`` given, or generated) and return the row and the clear key."""
    for _attempt in range(3):
        clear = key or generate_key()
        if len(clear) < MIN_KEY_LENGTH:
            raise ValueError(f"an API key needs at least {MIN_KEY_LENGTH} characters")
        row = ApiKey(name=name, role=role, prefix=key_prefix(clear), key_hash=hash_key(clear))
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            if key is not None:
                raise
            continue  # prefix collision of a generated key: draw another
        return row, clear
    raise RuntimeError("could not draw a unique API key prefix")


def list_keys(*, session: Session, limit: int, offset: int) -> tuple[list[ApiKey], int]:
    """A page of keys, oldest first, and the total count."""
    total = session.scalar(select(func.count()).select_from(ApiKey)) or 0
    rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id).limit(limit).offset(offset)).all()
    return list(rows), total


def revoke_key(*, session: Session, key_id: str) -> ApiKey | None:
    """Mark a key revoked (idempotent); None when there is no such key."""
    row = session.get(ApiKey, key_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def ensure_bootstrap_admin_key(*, session: Session, settings: Settings) -> str | None:
    """Make sure an admin can log in; returns a newly generated key (to print once), else None.

    ``CTRIAGE_BOOTSTRAP_ADMIN_KEY`` becomes an admin key unless it already is one; without it, and
    with no active admin key, a key is generated.
    """
    if settings.bootstrap_admin_key:
        key = settings.bootstrap_admin_key
        existing = session.scalar(select(ApiKey).where(ApiKey.prefix == key_prefix(key)))
        if existing is None:
            create_key(session=session, name="bootstrap admin", role=Role.admin, key=key)
            session.commit()
        elif not verify_key(key, existing.key_hash):
            logger.warning("CTRIAGE_BOOTSTRAP_ADMIN_KEY shares its prefix with another stored key; not added")
        return None
    has_admin = session.scalar(
        select(ApiKey.id).where(ApiKey.role == Role.admin, ApiKey.revoked_at.is_(None)).limit(1)
    )
    if has_admin is not None:
        return None
    _row, key = create_key(session=session, name="generated admin", role=Role.admin)
    session.commit()
    return key
