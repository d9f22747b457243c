"""``/api/scans/{id}/seg|sr|key-images|slices/{k}.png|report.pdf``: clinical outputs for clinicians and PACS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from gateway.auth.dependencies import authorized
from gateway.auth.keys import Principal
from gateway.auth.permissions import Permission
from gateway.dependencies import SessionDep, StoreDep
from gateway.problems import problems
from gateway.results import service
from gateway.results.models import DICOM, KEY_IMAGES_TYPE, PDF, PNG, Window, binary_response
from gateway.scans.views import scan_or_404
from worker_localizer.outputs.render import render_slice_png

router = APIRouter(prefix="/api/scans", tags=["scans"])

Clinician = Annotated[Principal, authorized(Permission.read)]
NOT_FOUND = problems(401, 403, 404)


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
            responses={**binary_response(PNG, "Slice k in the window, radiological orientation."), **problems(401, 403, 404, 422)})
def get_slice_png(
    scan_id: str, session: SessionDep, store: StoreDep, _clinician: Clinician,
    k: Annotated[int, Path(ge=0, description="Slice index k (0 = first slice of the volume).")],
    window: Annotated[Window, Query(description="lung (W1500/L-600) or mediastinal (W400/L40).")] = "lung",
    overlay: Annotated[bool, Query(description="Draw the anomaly map as a heat map.")] = True,
) -> Response:
    """Slice ``k`` of the analysed volume; 404 problem when the volume has no such slice."""
    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    maps = service.load_maps(store=store, report=report, with_labels=False)
    service.check_slice(maps.volume, k)
    png = render_slice_png(volume=maps.volume, k=k, window=window, overlay=maps.anomaly[k] if overlay else None)
    return Response(png, media_type=PNG)


@router.get("/{scan_id}/report.pdf", response_class=Response, summary="The report as PDF",
            responses={**binary_response(PDF, "A summary page and one page per finding with its key image."), **NOT_FOUND})
def get_report_pdf(scan_id: str, session: SessionDep, store: StoreDep, _clinician: Clinician) -> Response:
    """The latest finished analysis as a PDF for people."""
    from worker_localizer.outputs.pdf import report_pdf  # pulls in highdicom: loaded when first asked for

    report = service.finished_report(session=session, series_pk=scan_or_404(session, scan_id).id)
    maps = service.load_maps(store=store, report=report, with_labels=True)
    pdf = report_pdf(volume=maps.volume, report=report, anomaly_score=maps.anomaly, anomaly_mask=maps.findings,
                     organ_labels=maps.organs)
    return _attachment(pdf, PDF, "report.pdf")
