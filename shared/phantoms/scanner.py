"""Acquisition of a phantom: field of view, slice thickness, reconstruction kernel, noise, HU offset.

The reconstruction is modelled per slice: a Gaussian slice-sensitivity profile along ``z`` (FWHM =
slice thickness), the in-plane kernel (Gaussian blur, plus edge enhancement for lung kernels), noise
shaped by that same kernel (so sharp kernels give fine-grained, stronger noise, as on real
scanners), a small calibration offset, and rounding to the int16 stored values of a CT image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from shared.phantoms.tissues import CONTRAST_PHASES

# name -> (in-plane blur sigma in mm, edge-enhancement gain, relative noise)
KERNELS: dict[str, tuple[float, float, float]] = {
    "soft": (0.85, 0.0, 0.75),
    "standard": (0.6, 0.25, 1.0),
    "sharp": (0.42, 0.8, 1.8),
}
# how vendors name those kernels (DICOM ConvolutionKernel, (0018,1210))
VENDOR_KERNELS: dict[str, dict[str, str]] = {
    "SIEMENS": {"soft": "B30f", "standard": "B41f", "sharp": "B70f"},
    "GE MEDICAL SYSTEMS": {"soft": "SOFT", "standard": "STANDARD", "sharp": "LUNG"},
    "Philips": {"soft": "A", "standard": "B", "sharp": "L"},
    "TOSHIBA": {"soft": "FC08", "standard": "FC18", "sharp": "FC52"},
}
SLICE_THICKNESSES = (0.625, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0)


@dataclass
class ScannerParams:
    """How one phantom was 'acquired'."""

    manufacturer: str
    kernel: str
    convolution_kernel: str
    fov_mm: float
    pixel_mm: float
    slice_spacing_mm: float
    slice_thickness_mm: float
    noise_sd: float
    """Standard deviation (HU) of the noise in the final image."""
    hu_offset: float
    contrast_phase: str
    kvp: float

    def as_dict(self) -> dict:
        """JSON-ready parameters."""
        return asdict(self)


def sample_scanner(
    rng: np.random.Generator, *, body_width_mm: float, coverage_mm: float,
    shape: tuple[int, int, int] | None, contrast: str | None, slice_thickness_mm: float | None,
) -> tuple[ScannerParams, tuple[int, int, int]]:
    """Draw acquisition settings; returns them and the volume shape ``(nz, ny, nx)``."""
    manufacturer = str(rng.choice(list(VENDOR_KERNELS)))
    kernel = str(rng.choice(list(KERNELS), p=[0.35, 0.35, 0.3]))
    fov = float(np.clip(body_width_mm * rng.uniform(1.08, 1.3), 300.0, 500.0))
    phase = contrast or str(rng.choice(CONTRAST_PHASES, p=[0.4, 0.25, 0.35]))
    if phase not in CONTRAST_PHASES:
        raise ValueError(f"unknown contrast phase {phase!r}; expected one of {CONTRAST_PHASES}")
    if shape is None:
        thickness = slice_thickness_mm or float(rng.choice(SLICE_THICKNESSES))
        spacing = thickness * float(rng.choice([1.0, 1.0, 0.8])) if thickness < 5 else thickness
        nz = int(round(coverage_mm / spacing))
        shape = (nz, 512, 512)
    else:
        spacing = coverage_mm / shape[0]
        thickness = slice_thickness_mm or spacing
    pixel = fov / shape[2]
    _, _, rel_noise = KERNELS[kernel]
    noise = float(rng.uniform(10.0, 20.0) * rel_noise * np.sqrt(1.0 / max(thickness, 0.5)) * 1.6)
    params = ScannerParams(
        manufacturer=manufacturer,
        kernel=kernel,
        convolution_kernel=VENDOR_KERNELS[manufacturer][kernel],
        fov_mm=fov,
        pixel_mm=pixel,
        slice_spacing_mm=float(spacing),
        slice_thickness_mm=float(thickness),
        noise_sd=noise,
        hu_offset=float(rng.uniform(-10.0, 10.0)),
        contrast_phase=phase,
        kvp=float(rng.choice([100.0, 120.0, 120.0, 140.0])),
    )
    return params, tuple(int(v) for v in shape)  # type: ignore[return-value]


def acquire(hu: np.ndarray, params: ScannerParams, rng: np.random.Generator) -> np.ndarray:
    """The stored image: ``hu`` ``(nz, ny, nx)`` float32 blurred, noisy, offset, as int16.

    Noise comes from a small bank of kernel-shaped noise fields, shifted and flipped at random per
    slice (drawing and filtering fresh noise for every slice would cost half the phantom's time);
    the kernel blur runs only over the rows and columns that hold something denser than air.
    """
    nz, ny, nx = hu.shape
    out = np.empty(hu.shape, dtype=np.int16)
    taps = _z_profile(params.slice_thickness_mm, params.slice_spacing_mm)
    half = len(taps) // 2
    sigma_mm, gain, _ = KERNELS[params.kernel]
    sigma = sigma_mm / params.pixel_mm
    bank = _noise_bank(rng, (ny, nx), sigma, gain, params.noise_sd)
    shifts = rng.integers(0, min(ny, nx), size=(nz, 2))
    flips = rng.integers(0, 4, size=nz)
    rows, cols = _content_box(hu, margin=int(np.ceil(6 * sigma)) + 4)
    offset = np.float32(params.hu_offset)
    for k in range(nz):
        sl = np.zeros((ny, nx), dtype=np.float32)
        for t, w in enumerate(taps):
            kk = min(max(k + t - half, 0), nz - 1)
            sl += np.float32(w) * hu[kk]
        crop = sl[rows, cols]
        img = ndi.gaussian_filter(crop, sigma, truncate=3.0)
        if gain > 0:
            img += np.float32(gain) * (img - ndi.gaussian_filter(img, 2.0 * sigma, truncate=2.0))
        sl[rows, cols] = img
        noise = bank[k % len(bank)]
        if flips[k] & 1:
            noise = noise[::-1]
        if flips[k] & 2:
            noise = noise[:, ::-1]
        sl += np.roll(noise, tuple(shifts[k]), axis=(0, 1))
        sl += offset
        np.clip(sl, -1024.0, 3071.0, out=sl)
        np.rint(sl, out=sl)
        out[k] = sl
    return out


def _noise_bank(rng: np.random.Generator, shape: tuple[int, int], sigma: float, gain: float, sd: float,
                size: int = 6) -> np.ndarray:
    """``size`` fields of white noise shaped by the kernel (blur, edge enhancement), scaled to ``sd``."""
    bank = np.empty((size, *shape), dtype=np.float32)
    for n in range(size):
        white = rng.standard_normal(shape, dtype=np.float32)
        field = ndi.gaussian_filter(white, sigma, truncate=3.0, mode="wrap")
        if gain > 0:
            field += np.float32(gain) * (field - ndi.gaussian_filter(field, 2.0 * sigma, truncate=2.0, mode="wrap"))
        bank[n] = field
    bank *= np.float32(sd / max(float(bank.std()), 1e-6))
    return bank


def _content_box(hu: np.ndarray, *, margin: int) -> tuple[slice, slice]:
    """Rows and columns (with a margin) where any slice is denser than air."""
    dense = np.zeros(hu.shape[1:], dtype=bool)
    for k in range(0, hu.shape[0], max(1, hu.shape[0] // 16)):
        dense |= hu[k] > -900
    if not dense.any():
        return slice(0, hu.shape[1]), slice(0, hu.shape[2])
    j = np.nonzero(dense.any(axis=1))[0]
    i = np.nonzero(dense.any(axis=0))[0]
    return (slice(max(0, j[0] - margin), min(hu.shape[1], j[-1] + margin + 1)),
            slice(max(0, i[0] - margin), min(hu.shape[2], i[-1] + margin + 1)))


def _z_profile(thickness: float, spacing: float) -> np.ndarray:
    """Weights of neighbouring slices for a Gaussian slice profile of FWHM ``thickness``."""
    sigma = thickness / 2.355 / spacing
    if sigma < 0.35:
        return np.ones(1)
    return _gaussian_taps(sigma)


def _gaussian_taps(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian kernel (truncated at 3 sigma)."""
    n = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-n, n + 1)
    w = np.exp(-0.5 * (x / max(sigma, 1e-3)) ** 2)
    return w / w.sum()
