"""``python -m bench`` (``make bench``): every benchmark section, each printing its own table.

``python -m bench dicom api`` runs only the named sections.
"""

from __future__ import annotations

import importlib
import sys
import time

SECTIONS = ("dicom", "phantoms", "organs", "gate", "api", "pipeline", "outputs", "screener", "localizer", "dimse")


def main(argv: list[str]) -> int:
    """Run the chosen sections (all by default); a failing section is reported, the rest still run."""
    chosen = argv or list(SECTIONS)
    failed = []
    for name in chosen:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").main()
        except Exception as error:  # a broken section must not hide the others' tables
            failed.append(name)
            print(f"section {name} failed: {type(error).__name__}: {error}", flush=True)
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
