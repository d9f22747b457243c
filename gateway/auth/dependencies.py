"""The ``Authorization: Bearer <key>`` check every endpoint but health goes through."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from gateway.auth import service
from gateway.auth.keys import Principal, VerifiedKeyCache
from gateway.auth.permissions import Permission, allows, least_role
from gateway.problems import ProblemError

bearer_scheme = HTTPBearer(auto_error=False, scheme_name="ApiKey", description="An API key: `Authorization: Bearer <key>`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ctriage"'}


class KeyVerifier:
    """Verifies API keys for one app: cached, one scrypt at a time per key, a few at a time overall.

    Without this, the moment a busy key's cache entry expired every request in flight would run its
    own scrypt (tens of ms and 16 MiB each) and the gateway would stall.
    """

    def __init__(self, *, cache: VerifiedKeyCache, session_factory: sessionmaker[Session], concurrency: int = 4) -> None:
        self.cache = cache
        self.session_factory = session_factory
        self._in_flight: dict[bytes, asyncio.Future[Principal | None]] = {}
        self._slots = asyncio.Semaphore(concurrency)

    async def principal(self, key: str) -> Principal | None:
        """The principal of ``key``, or None when it is unknown or revoked."""
        fingerprint = self.cache.fingerprint(key)
        principal, due = self.cache.lookup(fingerprint)
        if principal is None:
            return await asyncio.shield(self._verification(key, fingerprint))
        if due:
            self._verification(key, fingerprint)  # refreshed in the background; this request goes on
        return principal

    def _verification(self, key: str, fingerprint: bytes) -> asyncio.Future[Principal | None]:
        future = self._in_flight.get(fingerprint)
        if future is None:
            future = asyncio.ensure_future(self._verify(key, fingerprint))
            self._in_flight[fingerprint] = future
            future.add_done_callback(lambda done: self._settle(fingerprint, done))
        return future

    def _settle(self, fingerprint: bytes, done: asyncio.Future[Principal | None]) -> None:
        self._in_flight.pop(fingerprint, None)
        if not done.cancelled():
            done.exception()  # a background refresh that failed (database down) is retried next time

    async def _verify(self, key: str, fingerprint: bytes) -> Principal | None:
        async with self._slots:
            # scrypt and the database lookup block: keep them off the event loop.
            principal = await run_in_threadpool(service.verify_api_key, session_factory=self.session_factory, key=key)
        if principal is None:
            self.cache.drop(fingerprint)
        else:
            self.cache.put(fingerprint, principal)
        return principal


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """The caller's principal; 401 problem without a key or with an unknown or revoked one."""
    if credentials is None or not credentials.credentials:
        raise ProblemError(401, "unauthenticated", "Send an API key as `Authorization: Bearer <key>`.",
                           reason="missing_api_key", headers=_CHALLENGE)
    principal = await request.app.state.key_verifier.principal(credentials.credentials)
    if principal is None:
        raise ProblemError(401, "unauthenticated", "The API key is unknown or revoked.",
                           reason="invalid_api_key", headers=_CHALLENGE)
    request.state.principal = principal
    return principal


@lru_cache
def authorized(permission: Permission) -> Any:
    """A dependency giving the caller's principal, 403 problem unless its role grants ``permission``."""

    async def require_permission(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not allows(principal.role, permission):
            raise ProblemError(
                403,
                "forbidden",
                f"This needs the {least_role(permission).value} role or higher; the key has {principal.role.value}.",
                reason="insufficient_role",
            )
        return principal

    return Depends(require_permission)
