"""Object storage: ``get_store()`` returns the configured :class:`ObjectStore`."""

from shared.storage.base import ObjectInfo, ObjectNotFound, ObjectStore, StorageError

__all__ = ["ObjectInfo", "ObjectNotFound", "ObjectStore", "StorageError", "get_store"]


def get_store() -> ObjectStore:
    """The store the settings name (``CTRIAGE_STORAGE_BACKEND``): local folder or S3/MinIO."""
    from shared.storage.factory import store_from_settings

    return store_from_settings()
