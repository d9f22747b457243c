"""API schemas of one-shot inference."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictAccepted(BaseModel):
    """The analysis did not finish within the wait: poll ``poll_url``."""

    scan_id: str
    run_id: str
    state: str = Field(..., description="The run's state (queued or running).")
    stage: str | None = Field(None, description="The stage running or queued.")
    poll_url: str = Field(..., description="GET it (same key) until it answers 200 with the report.")
