"""Randomised anatomy parameters of one phantom (sizes in mm, body coordinates; see geometry.py).

Ranges follow adult chest CT anatomy: thorax 280-380 mm wide, lungs 200-280 mm from dome to apex,
aorta 26-36 mm ascending and 20-28 mm descending, carina 80-110 mm below the apices, heart about
half the thoracic width (cardiothoracic ratio 0.42-0.5 when normal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class AnatomyParams:
    """Everything random about a phantom's body; derived positions are computed in body.py."""

    scale: float
    """Overall size factor (1 = a medium adult)."""
    body_half_width: float
    body_anterior: float
    body_posterior: float
    outline_harmonics: list[float]
    """Small radial modulation of the body outline: ``[a2, phase2, a3, phase3]``."""
    skin_mm: float
    fat_mm: float
    """Subcutaneous fat thickness (habitus)."""
    muscle_mm: float
    pectoral_mm: float
    rib_mm: float
    inspiration: float
    """0 = expiration, 1 = deep inspiration: taller, darker lungs, lower diaphragm."""
    lung_hu: float
    lung_height: float
    """Right dome to lung apex (mm)."""
    dome_left_drop: float
    recess_depth: float
    """How far the posterior costophrenic recesses lie below the domes."""
    mediastinum_x: float
    carina_below_apex: float
    heart_scale: float
    heart_center: list[float]
    heart_yaw_deg: float
    ascending_aorta_radius: float
    descending_aorta_radius: float
    pulmonary_trunk_radius: float
    trachea_radius: float
    spine_y: float
    vertebra_pitch: float
    vertebra_phase: float
    rib_pitch: float
    rib_drop: float
    rib_phase: float
    fissure_left_z: float
    fissure_right_z: float
    fissure_slope: float
    horizontal_fissure_z: float
    scan_above_apex: float
    scan_below_dome: float
    body_offset: list[float]
    """Body centre relative to the scanner isocentre (x, y) and table position (z), mm."""
    pericardial_effusion_mm: float = 0.0
    cardiomegaly: bool = False
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready parameters."""
        return asdict(self)

    @property
    def scan_top(self) -> float:
        """Body ``z`` of the top of the scanned range."""
        return self.lung_height + self.scan_above_apex

    @property
    def scan_bottom(self) -> float:
        """Body ``z`` of the bottom of the scanned range."""
        return -self.scan_below_dome

    @property
    def carina_z(self) -> float:
        """Body ``z`` of the carina."""
        return self.lung_height - self.carina_below_apex


def sample_anatomy(rng: np.random.Generator) -> AnatomyParams:
    """Draw one adult chest from ``rng``."""
    u = rng.uniform
    scale = float(np.clip(rng.normal(1.0, 0.05), 0.88, 1.12))
    insp = float(u(0.3, 1.0))
    habitus = float(u(0.0, 1.0))  # 0 = lean, 1 = obese
    lung_height = float((180.0 + 40.0 * insp) * scale)
    skin, fat = float(u(1.5, 2.5)), float(4.0 + 30.0 * habitus**1.3 + u(0.0, 4.0))
    muscle, pectoral, rib = float(u(7.0, 12.0) * scale), float(u(8.0, 20.0) * scale), float(u(7.0, 9.0))
    wall = skin + fat + muscle + rib
    # the skeleton sets the cavity; the outline is the cavity plus the (habitus-dependent) wall
    cavity_half_width = float(u(108.0, 124.0) * scale)
    cavity_anterior = float(u(62.0, 74.0) * scale * (0.97 + 0.06 * insp))
    cavity_posterior = float(u(74.0, 84.0) * scale)
    return AnatomyParams(
        scale=scale,
        body_half_width=cavity_half_width + wall * 1.25,
        body_anterior=cavity_anterior + wall + 0.5 * pectoral,
        body_posterior=cavity_posterior + wall + 0.5 * muscle,
        outline_harmonics=[float(u(-0.02, 0.02)), float(u(0, 2 * np.pi)),
                           float(u(-0.015, 0.015)), float(u(0, 2 * np.pi))],
        skin_mm=skin,
        fat_mm=fat,
        muscle_mm=muscle,
        pectoral_mm=pectoral,
        rib_mm=rib,
        inspiration=insp,
        lung_hu=float(-835.0 - 65.0 * insp + rng.normal(0.0, 8.0)),
        lung_height=lung_height,
        dome_left_drop=float(u(8.0, 22.0)),
        recess_depth=float(u(50.0, 75.0) * scale),
        mediastinum_x=float(u(0.0, 10.0)),
        carina_below_apex=float(u(85.0, 110.0) * scale),
        heart_scale=float(u(0.95, 1.08) * scale),
        heart_center=[float(u(22.0, 34.0)), float(-cavity_anterior + u(40.0, 48.0) * scale),
                      float(u(40.0, 55.0) * scale)],
        heart_yaw_deg=float(u(30.0, 50.0)),
        ascending_aorta_radius=float(u(13.0, 18.0)),
        descending_aorta_radius=float(u(10.0, 13.5)),
        pulmonary_trunk_radius=float(u(11.0, 14.0)),
        trachea_radius=float(u(7.5, 10.0)),
        spine_y=float(cavity_posterior - u(28.0, 34.0) * scale),
        vertebra_pitch=float(u(22.0, 26.0) * scale),
        vertebra_phase=float(u(0.0, 1.0)),
        rib_pitch=float(u(21.0, 25.0) * scale),
        rib_drop=float(u(100.0, 140.0) * scale),
        rib_phase=float(u(0.0, 1.0)),
        fissure_left_z=float(u(0.36, 0.46) * lung_height),
        fissure_right_z=float(u(0.32, 0.42) * lung_height),
        fissure_slope=float(u(0.9, 1.25)),
        horizontal_fissure_z=float(u(0.45, 0.55) * lung_height),
        scan_above_apex=float(u(10.0, 35.0)),
        scan_below_dome=float(u(45.0, 80.0)),
        body_offset=[float(u(-15.0, 15.0)), float(u(-10.0, 35.0)), float(u(-700.0, -150.0))],
    )
