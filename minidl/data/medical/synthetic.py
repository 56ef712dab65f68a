"""Seeded synthetic chest CT volumes with exact lung masks, for examples and tests.

Each volume is an axial stack: air outside a body (soft tissue with a fat layer), two lungs at
about -850 HU holding vessels, a heart between them, a spine behind and a patient table
below, blurred slightly (partial volume) and with Gaussian noise. The lung mask is 1 at every
pixel centre inside a lung (vessels included, as in clinical lung masks), else 0.

>>> import numpy as np
>>> ct, lungs = synthetic_chest_ct(1, shape=(4, 32, 32), seed=0)[0]
>>> ct.shape, lungs.array.dtype, sorted(set(lungs.array.ravel().tolist()))
((4, 32, 32), dtype('uint8'), [0, 1])
>>> clean, lungs = synthetic_chest_ct(1, shape=(4, 64, 64), noise_hu=0, blur_pixels=0)[0]
>>> values, counts = np.unique(clean.array[lungs.array == 1], return_counts=True)
>>> float(values[counts.argmax()])  # lung parenchyma; vessels (30 HU) are in the mask too
-850.0
"""

from __future__ import annotations

import numpy as np

from minidl.data.medical._deps import require
from minidl.data.medical.volume import Volume, axial_affine

AIR, FAT, SOFT_TISSUE, HEART, LUNG, VESSEL = -1000.0, -100.0, 40.0, 45.0, -850.0, 30.0
BONE, MARROW, TABLE = 900.0, 250.0, 250.0


def _ellipse(u: np.ndarray, v: np.ndarray, cu: float, cv: float, ru: float, rv: float, angle=0.0):
    """Boolean pixels inside an ellipse centred ``(cu, cv)`` with radii ``(ru, rv)``."""
    cos, sin = np.cos(angle), np.sin(angle)
    du, dv = u - cu, v - cv
    a, b = cos * du + sin * dv, -sin * du + cos * dv
    return (a / ru) ** 2 + (b / rv) ** 2 <= 1.0


def _one_volume(
    rng: np.random.Generator, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    slices, rows, cols = shape
    # u: patient right (-1) to left (+1) along columns; v: anterior (-1) to posterior (+1)
    v, u = np.meshgrid(
        (np.arange(rows) + 0.5) / rows * 2 - 1,
        (np.arange(cols) + 0.5) / cols * 2 - 1,
        indexing="ij",
    )
    body_u, body_v = rng.uniform(0.72, 0.86), rng.uniform(0.5, 0.6)
    body_cu, body_cv = rng.uniform(-0.05, 0.05), rng.uniform(-0.12, -0.04)
    tilt = rng.uniform(-0.08, 0.08)
    lungs = []
    for side in (-1.0, 1.0):
        lungs.append(
            {
                "cu": body_cu + side * body_u * rng.uniform(0.42, 0.5),
                "cv": body_cv + rng.uniform(-0.08, 0.02),
                "ru": body_u * rng.uniform(0.3, 0.36),
                "rv": body_v * rng.uniform(0.68, 0.8),
                "angle": tilt + side * rng.uniform(-0.15, 0.15),
                "z_centre": rng.uniform(0.45, 0.6),
                "z_half": rng.uniform(0.45, 0.6),
            }
        )
    vessels = [
        (
            rng.integers(0, 2),  # which lung
            rng.uniform(-0.6, 0.6, size=2),  # position in the lung at the lung's mid-height
            rng.uniform(-0.5, 0.5, size=2),  # drift per unit height
            rng.uniform(0.015, 0.04),  # radius
        )
        for _ in range(rng.integers(10, 18))
    ]
    image = np.full(shape, AIR, dtype="float64")
    mask = np.zeros(shape, dtype="uint8")
    for index in range(slices):
        z = (index + 0.5) / slices
        ct = np.full((rows, cols), AIR)
        body = _ellipse(u, v, body_cu, body_cv, body_u, body_v, tilt)
        inner = _ellipse(u, v, body_cu, body_cv, body_u - 0.06, body_v - 0.05, tilt)
        ct[body] = FAT
        ct[inner] = SOFT_TISSUE
        table_top = body_cv + body_v + 0.07
        ct[(v > table_top) & (v < table_top + 0.06) & (np.abs(u) < 0.95)] = TABLE
        lung_mask = np.zeros((rows, cols), dtype=bool)
        for which, lung in enumerate(lungs):
            height = 1.0 - ((z - lung["z_centre"]) / lung["z_half"]) ** 2
            if height <= 0:
                continue
            scale = np.sqrt(height)
            inside = _ellipse(
                u, v, lung["cu"], lung["cv"], lung["ru"] * scale, lung["rv"] * scale, lung["angle"]
            )
            inside &= inner
            ct[inside] = LUNG
            lung_mask |= inside
            for owner, position, drift, radius in vessels:
                if owner != which:
                    continue
                offset = position + drift * (z - lung["z_centre"])
                centre_u = lung["cu"] + offset[0] * lung["ru"] * scale
                centre_v = lung["cv"] + offset[1] * lung["rv"] * scale
                ct[_ellipse(u, v, centre_u, centre_v, radius, radius) & inside] = VESSEL
        heart = _ellipse(u, v, body_cu + 0.05, body_cv - 0.1, 0.2, 0.22, 0.3)
        ct[heart & inner & ~lung_mask] = HEART
        spine_v = body_cv + body_v * 0.62
        ct[_ellipse(u, v, body_cu, spine_v, 0.11, 0.1) & inner] = BONE
        ct[_ellipse(u, v, body_cu, spine_v, 0.075, 0.065) & inner] = MARROW
        image[index] = ct
        mask[index] = lung_mask
    return image, mask


def synthetic_chest_ct(
    count: int,
    shape: tuple[int, int, int] = (16, 96, 96),
    seed: int = 0,
    spacing: tuple[float, float, float] = (10.0, 3.6, 3.6),
    noise_hu: float = 25.0,
    blur_pixels: float = 0.6,
) -> list[tuple[Volume, Volume]]:
    """Generate ``count`` (CT, lung mask) pairs of ``shape`` ``(slices, rows, cols)``.

    Args:
        count: number of volumes; each has its own body size, lung shapes and vessels.
        shape: voxels per volume.
        seed: the same seed gives the same volumes.
        spacing: ``(z, y, x)`` voxel size in mm, stored in the volumes' axial affines.
        noise_hu: standard deviation of the Gaussian noise, in HU.
        blur_pixels: Gaussian blur (standard deviation in pixels) for the partial-volume
            effect at edges, applied within each slice before the noise.

    Returns:
        A list of ``(ct, mask)``: ct in HU (float32), mask uint8 0/1, sharing one affine.
    """
    ndimage = require("scipy.ndimage", "synthetic_chest_ct")
    rng = np.random.default_rng(seed)
    pairs = []
    for number in range(count):
        image, mask = _one_volume(rng, tuple(shape))
        if blur_pixels > 0:
            image = ndimage.gaussian_filter(image, sigma=(0, blur_pixels, blur_pixels))
        image += rng.normal(0.0, noise_hu, size=image.shape)
        affine = axial_affine(spacing, origin=(0.0, 0.0, number * 1000.0))
        meta = {"source": "synthetic", "seed": seed, "index": number}
        pairs.append(
            (
                Volume(image.astype("float32"), affine=affine, meta=dict(meta)),
                Volume(mask, affine=affine, meta=dict(meta)),
            )
        )
    return pairs
