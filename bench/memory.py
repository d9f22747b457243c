"""Peak resident memory of a process, as benchmarks report it.

``VmHWM`` from ``/proc/<pid>/status`` (Linux): unlike ``ru_maxrss`` it is per process and not
inherited across ``exec``, so a child started for one measurement reports only its own peak.
"""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set of process ``pid`` (default: this one) in MB; NaN where /proc is missing."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
