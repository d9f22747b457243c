"""End to end: real worker processes (``ctriage worker gate|screen|localize``) and the real gateway
(``ctriage api``) as subprocesses, driven through the REST API and through ``enqueue_analysis``.

Run twice: embedded (SQLite, local folder store, kombu filesystem transport, all in ``tmp``) and on
servers (PostgreSQL in a fresh schema, Redis on an empty database number, S3 on moto's standalone
server over HTTP). Phantoms are small (96x160x160) to keep the suite fast on two cores.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from servers import free_port, moto_s3_server, postgres_schema
from pipeline_testkit import Processes, phantom, put_series, record_series, settings_env, wait_for_run, with_round_lesion, write_series
from shared.anatomy import RIGHT_LUNG_ANY
from shared.config import Settings
from shared.db.migrate import upgrade_database
from shared.db.models import Report, RunState
from shared.db.session import session_factory
from shared.phantoms.negatives import write_negative
from shared.pipeline.dispatch import enqueue_analysis
from shared.queue.app import configure
from shared.report import ReportV1
from shared.storage.base import ObjectStore
from shared.storage.factory import store_from_settings

pytestmark = pytest.mark.e2e

ADMIN_KEY = "ctr_e2e-admin-key-0123456789abcdefghijklmnopqrs"
REDIS_HOST = "127.0.0.1:6379"
RUN_TIMEOUT = 240.0


@dataclass
class Stack:
    """A running system: its settings, the gateway's URL and the processes."""

    kind: str
    settings: Settings
    store: ObjectStore
    api: str
    processes: Processes

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return session_factory(self.settings.resolved_database_url)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60)


@pytest.fixture(scope="module", params=["embedded", pytest.param("servers", marks=[pytest.mark.postgres, pytest.mark.redis])])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp(request.param)
    port = free_port()
    common = {"data_dir": root / "var", "bootstrap_admin_key": ADMIN_KEY, "api_host": "127.0.0.1", "api_port": port,
              "stage_time_limit_seconds": 300}
    with ExitStack() as cleanup:
        if request.param == "embedded":
            settings = Settings(_env_file=None, **common)  # type: ignore[call-arg]
        else:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, **common, database_url=cleanup.enter_context(postgres_schema("ctriage_e2e")),
                broker_url=cleanup.enter_context(_empty_redis_database()), storage_backend="s3",
                s3_endpoint=cleanup.enter_context(moto_s3_server()), s3_bucket=f"e2e-{uuid.uuid4().hex[:16]}",
                s3_access_key="testing", s3_secret_key="testing",
            )
        upgrade_database(settings.resolved_database_url)
        configure(settings)  # this process publishes to the same broker as the workers
        cleanup.callback(configure)
        processes = Processes(logs=root / "logs")
        cleanup.callback(processes.stop)
        env = settings_env(settings)
        processes.start_workers(env)
        processes.start("api", ["api", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"], env)
        api = f"http://127.0.0.1:{port}"
        _wait_healthy(api, processes)
        yield Stack(kind=request.param, settings=settings, store=store_from_settings(settings), api=api, processes=processes)


def test_a_study_uploaded_through_the_api_is_analyzed_to_its_report(stack: Stack, tmp_path: Path, nodule_files):
    with stack.client() as client:
        scan = _upload(client, nodule_files)
        accepted = client.post(f"/api/scans/{scan['id']}/analyze")
        assert accepted.status_code == 202, accepted.text
        report = _poll_report(client, scan["id"], stack)
        status = client.get(f"/api/scans/{scan['id']}/status").json()

    assert report["status"] == "done", report
    assert report["verdict"] == "pathology"
    assert report["findings"][0]["organ"] in RIGHT_LUNG_ANY  # a right lobe (built-in gate) or the whole right lung
    assert report["series_id"] == scan["id"] and report["run_id"] == accepted.json()["run_id"]
    assert set(report["timings"]) == {"gate", "screen", "localize"}
    assert [stage["state"] for stage in status["stages"]] == ["done", "done", "done"]
    assert ReportV1.model_validate_json(stack.store.get_bytes(report["artifacts"]["report"])).verdict.value == "pathology"


def test_a_chest_ct_whose_tags_say_head_ends_rejected(stack: Stack, tmp_path: Path):
    case = write_negative("tagged_head", tmp_path / "head", seed=8, shape=(48, 96, 96))
    with stack.client() as client:
        scan = _upload(client, case.files)
        assert client.post(f"/api/scans/{scan['id']}/analyze").status_code == 202
        report = _poll_report(client, scan["id"], stack)

    assert report["status"] == "rejected"
    assert report["reason"] == "not_chest"
    assert report["verdict"] is None and report["findings"] == []


def test_an_mr_upload_is_refused_with_its_reason(stack: Stack, tmp_path: Path):
    case = write_negative("mr", tmp_path / "mr", seed=9)
    with stack.client() as client:
        response = client.post("/api/scans", files=[("files", (p.name, p.read_bytes(), "application/dicom")) for p in case.files])

    assert 400 <= response.status_code < 500
    assert response.json()["reason"] == "not_ct"


def test_enqueue_analysis_drives_the_chain_to_done_and_rejected(stack: Stack, tmp_path: Path, normal_files):
    mr = write_negative("mr", tmp_path / "mr", seed=10).files
    runs = {}
    with stack.sessions() as session:
        for name, files in (("normal", normal_files), ("mr", mr)):
            prefix = put_series(stack.store, files, f"studies/e2e-{name}/series/{uuid.uuid4()}")
            series = record_series(session, prefix=prefix, study_uid=f"1.2.{uuid.uuid4().int}", series_uid=f"1.3.{uuid.uuid4().int}")
            runs[name] = enqueue_analysis(session=session, series=series).id

    normal = _wait(stack, runs["normal"])
    rejected = _wait(stack, runs["mr"])

    assert normal.state is RunState.done, (normal.reason, normal.reason_detail)
    assert set(normal.model_versions) == {"gate", "screen", "localize"}
    assert all(normal.stages[stage]["seconds"] is not None for stage in ("gate", "screen", "localize"))
    assert rejected.state is RunState.rejected and rejected.reason == "not_ct"
    with stack.sessions() as session:
        assert session.scalars(select(Report.verdict).where(Report.run_pk == runs["normal"])).one() == "normal"


@pytest.fixture(scope="module")
def normal_files(tmp_path_factory) -> list[Path]:
    return write_series(phantom(seed=31).volume, tmp_path_factory.mktemp("normal"))


@pytest.fixture(scope="module")
def nodule_files(tmp_path_factory) -> list[Path]:
    volume, _ = with_round_lesion(phantom(seed=32), side="right", diameter_mm=30.0)
    return write_series(volume, tmp_path_factory.mktemp("nodule"))


def _upload(client: httpx.Client, files: list[Path]) -> dict:
    response = client.post("/api/scans", files=[("files", (p.name, p.read_bytes(), "application/dicom")) for p in files])
    assert response.status_code == 201, response.text
    return response.json()


def _poll_report(client: httpx.Client, scan_id: str, stack: Stack) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        response = client.get(f"/api/scans/{scan_id}/report")
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202, response.text
        stack.processes.check_alive()
        time.sleep(float(response.headers.get("Retry-After", "1")) / 2)
    pytest.fail(f"no report after {RUN_TIMEOUT:.0f} s; last progress {response.text}\n{_logs(stack)}")


def _wait(stack: Stack, run_id: str):  # type: ignore[no-untyped-def]
    try:
        return wait_for_run(stack.sessions, run_id, timeout=RUN_TIMEOUT)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_logs(stack)}") from None


def _logs(stack: Stack) -> str:
    return "\n".join(f"--- {name} ---\n{stack.processes.tail(name, 25)}" for name, _ in stack.processes.children)


def _wait_healthy(api: str, processes: Processes, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"gateway not healthy after {timeout:.0f} s:\n{processes.tail('api')}")


@contextmanager
def _empty_redis_database() -> Iterator[str]:
    import redis

    for number in range(15, 0, -1):  # from the top: other tests tend to take the low numbers
        client = redis.Redis.from_url(f"redis://{REDIS_HOST}/{number}", socket_connect_timeout=3)
        try:
            # Claim it atomically so a test running beside this one does not take it too.
            if client.dbsize() == 0 and client.set("ctriage:e2e:claim", "1", nx=True):
                break
        except redis.exceptions.ConnectionError as error:
            pytest.skip(f"Redis unreachable at {REDIS_HOST}: {error}")
    else:
        pytest.skip("no empty Redis database number")
    try:
        yield f"redis://{REDIS_HOST}/{number}"
    finally:
        client.flushdb()
        client.close()


