"""The DICOM C-STORE receiver: a PACS pushes studies here (PS3.4 Annex B Storage Service Class, SCP role).

``ctriage dicom-receiver`` listens on ``CTRIAGE_DICOM_PORT`` as ``CTRIAGE_DICOM_AE_TITLE``, answers
C-ECHO, and stores every CT instance it receives byte for byte (no transcoding) through
:func:`shared.ingest.ingest_instance` before the success status goes back. It also runs the study
completeness scanner (:mod:`shared.completeness`) that starts analysis runs.

Modules: :mod:`.upper_layer` (PDUs, PS3.8), :mod:`.negotiation` (who may associate, which presentation
contexts), :mod:`.commands` (DIMSE command sets, PS3.7), :mod:`.part10` (File Meta Information),
:mod:`.association` (one association's protocol machine), :mod:`.intake` (persisting an instance,
shared with STOW-RS), :mod:`.server` (listening), :mod:`.cli` (the command), :mod:`.launcher` (the
command as a child process, for tests and benchmarks).

What a success status promises: the object is in object storage and its row committed before the
response is sent, so the instance survives the receiver dying right after (SIGKILL, OOM kill; the
kernel holds what was written). Power loss or a kernel crash is covered only where the writes are
flushed: the local store with ``CTRIAGE_STORAGE_FSYNC=true`` and SQLite with
``CTRIAGE_SQLITE_SYNCHRONOUS=FULL`` (the defaults: two flushes per instance, which a PACS that waits
for each response, as dcmtk's ``storescu`` does, pays in full), PostgreSQL with its
``synchronous_commit`` on, S3 once its PUT returns. ``NORMAL`` and no fsync keep the first promise
only (dcmtk's ``storescp`` never fsyncs either); ``python -m bench dimse`` measures both.
"""
