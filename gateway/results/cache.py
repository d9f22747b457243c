"""Per-process memory of the decoded arrays behind the slice PNGs, and the HTTP validators of renders.

A viewer scrolls through a study one ``/slices/{k}.png`` at a time; decoding the run's volume and
anomaly map from object storage for each slice costs far more than drawing it. So each gateway
process keeps the arrays of the runs it drew last, keyed by run id, least recently used dropped
first, at most ``CTRIAGE_RENDER_CACHE_BYTES`` in all. A run's artifacts never change once it is
done, and a re-analysis is a new run with a new id, so an entry is never stale: the superseded
run's entry is simply no longer asked for and ages out.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, Response

T = TypeVar("T")

_CREATE = threading.Lock()


class RenderCache:
    """Values (arrays) by run id, bounded by their total size in bytes; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loads: dict[str, threading.Lock] = {}

    def get_or_load(self, run_id: str, load: Callable[[], T], size: Callable[[T], int]) -> T:
        """The value kept for ``run_id``, else ``load()`` (kept when it fits). Concurrent requests
        for one run wait for a single load: a viewer asks for many slices at once."""
        with self._lock:
            if (hit := self._hit(run_id)) is not None:
                return hit  # type: ignore[return-value]
            loading = self._loads.setdefault(run_id, threading.Lock())
        with loading:
            with self._lock:
                if (hit := self._hit(run_id)) is not None:
                    return hit  # type: ignore[return-value]
            try:
                value = load()
                with self._lock:
                    self._keep(run_id, value, size(value))
            finally:
                with self._lock:
                    self._loads.pop(run_id, None)
        return value

    def _hit(self, run_id: str) -> object | None:
        entry = self._entries.get(run_id)
        if entry is None:
            return None
        self._entries.move_to_end(run_id)
        return entry[0]

    def _keep(self, run_id: str, value: object, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return  # larger than the whole cache: served, not kept
        while self._entries and self.bytes + nbytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped
        self._entries[run_id] = (value, nbytes)
        self.bytes += nbytes


def render_cache(request: Request) -> RenderCache:
    """The app's cache, made on first use with the app's ``render_cache_bytes``."""
    state = request.app.state
    with _CREATE:
        if getattr(state, "render_cache", None) is None:
            state.render_cache = RenderCache(max_bytes=state.settings.render_cache_bytes)
    return state.render_cache


CACHE_CONTROL = "private, no-cache"
"""Renders hold patient data (``private``: no shared cache keeps them), and the same URL shows the
next run's result after a re-analysis (``no-cache``: revalidate each time; the ETag makes that a 304)."""


def entity_tag(*parts: object) -> str:
    """A strong ETag (RFC 9110 8.8.3) for a render fixed by ``parts`` (the run id and the render's parameters)."""
    return '"' + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 when the client's ``If-None-Match`` already names ``etag`` (RFC 9110 13.1.2), else None."""
    header = request.headers.get("if-none-match")
    if header is None:
        return None
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" in tags or etag in tags:
        return Response(status_code=304, headers=validators(etag))
    return None


def validators(etag: str) -> dict[str, str]:
    """The ETag and Cache-Control headers of a render."""
    return {"ETag": etag, "Cache-Control": CACHE_CONTROL}
