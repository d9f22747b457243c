"""Persist one received instance (C-STORE or STOW-RS): stored and indexed before its success is reported.

Both intakes go through :func:`shared.ingest.ingest_instance` (the REST upload's path too): the object
lands in object storage byte for byte, its rows in the database, a repeat of a stored SOPInstanceUID
is stored once, and a new instance restarts its series' completeness clock (:mod:`shared.completeness`).

Only CT image storage SOP classes are taken (CT, Enhanced CT, Legacy Converted Enhanced CT): a
chest-CT triage has no use for the rest, and refusing it per object (not per association) lets the
PACS deliver the CT of a mixed study. Failures map to DIMSE statuses (PS3.4 B.2.3), which STOW-RS
reports as its Failure Reason (PS3.18 Table 10.5.3-1 uses the same codes).
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.dimse.commands import Status
from shared.dicom.errors import LoadError
from shared.dicom.instances import CT_SOP_CLASSES
from shared.ingest import ingest_instance
from shared.storage.base import ObjectStore, StorageError

log = logging.getLogger(__name__)

_ATTEMPTS = 4  # a concurrent intake may create the same study/series/instance row first: then try again
_RETRY_PAUSE_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one instance: a DIMSE status and, on failure, a comment for the SCU (no PHI)."""

    status: int
    comment: str | None = None
    series_id: str | None = None
    new: bool = False  # stored now (False: a repeat of a stored instance, or refused)
    expected_reached: bool = False  # the series now holds its expected instance count

    @property
    def ok(self) -> bool:
        """Whether the instance is stored (now or before)."""
        return self.status == Status.SUCCESS


class InstanceIntake:
    """Stores received instances for one intake ``source`` (``cstore`` or ``stowrs``); thread-safe."""

    def __init__(self, *, session_factory: sessionmaker[Session], store: ObjectStore, source: str) -> None:
        self._engine: Engine = session_factory.kw["bind"]
        self._store = store
        self._source = source

    def receive(self, *, name: str, data: bytes | Path, sop_class_uid: str, sha256: str | None = None) -> Receipt:
        """Store the DICOM Part 10 object ``data`` and index it; ``name`` only labels errors.

        ``sha256``: the digest of ``data`` when the caller computed it while receiving (not computed again).
        """
        if sop_class_uid not in CT_SOP_CLASSES:
            return Receipt(Status.SOP_CLASS_NOT_SUPPORTED, "ctriage accepts CT image storage SOP classes only")
        for attempt in range(_ATTEMPTS):
            try:
                # A connection, not an ORM session, for the per-instance statements: committed when this
                # block ends, i.e. after the object is stored and before the status goes back.
                with self._engine.begin() as connection:
                    ingested = ingest_instance(db=connection, store=self._store, name=name, data=data,
                                               source=self._source, sha256=sha256)
                return Receipt(Status.SUCCESS, series_id=ingested.series_id, new=ingested.new,
                               expected_reached=ingested.expected_reached)
            except LoadError as error:
                return Receipt(Status.CANNOT_UNDERSTAND, f"unreadable DICOM object ({error.reason.value})")
            except StorageError as error:
                log.error("%s intake: object storage failed: %s", self._source, type(error).__name__)
                return Receipt(Status.OUT_OF_RESOURCES, "object storage unavailable, send again later")
            except IntegrityError:
                pass  # another intake created the same row first (rolled back): it is there now
            except OperationalError as error:
                log.warning("%s intake: database busy or unreachable (attempt %d): %s", self._source, attempt + 1,
                            type(error.orig).__name__ if error.orig is not None else type(error).__name__)
            time.sleep(_RETRY_PAUSE_SECONDS * (attempt + 1))
        return Receipt(Status.OUT_OF_RESOURCES, "database unavailable, send again later")

    def warm_up(self) -> None:
        """Take a synthetic 8x8 CT instance through the whole path and roll it back (no row, no object kept).

        The first instance of a receiver otherwise pays SQLAlchemy's statement compilation and the
        DICOM reader's lazy imports (tenths of a second); a PACS's first study should not.
        """
        import numpy as np

        from shared.dicom.volume import Volume
        from shared.dicom.writer import write_ct_series
        from shared.storage.local import LocalStore

        try:
            with tempfile.TemporaryDirectory(prefix="ctriage-warm-up-") as tmp:
                volume = Volume(hu=np.zeros((1, 8, 8), dtype=np.int16), affine=np.eye(4))
                [path] = write_ct_series(volume, Path(tmp) / "ct", uid_entropy=uuid.uuid4().hex)
                scratch = LocalStore(Path(tmp) / "objects", fsync=False)
                with self._engine.connect() as connection:
                    try:
                        ingest_instance(db=connection, store=scratch, name="warm-up", data=path.read_bytes(),
                                        source=self._source)
                    finally:
                        connection.rollback()
        except Exception as error:  # noqa: BLE001 - only the first instance's speed is at stake
            log.warning("%s intake: warm-up failed (%s); the first instance will be slower", self._source,
                        type(error).__name__)
