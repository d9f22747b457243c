"""``/healthz`` (the process answers) and ``/readyz`` (database, broker and storage reachable); no auth."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from gateway.problems import problem_response

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3.0


class Health(BaseModel):
    """The process is alive."""

    status: str = "ok"


class CheckResult(BaseModel):
    """One dependency check."""

    ok: bool
    seconds: float
    error: str | None = Field(None, description="Exception type when the check failed (no internals).")


class Readiness(BaseModel):
    """Every dependency check passed."""

    status: str = "ready"
    checks: dict[str, CheckResult]


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """200 while the process serves requests."""
    return Health()


def _check_database(request: Request) -> None:
    with request.app.state.session_factory() as session:
        session.execute(text("SELECT 1"))


def _check_broker(request: Request) -> None:
    from shared.queue.app import celery_app

    with celery_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


def _check_storage(request: Request) -> None:
    request.app.state.store.check()


CHECKS: dict[str, Callable[[Request], None]] = {
    "database": _check_database,
    "broker": _check_broker,
    "storage": _check_storage,
}


def _timed(check: Callable[[Request], None], request: Request) -> CheckResult:
    started = time.perf_counter()
    try:
        check(request)
    except Exception as error:  # any failure makes the gateway unready; its type says which kind
        return CheckResult(ok=False, seconds=round(time.perf_counter() - started, 4), error=type(error).__name__)
    return CheckResult(ok=True, seconds=round(time.perf_counter() - started, 4))


def run_checks(request: Request) -> dict[str, CheckResult]:
    """Every check, in parallel, each bounded by :data:`CHECK_TIMEOUT_SECONDS`."""
    results: dict[str, CheckResult] = {}
    pool = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="readyz")
    futures = {name: pool.submit(_timed, check, request) for name, check in CHECKS.items()}
    deadline = time.monotonic() + CHECK_TIMEOUT_SECONDS
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = CheckResult(ok=False, seconds=CHECK_TIMEOUT_SECONDS, error="Timeout")
    # A hung check must not hold the answer: its thread is left to finish on its own.
    pool.shutdown(wait=False, cancel_futures=True)
    return results


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"description": "A dependency is unavailable; the problem's `checks` member says which."}},
)
def readyz(request: Request) -> Any:
    """200 when the database, the broker and the object store all answer; 503 problem otherwise."""
    checks = run_checks(request)
    if all(result.ok for result in checks.values()):
        return Readiness(checks=checks)
    failed = sorted(name for name, result in checks.items() if not result.ok)
    response: JSONResponse = problem_response(
        status=503,
        slug="not-ready",
        request=request,
        detail=f"Unavailable: {', '.join(failed)}.",
        reason="dependency_unavailable",
        checks={name: result.model_dump() for name, result in checks.items()},
    )
    return response
