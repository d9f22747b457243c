"""``/api/scans/{id}/seg|sr|key-images|slices/{k}.png|report.pdf``: clinical outputs for clinicians and PACS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep, StoreDep
from gateway.problems import problems
from gateway.results import service
from gateway.results.cache import entity_tag, not_modified, render_cache, validators
from gateway.results.models import DICOM, KEY_IMAGES_TYPE, PDF, PNG, Window, binary_response
from gateway.scans.views import scan_or_404
from worker_localizer.outputs.render import render_slice_png

router = APIRouter(prefix="/api/scans", tags=["scans"])

Clinician = Annotated[Principal, authorized(Permission.read)]
NOT_FOUND = problems(401, 403, 404)
NOT_MODIFIED = {304: {"description": "The client's copy (If-None-Match) is current."}}


def _attachment(data: bytes, media_type: str, filename: str) -> Response:
    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/{scan_id}/seg", response_class=Response, summary="DICOM SEG of the findings",
            responses={**binary_response(DICOM, "Segmentation of the findings (absent for a study without findings)."), **NOT_FOUND})
def get_seg(scan_id: str, session: SessionDep, store: StoreDep, _clinician: Clinician) -> Response:
    """The DICOM Segmentation of the latest finished analysis; 404 problem when it has no findings."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    return _attachment(store.get_bytes(service.artifact_key(report, "seg")), DICOM, "seg.dcm")


@router.get("/{scan_id}/sr", response_class=Response, summary="DICOM SR (TID 1500) of the findings",
            responses={**binary_response(DICOM, "Comprehensive 3D SR measurement report (TID 1500)."), **NOT_FOUND})
def get_sr(scan_id: str, session: SessionDep, store: StoreDep, _clinician: Clinician) -> Response:
    """The TID 1500 measurement report of the latest finished analysis."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    return _attachment(store.get_bytes(service.artifact_key(report, "sr")), DICOM, "sr.dcm")


@router.get("/{scan_id}/key-images", response_class=Response, summary="Key images (secondary captures)",
            responses={**binary_response(KEY_IMAGES_TYPE, "One application/dicom part per finding, in report order."),
                       **NOT_FOUND})
def get_key_images(scan_id: str, session: SessionDep, store: StoreDep, _clinician: Clinician) -> Response:
    """The key images as ``multipart/related; type="application/dicom"`` (as DICOMweb retrieves send them)."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    body, boundary = service.multipart_related(store=store, keys=service.key_image_keys(report), media_type=DICOM)
    return Response(body, headers={"Content-Type": f'{KEY_IMAGES_TYPE}; boundary="{boundary}"'})


@router.get("/{scan_id}/slices/{k}.png", response_class=Response, summary="One slice as PNG with the anomaly overlay",
            responses={**binary_response(PNG, "Slice k in the window, radiological orientation.", cached=True),
                       **NOT_MODIFIED, **problems(401, 403, 404, 422)})
def get_slice_png(
    scan_id: str, request: Request, session: SessionDep, store: StoreDep, _clinician: Clinician,
    k: Annotated[int, Path(ge=0, description="Slice index k (0 = first slice of the volume).")],
    window: Annotated[Window, Query(description="lung (W1500/L-600) or mediastinal (W400/L40).")] = "lung",
    overlay: Annotated[bool, Query(description="Draw the anomaly map as a heat map.")] = True,
) -> Response:
    """Slice ``k`` of the analysed volume; 404 problem when the volume has no such slice. The volume
    stays decoded in the gateway between requests; ``If-None-Match`` with the ETag answers 304."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    etag = entity_tag("slice", report.run_id, k, window, overlay)
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged
    maps = service.render_maps(store=store, report=report, cache=render_cache(request))
    service.check_slice(maps.volume, k)
    png = render_slice_png(volume=maps.volume, k=k, window=window, overlay=maps.anomaly[k] if overlay else None)
    return Response(png, media_type=PNG, headers=validators(etag))


@router.get("/{scan_id}/report.pdf", response_class=Response, summary="The report as PDF",
            responses={**binary_response(PDF, "A summary page and one page per finding with its key image.", cached=True),
                       **NOT_MODIFIED, **NOT_FOUND})
def get_report_pdf(scan_id: str, request: Request, session: SessionDep, store: StoreDep, _clinician: Clinician) -> Response:
    """The latest finished analysis as a PDF for people, rendered on its first download and stored."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    etag = entity_tag("report.pdf", report.run_id)
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged
    pdf = service.stored_report_pdf(store=store, report=report, cache=render_cache(request))
    response = _attachment(pdf, PDF, "report.pdf")
    response.headers.update(validators(etag))
    return response
