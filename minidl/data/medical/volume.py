"""The ``Volume`` record shared by the DICOM and NIfTI loaders, HU windowing and resampling.

One coordinate convention holds everywhere in ``minidl.data.medical``:

* ``array`` is indexed ``[slice, row, col]``, i.e. ``(z, y, x)``; images are float32.
* ``affine`` (4x4) maps an *array* index ``(slice, row, col, 1)`` to the position of that
  voxel's centre in mm, in **RAS+** patient space (+x towards the patient's Right, +y
  Anterior, +z Superior): the world space of NIfTI and nibabel. DICOM's LPS positions are
  converted by negating x and y.
* ``spacing`` is ``(z, y, x)`` in mm: the lengths of the affine's first three columns.

NIfTI files hold the same data transposed, indexed ``[col, row, slice]`` (``i, j, k``);
``save_nifti`` and ``load_nifti`` transpose the array and reorder the affine's columns, so a
file opened with ``nibabel.load`` shows the orientation nibabel users expect.

>>> import numpy as np
>>> ct = Volume(np.full((2, 3, 4), -1000.0, dtype="float32"), spacing=(2.5, 0.7, 0.7))
>>> ct.shape, ct.spacing
((2, 3, 4), (2.5, 0.7, 0.7))
>>> ct.affine[:3, :3].tolist()  # axial: slices go Superior, rows Posterior, columns Left
[[0.0, 0.0, -0.7], [0.0, -0.7, 0.0], [2.5, 0.0, 0.0]]
>>> window(np.array([-1350.0, -600.0, 150.0]), "lung").tolist()
[0.0, 0.5, 1.0]
>>> resample(ct, (5.0, 1.4, 1.4)).shape
(1, 2, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from minidl.data.medical._deps import require

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "soft_tissue": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""Named ``(level, width)`` CT windows in Hounsfield units."""


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Return ``(z, y, x)`` voxel sizes: the lengths of the affine's first three columns."""
    lengths = np.linalg.norm(np.asarray(affine, dtype="float64")[:3, :3], axis=0)
    return tuple(float(v) for v in lengths)


def axial_affine(spacing: Sequence[float], origin: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """The affine of an axial stack as a standard DICOM CT series lays it out.

    Slices go towards the head (+z, Superior), rows towards the back (-y, Posterior) and
    columns towards the patient's left (-x, Left), with voxel sizes ``spacing`` ``(z, y, x)``
    and the first voxel's centre at ``origin`` (RAS+ mm).
    """
    dz, dy, dx = (float(s) for s in spacing)
    affine = np.zeros((4, 4))
    affine[2, 0], affine[1, 1], affine[0, 2] = dz, -dy, -dx
    affine[:3, 3] = [float(v) for v in origin]
    affine[3, 3] = 1.0
    return affine


@dataclass(eq=False)
class Volume:
    """A 3-D image (or mask) with its voxel spacing, affine and non-identifying metadata.

    Args:
        array: voxel values indexed ``[slice, row, col]`` (Hounsfield units for CT).
        spacing: ``(z, y, x)`` voxel size in mm; taken from ``affine`` when that is given.
        affine: 4x4 map from ``(slice, row, col, 1)`` to RAS+ mm (see the module docstring);
            when omitted, ``axial_affine(spacing)``: an axial stack, as a CT series is.
        meta: tags describing the acquisition; no patient-identifying tags unless the
            loader was asked for them with ``include_phi=True``.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] | None = None
    affine: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise ValueError(
                "A Volume holds a 3-D array indexed [slice, row, col]. "
                f"Received: array of shape {self.array.shape}"
            )
        if self.affine is None:
            spacing = (1.0, 1.0, 1.0) if self.spacing is None else self.spacing
            if len(spacing) != 3 or min(float(s) for s in spacing) <= 0:
                raise ValueError(
                    f"`spacing` must be three positive sizes (z, y, x) in mm. Received: {spacing}"
                )
            self.affine = axial_affine(spacing)
        self.affine = np.asarray(self.affine, dtype="float64")
        if self.affine.shape != (4, 4):
            raise ValueError(f"`affine` must be a 4x4 matrix. Received: shape {self.affine.shape}")
        self.spacing = spacing_from_affine(self.affine)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The array's shape ``(slices, rows, cols)``."""
        return tuple(self.array.shape)

    def __repr__(self) -> str:
        spacing = ", ".join(f"{s:.3g}" for s in self.spacing)
        return (
            f"Volume(shape={self.shape}, dtype={self.array.dtype}, spacing=({spacing}) mm, "
            f"meta keys={sorted(self.meta)})"
        )


def window(array: Any, level: float | str, width: float | None = None) -> np.ndarray:
    """Map values in ``[level - width/2, level + width/2]`` linearly onto ``[0, 1]`` (float32).

    Values below the window become 0, values above it 1. ``level`` may name a preset of
    ``WINDOW_PRESETS`` instead (``window(ct, "lung")`` is level -600, width 1500).

    Raises:
        ValueError: for an unknown preset name or a width that is not positive.
    """
    if isinstance(array, Volume):
        array = array.array
    if isinstance(level, str):
        if level not in WINDOW_PRESETS:
            raise ValueError(
                f"Unknown window preset {level!r}. Valid presets: "
                f"{', '.join(sorted(WINDOW_PRESETS))}. Received: level={level!r}"
            )
        if width is not None:
            raise ValueError(
                f"Give either a preset name or a level and a width. Received: level={level!r}, "
                f"width={width!r}"
            )
        level, width = WINDOW_PRESETS[level]
    if width is None or not float(width) > 0:
        raise ValueError(f"`width` must be a positive number of HU. Received: width={width!r}")
    low = float(level) - float(width) / 2.0
    scaled = (np.asarray(array, dtype="float32") - np.float32(low)) / np.float32(width)
    return np.clip(scaled, 0.0, 1.0).astype("float32", copy=False)


def resample(
    volume: Volume, spacing: Sequence[float | None], order: int = 1, cval: float | None = None
) -> Volume:
    """Resample ``volume`` onto a grid of the given ``(z, y, x)`` spacing in mm.

    The first voxel's centre stays where it is, the grid keeps the volume's orientation, and
    the new shape is ``round(shape * old_spacing / new_spacing)``. An axis given as None keeps
    its spacing. Use ``order=1`` (linear) for images and ``order=0`` (nearest) for masks, so
    that they keep their labels. Values outside the volume repeat the nearest edge voxel
    unless ``cval`` is given.

    Raises:
        ValueError: for a spacing that is not three positive sizes (or None).
    """
    ndimage = require("scipy.ndimage", "resample")
    if len(spacing) != 3:
        raise ValueError(f"`spacing` must have three entries (z, y, x). Received: {spacing}")
    old = np.asarray(volume.spacing, dtype="float64")
    new = np.array([o if s is None else float(s) for o, s in zip(old, spacing)])
    if np.any(new <= 0):
        raise ValueError(f"`spacing` must be positive sizes in mm. Received: {tuple(spacing)}")
    factors = new / old
    shape = tuple(max(1, int(round(n / f))) for n, f in zip(volume.shape, factors))
    mode = "nearest" if cval is None else "constant"
    source = volume.array
    if order > 0 and source.dtype.kind not in "f":
        source = source.astype("float32")
    resampled = ndimage.affine_transform(
        source,
        factors,
        output_shape=shape,
        order=order,
        mode=mode,
        cval=0.0 if cval is None else cval,
    )
    affine = volume.affine.copy()
    affine[:3, :3] = affine[:3, :3] * factors[None, :]
    return Volume(
        resampled.astype(volume.array.dtype, copy=False), affine=affine, meta=dict(volume.meta)
    )
