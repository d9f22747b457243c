"""Settings for every ctriage service, read from ``CTRIAGE_*`` environment variables or ``.env``.

The defaults are the *embedded* deployment: SQLite, a local-folder object store and a server-less
Celery transport under ``CTRIAGE_DATA_DIR``, so ``make run`` works on a laptop with no servers.
Point the URLs at PostgreSQL, Redis and MinIO/S3 for a real deployment (see ``.env.example``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration; each field is ``CTRIAGE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="CTRIAGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Root of embedded state: database, objects, queue.")
    database_url: str = Field("", description="SQLAlchemy URL; empty = SQLite in data_dir.")
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL", description="SQLite (WAL) commits: FULL survives power loss; NORMAL may lose the last commits then.")
    broker_url: str = Field("", description="Celery broker; empty = filesystem transport in data_dir.")
    result_backend: str = Field("", description="Celery result backend; empty = SQLite in data_dir.")

    storage_backend: str = Field("local", description="'local' (folder) or 's3' (MinIO/S3 via minio).")
    storage_dir: Path | None = Field(None, description="Local store root; default data_dir/objects.")
    storage_fsync: bool = Field(True, description="Local store: flush each object to disk before it becomes visible.")
    s3_endpoint: str = Field("127.0.0.1:9000", description="host:port of MinIO/S3.")
    s3_access_key: str = Field("minioadmin")
    s3_secret_key: str = Field("minioadmin")
    s3_bucket: str = Field("ctriage")
    s3_secure: bool = Field(False, description="Use HTTPS to reach S3.")
    s3_region: str = Field("us-east-1")

    api_host: str = Field("127.0.0.1")
    api_port: int = Field(8000)
    bootstrap_admin_key: str = Field("", description="Becomes an admin API key on first start.")
    max_upload_bytes: int = Field(4 * 1024**3, description="Largest accepted upload (all files).")
    max_zip_members: int = Field(20000)
    max_zip_ratio: float = Field(200.0, description="Refuse zips expanding more than this factor.")
    predict_wait_seconds: float = Field(120.0, description="How long /inference/predict waits.")
    report_cache_seconds: float = Field(1.0, description="How long a gateway reuses a scan's report answer; 0 = never.")
    render_cache_bytes: int = Field(
        1024**3, ge=0, description="Memory each gateway process keeps decoded volumes and anomaly maps in for slice PNGs (LRU by run); 0 = none.")

    stage_time_limit_seconds: int = Field(1800, description="Hard time limit of one stage task.")
    stage_max_retries: int = Field(3, description="Retries of a stage after a transient error.")

    # PACS intake: the DICOM C-STORE receiver (`ctriage dicom-receiver`) and study completeness.
    dicom_ae_title: str = Field("CTRIAGE", description="Our AE title; associations calling another are refused.")
    dicom_host: str = Field("127.0.0.1", description="Bind address of the DICOM receiver (0.0.0.0 in containers).")
    dicom_port: int = Field(11112, description="TCP port of the DICOM receiver.")
    dicom_allowed_calling_aes: str = Field(
        "", description="Comma-separated calling AE titles allowed to associate; '*' allows any; empty refuses all."
    )
    dicom_max_associations: int = Field(32, description="Concurrent associations; more are refused (transient).")
    dicom_max_pdu_bytes: int = Field(4 * 1024**2, description="Largest PDU we accept (our Maximum Length, PS3.8 D.1).")
    dicom_network_timeout_seconds: float = Field(60.0, description="An association silent this long is aborted.")
    export_cstore_destinations: str = Field(
        "", description="Comma-separated AE@host:port of C-STORE SCPs (PACS) that receive each run's SEG, SR and key images.")
    export_stow_urls: str = Field(
        "", description="Comma-separated DICOMweb STOW-RS URLs (e.g. https://pacs/dicom-web/studies) that receive the same objects.")
    export_stow_authorization: str = Field(
        "", description="Authorization header value sent to the STOW-RS destinations (e.g. 'Bearer <token>'); empty: none.")
    export_max_attempts: int = Field(5, ge=1, description="Tries per destination before an export job is dead-lettered.")
    export_retry_base_seconds: float = Field(
        30.0, gt=0, description="Wait before the 2nd try; doubles with each further try (exponential backoff).")
    export_timeout_seconds: float = Field(30.0, gt=0, description="Network timeout of one export try (connect, each response).")
    export_poll_seconds: float = Field(1.0, gt=0, description="How often the export worker looks for jobs whose retry is due.")
    completeness_quiet_seconds: float = Field(10.0, description="A series with no new instance for this long is complete.")
    completeness_scan_seconds: float = Field(1.0, description="How often the receiver looks for complete series.")
    auto_analyze: bool = Field(True, description="Start an analysis run when a received series is complete.")
    auto_analyze_modalities: str = Field("CT", description="Comma-separated modalities that are analyzed automatically.")
    auto_analyze_min_instances: int = Field(10, description="Fewer instances (e.g. a localizer series) are not analyzed.")

    localizer_min_finding_mm3: float = Field(30.0, description="Smaller connected components of the anomaly mask are not findings.")

    screener: str = Field("baseline", description="Screener model: 'dense-vicreg' (learned, shipped in worker_screener/weights) or 'baseline' (HU z-score yardstick).")

    gate_backend: str = Field("builtin", description="Gate organ segmenter: 'builtin', 'baseline' (threshold lung mask, the yardstick), 'totalsegmentator' (fast mode, installed weights only) or 'auto' (totalsegmentator when its weights are installed, else builtin).")
    gate_max_pixel_mm: float = Field(1.5, description="Gate: coarser in-plane pixels are refused (coarse_resolution).")

    log_level: str = Field("INFO")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside ``data_dir``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'ctriage.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        """Root folder of the local object store."""
        return (self.storage_dir or self.data_dir / "objects").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()
