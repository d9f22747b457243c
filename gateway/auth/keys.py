"""API key format and hashing.

A key is ``ctr_`` + 43 URL-safe random characters (256 bits). Its first :data:`PREFIX_LENGTH`
characters are stored in clear as the lookup prefix; the whole key is stored only as a salted scrypt
hash (RFC 7914), so a leaked database does not leak usable keys. scrypt is deliberately slow
(~50 ms), which is why verified keys are cached in process (:class:`VerifiedKeyCache`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from shared.db.models import Role

KEY_PREFIX = "ctr_"
PREFIX_LENGTH = 12
MIN_KEY_LENGTH = 32
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def generate_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_prefix(key: str) -> str:
    """The stored, non-secret lookup prefix of ``key``."""
    return key[:PREFIX_LENGTH]


def hash_key(key: str) -> str:
    """Salted scrypt hash of ``key`` as ``scrypt$N$r$p$salt$hash`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(key.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_key(key: str, stored: str) -> bool:
    """Whether ``key`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            key.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=len(digest_hex) // 2
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: an API key's id, name and role (never the key itself)."""

    key_id: str
    name: str
    role: Role


class VerifiedKeyCache:
    """Keys verified recently, by SHA-256 of the key, for ``ttl`` seconds: skips scrypt on hot paths.

    An entry older than ``refresh_after`` is still served but due for a background re-verification,
    so a busy key never waits on scrypt. A revoked key is dropped at once in this process
    (:meth:`forget`) and stops working within ``ttl`` in the others.
    """

    def __init__(self, ttl: float = 30.0, refresh_after: float = 20.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.refresh_after = refresh_after
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[Principal, float]] = {}  # fingerprint -> (principal, verified at)
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(key: str) -> bytes:
        """Cache key of ``key``: a fast hash, so the raw key is not kept in memory."""
        return hashlib.sha256(key.encode()).digest()

    def lookup(self, fingerprint: bytes) -> tuple[Principal | None, bool]:
        """The principal verified less than ``ttl`` ago (or None), and whether it is due for re-verification."""
        entry = self._entries.get(fingerprint)
        if entry is None:
            return None, False
        age = time.monotonic() - entry[1]
        if age >= self.ttl:
            return None, False
        return entry[0], age >= self.refresh_after

    def put(self, fingerprint: bytes, principal: Principal) -> None:
        """Remember that the key with this fingerprint verified as ``principal`` just now."""
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if now - v[1] < self.ttl}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[fingerprint] = (principal, now)

    def drop(self, fingerprint: bytes) -> None:
        """Forget one key (it no longer verifies)."""
        with self._lock:
            self._entries.pop(fingerprint, None)

    def forget(self, key_id: str) -> None:
        """Drop every entry of the key with id ``key_id`` (on revocation)."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if v[0].key_id != key_id}
