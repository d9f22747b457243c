"""``python -m bench`` (``make bench``): every benchmark section, each printing its own table.

``python -m bench dicom api`` runs only the named sections; options after them go to each section's own
command line (``python -m bench dimse --rounds 5``).
``density`` (descriptor densities compared, about 17 min) runs only when named.
"""

from __future__ import annotations

import importlib
import sys
import time

SECTIONS = ("dicom", "phantoms", "organs", "gate", "api", "pipeline", "outputs", "screener", "localizer", "dimse")


def main(argv: list[str]) -> int:
    """Run the chosen sections (all by default); a failing section is reported, the rest still run."""
    first_option = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    chosen, options = argv[:first_option] or list(SECTIONS), argv[first_option:]
    failed = []
    for name in chosen:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        try:
            section = importlib.import_module(f"bench.bench_{name}")
            if options:
                section.main(options)
            else:  # sections without options of their own take no argument
                section.main()
        except Exception as error:  # a broken section must not hide the others' tables
            failed.append(name)
            print(f"section {name} failed: {type(error).__name__}: {error}", flush=True)
        print(f"--- {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
