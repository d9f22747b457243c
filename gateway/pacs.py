"""The PACS intake routes, included by the app as one router: DICOMweb and series completeness."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.completeness.views import router as completeness_router
from gateway.dicomweb.views import router as dicomweb_router

router = APIRouter()
router.include_router(dicomweb_router)
router.include_router(completeness_router)
