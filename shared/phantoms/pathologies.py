"""Ground-truth pathologies: where each type goes, how big and how dense it is, and its mask.

Three stages, because pathologies act at different points of the build:

* ``anatomy``: change the body before it is drawn (cardiomegaly, pericardial effusion);
* ``space``: take space from the lung before the vessel trees grow (pleural effusion, pneumothorax:
  the lung edge is displaced and no vessel crosses the fluid or air);
* ``lesion``: change HU of the drawn body (nodules, masses, opacities, emphysema, atelectasis,
  lymph nodes, bone lesions).

Every lesion's mask lies in the organ it names (lung lesions: that lobe, its vessels and bronchi);
sizes and densities follow radiology references (Fleischner glossary, Radiopaedia).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from shared.anatomy import label_of
from shared.phantoms.anatomy import AnatomyParams
from shared.phantoms.body import LUNG_LABELS, BodyModel
from shared.phantoms.mediastinum import Hilum
from shared.phantoms.paint import label_set

L_VESSELS, L_BRONCHI = label_of("lung_vessels"), label_of("bronchi")
L_PLEURA, L_HEART = label_of("pleural_cavity"), label_of("heart")
L_MEDIASTINUM = label_of("mediastinum")
L_VERTEBRAE, L_RIBS, L_STERNUM = label_of("vertebrae"), label_of("ribs"), label_of("sternum")
LUNG_ANY = label_set([*LUNG_LABELS, L_VESSELS, L_BRONCHI])
LOBES = label_set(LUNG_LABELS)
UPPER_LOBES = (label_of("lung_upper_lobe_left"), label_of("lung_upper_lobe_right"))
LOWER_LOBES = (label_of("lung_lower_lobe_left"), label_of("lung_lower_lobe_right"))
RIGHT_LOBES = tuple(label_of(n) for n in ("lung_upper_lobe_right", "lung_middle_lobe_right",
                                          "lung_lower_lobe_right"))


@dataclass
class Lesion:
    """One ground-truth finding."""

    type: str
    organ: str
    """Organ name of :mod:`shared.anatomy` the mask lies in."""
    size_mm: float
    """Largest diameter (mm); for cardiomegaly the heart's transverse diameter, for effusions the
    greatest thickness."""
    center_lps: tuple[float, float, float]
    center_ijk: tuple[float, float, float]
    volume_ml: float
    mask_id: int
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready lesion."""
        return asdict(self)


@dataclass
class PathologyContext:
    """What the pathology painters work on."""

    model: BodyModel
    labels: np.ndarray
    tissue: np.ndarray
    hilum: Hilum
    lesion_mask: np.ndarray
    rng: np.random.Generator
    hu: np.ndarray | None = None
    lut: np.ndarray | None = None
    lesions: list[Lesion] = field(default_factory=list)

    @property
    def grid(self):
        return self.model.grid

    def add(self, kind: str, organ: str, box: tuple, sel: np.ndarray, size_mm: float, **details) -> Lesion | None:
        """Record the lesion painted as ``sel`` over ``box`` (skipped when empty); voxels that an
        earlier lesion already owns stay that lesion's."""
        sel = sel & (self.lesion_mask[box] == 0)
        count = int(np.count_nonzero(sel))
        if count == 0:
            return None
        mask_id = len(self.lesions) + 1
        self.lesion_mask[box][sel] = mask_id
        k, j, i = np.nonzero(sel)
        ijk = np.array([i.mean() + box[2].start, j.mean() + box[1].start, k.mean() + box[0].start])
        lps = self.grid.affine[:3, :3] @ ijk + self.grid.affine[:3, 3]
        lesion = Lesion(
            type=kind, organ=organ, size_mm=round(float(size_mm), 2),
            center_lps=tuple(round(float(v), 2) for v in lps),
            center_ijk=tuple(round(float(v), 2) for v in ijk),
            volume_ml=round(count * self.grid.voxel_ml, 3), mask_id=mask_id, details=details,
        )
        self.lesions.append(lesion)
        return lesion


@dataclass(frozen=True)
class PathologyType:
    """A registered pathology: its stage and painter."""

    name: str
    stage: str
    paint: Callable[[PathologyContext, dict], None]
    prepare: Callable[[AnatomyParams, np.random.Generator], dict] | None = None


@dataclass
class PathologyPlan:
    """The pathologies of one phantom, each with the parameters drawn for it."""

    names: list[str]
    settings: list[dict]

    def apply_space(self, ctx: PathologyContext) -> None:
        """Run the ``space`` stage (before the lung trees)."""
        for name, settings in zip(self.names, self.settings):
            if REGISTRY[name].stage == "space":
                REGISTRY[name].paint(ctx, settings)


_REGISTRY_LIST: list[PathologyType] = []
REGISTRY: dict[str, PathologyType] = {}
ALIASES = {
    "nodule": "solid_nodule", "ggn": "ground_glass_nodule", "ggo": "ground_glass_opacity",
    "covid": "ground_glass_opacity", "effusion": "pleural_effusion", "bullae": "emphysema",
    "lymph_node": "lymphadenopathy", "lymphadenopathy": "lymphadenopathy", "lytic": "bone_lesion",
    "sclerotic": "bone_lesion", "bone": "bone_lesion", "ptx": "pneumothorax",
}


def pathology(name: str, stage: str, prepare=None):
    """Register a painter under ``name``."""
    def register(fn):
        entry = PathologyType(name, stage, fn, prepare)
        _REGISTRY_LIST.append(entry)
        REGISTRY[name] = entry
        return fn
    return register


def canonical(name: str) -> str:
    """Registered name of a pathology type or alias; ``ValueError`` for unknown ones."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    key = ALIASES.get(key, key)
    if key not in REGISTRY:
        raise ValueError(f"unknown pathology {name!r}; known: {', '.join(PATHOLOGY_TYPES)}")
    return key


def plan_pathologies(names: Sequence[str], anatomy: AnatomyParams, rng: np.random.Generator) -> PathologyPlan:
    """Validate ``names`` and run their ``anatomy`` stage on ``anatomy``."""
    canon = [canonical(n) for n in names]
    settings = []
    for name in canon:
        entry = REGISTRY[name]
        settings.append(entry.prepare(anatomy, rng) if entry.prepare else {})
    return PathologyPlan(names=canon, settings=settings)


def apply_pathologies(plan: PathologyPlan, ctx: PathologyContext) -> list[Lesion]:
    """Run the ``anatomy`` and ``lesion`` stages' painters; returns every lesion (space ones too)."""
    for name, settings in zip(plan.names, plan.settings):
        if REGISTRY[name].stage in ("anatomy", "lesion"):
            REGISTRY[name].paint(ctx, settings)
    return ctx.lesions


from shared.phantoms import lung_lesions, other_lesions  # noqa: E402,F401  (register the painters)

PATHOLOGY_TYPES: tuple[str, ...] = tuple(e.name for e in _REGISTRY_LIST)
