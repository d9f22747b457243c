"""API schemas of series completeness."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gateway.schemas import UtcDateTime
from shared.db.models import Series


class ExpectedInstances(BaseModel):
    """How many instances the series will have, e.g. from the PACS's worklist or a C-FIND (0020,1209)."""

    expected_instances: int | None = Field(..., ge=1, le=1_000_000, description="null: unknown (the quiet period decides).")


class CompletenessOut(BaseModel):
    """Where a series arriving instance by instance stands."""

    scan_id: str
    n_instances: int = Field(..., description="Instances stored so far.")
    expected_instances: int | None = Field(None, description="Complete as soon as this many are stored.")
    last_instance_at: UtcDateTime | None = Field(None, description="When the newest instance was stored (C-STORE, STOW-RS).")
    complete: bool = Field(..., description="Complete: no instance for the quiet period, or all expected ones in.")
    completed_at: UtcDateTime | None = None
    run_id: str | None = Field(None, description="The analysis run this request started, if it completed the series.")

    @classmethod
    def of(cls, series: Series, *, run_id: str | None = None) -> CompletenessOut:
        """The completeness of ``series``."""
        return cls(
            scan_id=series.id, n_instances=series.n_instances, expected_instances=series.expected_instances,
            last_instance_at=series.last_instance_at, complete=series.completed_at is not None,
            completed_at=series.completed_at, run_id=run_id,
        )
