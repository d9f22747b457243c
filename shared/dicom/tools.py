"""dcmtk's command-line tools (storescu, storescp, echoscu), the independent DICOM peer of our tests and benchmarks.

pynetdicom 3 installs Python console scripts with the same names into the virtual environment's ``bin``;
with the environment activated those come first on ``PATH`` and take other arguments, so a plain
``shutil.which`` would run the wrong program.
"""

from __future__ import annotations

import os
from pathlib import Path


def dcmtk_tool(name: str) -> str | None:
    """Path of dcmtk's ``name`` on ``PATH``, skipping Python scripts of the same name; None if not installed."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder or ".") / name
        if candidate.is_file() and os.access(candidate, os.X_OK) and not _is_python_script(candidate):
            return str(candidate)
    return None


def dcmtk_program(name: str) -> str:
    """Path of dcmtk's ``name``, for callers that have already checked it is installed (see :func:`dcmtk_tool`)."""
    found = dcmtk_tool(name)
    if found is None:
        raise FileNotFoundError(f"dcmtk's {name} is not installed: `apt-get install dcmtk` or `make system-deps`")
    return found


def _is_python_script(path: Path) -> bool:
    with path.open("rb") as stream:
        first_line = stream.readline(256)
    return first_line.startswith(b"#!") and b"python" in first_line
