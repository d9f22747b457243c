"""The upload flow shared by ``POST /api/scans`` and ``POST /inference/predict``: receive, validate, store, record."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from gateway.audit.service import record_event
from gateway.auth.keys import Principal
from gateway.problems import ProblemError
from gateway.scans import service
from gateway.scans.models import ScanOut
from gateway.scans.multipart import ReceivedForm, receive_form
from shared.dicom.errors import LoadError
from shared.ingest import UnknownPatient, ingest_upload

logger = logging.getLogger(__name__)

UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                        "description": "DICOM files (.dcm) and/or zip archives of one study; repeat the field.",
                    },
                    "patient_id": {"type": "string", "description": "Id of an existing patient record."},
                    "description": {"type": "string", "description": "Free-text note on the scan."},
                },
            },
            "encoding": {"files": {"contentType": "application/dicom, application/zip, application/octet-stream"}},
        }
    },
}


def upload_workdir(request: Request) -> Path:
    """A fresh folder for one upload's parts, on the data disk (not a RAM-backed /tmp)."""
    root = request.app.state.settings.data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="upload-", dir=root))


def load_error_problem(error: LoadError) -> ProblemError:
    """The 422 problem of an upload the DICOM loader refuses; ``reason`` is the loader's code."""
    return ProblemError(
        422, "invalid-dicom", error.detail, reason=error.reason.value, title="The upload cannot be used",
        values=error.values or None,
    )


def _ingest(request: Request, form: ReceivedForm, principal: Principal, source: str) -> ScanOut:
    """Validate and store the received parts, record the scan and its audit event (runs in a thread)."""
    state = request.app.state
    with state.session_factory() as session:
        try:
            series = ingest_upload(
                session=session,
                store=state.store,
                files=form.files,
                source=source,
                patient_id=form.fields.get("patient_id") or None,
                description=form.fields.get("description"),
                settings=state.settings,
            )
        except LoadError as error:
            raise load_error_problem(error) from None
        except UnknownPatient:
            raise ProblemError(422, "validation-error", "patient_id names no patient record.",
                               reason="patient_not_found") from None
        record_event(session=session, api_key_id=principal.key_id, action=f"scan.{source}", resource_type="scan",
                     resource_id=series.id, detail={"n_instances": series.n_instances, "size_bytes": series.size_bytes})
        session.commit()
        return ScanOut(**service.to_api(series))


async def receive_and_ingest(request: Request, *, principal: Principal, source: str) -> ScanOut:
    """Stream the multipart upload to disk, then validate, store and record it off the event loop."""
    settings = request.app.state.settings
    workdir = await run_in_threadpool(upload_workdir, request)
    try:
        started = time.perf_counter()
        form = await receive_form(request, workdir=workdir, max_bytes=settings.max_upload_bytes)
        if not form.files:
            raise ProblemError(422, "validation-error", "Send at least one file in the form field 'files'.",
                               reason="no_files")
        received = time.perf_counter()
        scan = await run_in_threadpool(_ingest, request, form, principal, source)
        logger.info(
            "%s %s: %d part(s), %d bytes received in %.2f s, validated and stored in %.2f s", source, scan.id,
            len(form.files), sum(part.size for part in form.files), received - started, time.perf_counter() - received,
        )
        return scan
    finally:
        await run_in_threadpool(shutil.rmtree, workdir, True)
