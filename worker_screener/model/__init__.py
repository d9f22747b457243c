"""The learned screener (Goncharov et al., arXiv 2502.08321): a dense self-supervised descriptor network
and a density model of normal tissue, composed as small parts:

* :mod:`.preprocess` — body crop, resampling to the model grid, HU window; back to the volume grid.
* :mod:`.network` — the descriptor 3D UNet, ``(B, 1, Z, Y, X) -> (B, D, Z, Y, X)``.
* :mod:`.views` and :mod:`.vicreg` — training pairs of overlapping views and the dense VICReg loss.
* :mod:`.density` — Gaussian mixture of normal descriptors; per-voxel negative log-likelihood.
* :mod:`.condition` — the condition model: each voxel's local intensity given its block-masked context.
* :mod:`.synthetic` — the synthetic-anomaly segmenter: ``-log(1 - p)`` that a voxel is not normal.
* :mod:`.calibration` — NLL -> score in [0, 1], so that a threshold means the same across versions.
* :mod:`.checkpoint` — the shipped weights file, its manifest and checksum.
* :mod:`.inference` — sliding-window scoring of a whole volume.
"""
