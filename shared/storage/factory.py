"""Build the configured object store from :class:`shared.config.Settings`."""

from __future__ import annotations

from shared.config import Settings, get_settings
from shared.storage.base import ObjectStore


def store_from_settings(settings: Settings | None = None) -> ObjectStore:
    """The store ``CTRIAGE_STORAGE_BACKEND`` names: ``local`` (a folder) or ``s3`` (MinIO/S3)."""
    settings = settings or get_settings()
    backend = settings.storage_backend.lower()
    if backend == "local":
        from shared.storage.local import LocalStore

        return LocalStore(settings.resolved_storage_dir, fsync=settings.storage_fsync)
    if backend == "s3":
        from shared.storage.s3 import S3Store

        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region or None,
        )
    raise ValueError(f"unknown CTRIAGE_STORAGE_BACKEND {settings.storage_backend!r}: expected 'local' or 's3'")
