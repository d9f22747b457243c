"""CT volumes of body parts other than the chest (head, upper abdomen without lungs, knee).

Deliberately simple (ellipsoids and cylinders with the right tissues and HU): they exist so the gate
can be shown that a real-looking CT of something else is refused, by its tags and by its anatomy.
"""

from __future__ import annotations

import numpy as np

from shared.phantoms.geometry import Grid

AIR, FAT, SOFT, MUSCLE, CSF, BRAIN = -1000.0, -100.0, 40.0, 50.0, 8.0, 35.0
CORTEX, TRABECULAR, MARROW = 1200.0, 250.0, -60.0


def _grid(shape: tuple[int, int, int], extent_z: float, fov: float) -> Grid:
    nz, ny, nx = shape
    d, dz = fov / nx, extent_z / nz
    return Grid(shape=shape, spacing=(d, d, dz), origin=(-(nx - 1) / 2 * d, -(ny - 1) / 2 * d, dz / 2))


def _coords(g: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return g.coords((slice(0, g.shape[0]), slice(0, g.shape[1]), slice(0, g.shape[2])))


def _inside(x, y, z, c, r) -> np.ndarray:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0


def _disc(x, y, c, r) -> np.ndarray:
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 <= 1.0


def head_volume(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, Grid]:
    """Skull (cortical tables), brain, ventricles, scalp; orbits and sinuses in the lowest slices."""
    g = _grid(shape, 170.0, 240.0)
    x, y, z = _coords(g)
    s = rng.uniform(0.92, 1.08)
    c = (0.0, 5.0, 60.0)
    hu = np.full(shape, AIR, dtype=np.float32)
    hu[_inside(x, y, z, c, (80 * s, 100 * s, 110 * s))] = SOFT
    hu[_inside(x, y, z, c, (76 * s, 96 * s, 106 * s))] = CORTEX
    hu[_inside(x, y, z, c, (73 * s, 93 * s, 103 * s))] = 600.0
    hu[_inside(x, y, z, c, (70 * s, 90 * s, 100 * s))] = CORTEX
    hu[_inside(x, y, z, c, (67 * s, 87 * s, 97 * s))] = BRAIN
    for side in (-1, 1):
        hu[_inside(x, y, z, (side * 8 * s, 0, 80), (5 * s, 22 * s, 12 * s))] = CSF
        hu[_inside(x, y, z, (side * 32 * s, -80 * s, 5), (14 * s, 13 * s, 13 * s))] = 15.0  # globes
        hu[_inside(x, y, z, (side * 18 * s, -70 * s, -15), (12 * s, 14 * s, 16 * s))] = AIR  # sinuses
    return hu, g


def abdomen_volume(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, Grid]:
    """Abdominal wall, liver, spleen, kidneys, spine, aorta and gas-filled bowel; no lung."""
    g = _grid(shape, 200.0, 420.0)
    x, y, z = _coords(g)
    s = rng.uniform(0.92, 1.08)
    hu = np.full(shape, AIR, dtype=np.float32)
    hu[_disc(x, y, (0, 0), (170 * s, 125 * s)) & (z > -1e9)] = SOFT
    hu[_disc(x, y, (0, 0), (165 * s, 120 * s)) & (z > -1e9)] = FAT
    hu[_disc(x, y, (0, 0), (145 * s, 100 * s)) & (z > -1e9)] = MUSCLE
    hu[_disc(x, y, (0, 0), (135 * s, 90 * s)) & (z > -1e9)] = FAT
    hu[_inside(x, y, z, (-60 * s, -10, 170), (75 * s, 70 * s, 110))] = 60.0  # liver
    hu[_inside(x, y, z, (85 * s, 35 * s, 160), (25 * s, 40 * s, 60))] = 50.0  # spleen
    for side in (-1, 1):
        hu[_inside(x, y, z, (side * 60 * s, 45 * s, 60), (25 * s, 30 * s, 55))] = 35.0  # kidneys
    hu[_disc(x, y, (0, 55 * s), (20 * s, 17 * s)) & (z > -1e9)] = TRABECULAR
    hu[_disc(x, y, (0, 82 * s), (9 * s, 9 * s)) & (z > -1e9)] = CSF
    hu[_disc(x, y, (12 * s, 25 * s), (10 * s, 10 * s)) & (z > -1e9)] = 45.0  # aorta
    for _ in range(8):
        c = (rng.uniform(-70, 70) * s, rng.uniform(-70, 10) * s, rng.uniform(0, 120))
        hu[_inside(x, y, z, c, (15, 12, 18))] = 20.0
        hu[_inside(x, y, z, c, (9, 6, 12))] = AIR
    return hu, g


def knee_volume(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, Grid]:
    """One knee: femoral condyles above, tibial plateau below a joint space, patella, muscle, fat."""
    g = _grid(shape, 140.0, 180.0)
    x, y, z = _coords(g)
    s = rng.uniform(0.9, 1.1)
    hu = np.full(shape, AIR, dtype=np.float32)
    full = z > -1e9
    hu[_disc(x, y, (0, 0), (60 * s, 58 * s)) & full] = SOFT
    hu[_disc(x, y, (0, 0), (58 * s, 56 * s)) & full] = FAT
    hu[_disc(x, y, (0, 8), (50 * s, 45 * s)) & full] = MUSCLE
    joint = 70.0
    femur = (z > joint + 3) & _disc(x, y, (0, 5), (38 * s, 30 * s))
    tibia = (z < joint - 3) & _disc(x, y, (0, 5), (36 * s, 28 * s))
    for bone, inner in ((femur, (34 * s, 26 * s)), (tibia, (32 * s, 24 * s))):
        hu[bone] = CORTEX
        hu[bone & _disc(x, y, (0, 5), inner)] = MARROW
    hu[_inside(x, y, z, (0, -45 * s, joint + 15), (20 * s, 9 * s, 22))] = CORTEX  # patella
    return hu, g
