"""A per-process, one-second memory of report answers: clients poll the same scan many times a second.

Only 200 (report) and 202 (progress) answers are kept, after the caller's key has been checked, for
``ttl`` seconds; analyze and delete forget the scan's entry at once in this process, other gateway
processes see the change within ``ttl``. ``Retry-After`` asks pollers to wait longer than that anyway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from fastapi.responses import Response


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]
    expires: float


class ReportCache:
    """Recent report answers by scan id."""

    def __init__(self, ttl: float = 1.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._answers: dict[str, _Answer] = {}
        self._lock = threading.Lock()

    def get(self, scan_id: str) -> Response | None:
        """A copy of the answer given less than ``ttl`` seconds ago, if any."""
        answer = self._answers.get(scan_id)
        if answer is None or answer.expires < time.monotonic():
            return None
        return Response(answer.body, status_code=answer.status, headers=dict(answer.headers),
                        media_type="application/json")

    def put(self, scan_id: str, response: Response) -> None:
        """Remember ``response`` when it is a report (200) or a progress (202) answer."""
        if response.status_code not in (200, 202) or self.ttl <= 0:
            return
        kept = tuple((name, value) for name, value in response.headers.items() if name in ("retry-after", "location"))
        answer = _Answer(response.status_code, bytes(response.body), kept, time.monotonic() + self.ttl)
        with self._lock:
            if len(self._answers) >= self.max_entries:
                now = time.monotonic()
                self._answers = {key: value for key, value in self._answers.items() if value.expires >= now}
                if len(self._answers) >= self.max_entries:
                    self._answers.clear()
            self._answers[scan_id] = answer

    def forget(self, scan_id: str) -> None:
        """Drop the scan's answer (it was re-analyzed or deleted)."""
        with self._lock:
            self._answers.pop(scan_id, None)
