"""The gateway's memory of decoded runs behind the slice PNGs (gateway.results.cache.RenderCache):
bounded in bytes, least recently used run dropped first, one load per run however many ask at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from gateway.results.cache import RenderCache, entity_tag


def _loader(loads: list[str], run_id: str, nbytes: int):  # type: ignore[no-untyped-def]
    def load() -> bytes:
        loads.append(run_id)
        return bytes(nbytes)
    return load


def test_the_least_recently_used_run_goes_first_and_the_total_stays_bounded() -> None:
    cache, loads = RenderCache(max_bytes=300), []
    for run_id in ("a", "b", "c", "a", "d"):  # d needs room: b is the least recently used
        cache.get_or_load(run_id, _loader(loads, run_id, 100), len)
    assert loads == ["a", "b", "c", "d"] and cache.bytes == 300
    cache.get_or_load("b", _loader(loads, "b", 100), len)
    assert loads[-1] == "b" and cache.bytes == 300
    for run_id in ("a", "d", "b"):
        cache.get_or_load(run_id, _loader(loads, run_id, 100), len)
    assert loads[-1] == "b" and len(loads) == 5  # c went instead of a or d


def test_a_run_larger_than_the_cache_is_served_not_kept() -> None:
    cache, loads = RenderCache(max_bytes=100), []
    for _ in range(2):
        assert len(cache.get_or_load("big", _loader(loads, "big", 101), len)) == 101
    assert loads == ["big", "big"] and cache.bytes == 0
    assert RenderCache(max_bytes=0).get_or_load("x", _loader(loads, "x", 1), len) == b"\0"


def test_concurrent_requests_for_one_run_share_one_load() -> None:
    cache, loads, release = RenderCache(max_bytes=1000), [], threading.Event()

    def slow_load() -> bytes:
        loads.append("a")
        release.wait(5)
        return bytes(10)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [pool.submit(cache.get_or_load, "a", slow_load, len) for _ in range(4)]
        release.set()
        assert [answer.result() for answer in answers] == [bytes(10)] * 4
    assert loads == ["a"]


def test_a_failed_load_is_not_remembered() -> None:
    cache, loads = RenderCache(max_bytes=1000), []

    def failing() -> bytes:
        loads.append("x")
        raise OSError("storage down")

    for _ in range(2):
        try:
            cache.get_or_load("x", failing, len)
        except OSError:
            pass
    assert loads == ["x", "x"] and cache.bytes == 0


def test_entity_tags_differ_by_run_and_render() -> None:
    tags = {entity_tag("slice", run, k, "lung", True) for run in ("r1", "r2") for k in (0, 1)}
    assert len(tags) == 4 and all(tag.startswith('"') and tag.endswith('"') for tag in tags)
