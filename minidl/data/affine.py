"""Affine resampling of one channels-last image: Keras 2's rotation, shift, shear and zoom.

The transform maps each output pixel ``(row, col)``, taken relative to the image centre, to the
input position it reads: ``rotation @ shift @ shear @ zoom`` in homogeneous coordinates, as in
Keras 2's ``apply_affine_transform`` (which centres on ``size / 2 + 0.5``; minidl uses the
exact centre ``(size - 1) / 2``). Out-of-image reads follow ``fill_mode``.

>>> import numpy as np
>>> image = np.arange(9.0).reshape(3, 3, 1)
>>> affine_transform(image, theta=90.0, order=0)[..., 0].tolist()
[[6.0, 3.0, 0.0], [7.0, 4.0, 1.0], [8.0, 5.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

FILL_MODES = ("nearest", "constant", "reflect", "wrap")


def transform_matrix(
    theta: float = 0.0,
    tx: float = 0.0,
    ty: float = 0.0,
    shear: float = 0.0,
    zx: float = 1.0,
    zy: float = 1.0,
) -> np.ndarray:
    """The 3x3 map from centred output ``(row, col, 1)`` to input coordinates.

    ``theta`` and ``shear`` are in degrees; ``tx``/``ty`` shift rows/columns in pixels;
    ``zx``/``zy`` zoom rows/columns (a zoom above 1 shows more of the image).
    """
    angle, shear_angle = np.deg2rad(theta), np.deg2rad(shear)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    shift = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], dtype=float)
    shearing = np.array(
        [[1, -np.sin(shear_angle), 0], [0, np.cos(shear_angle), 0], [0, 0, 1]], dtype=float
    )
    zoom = np.diag([zx, zy, 1.0])
    return rotation @ shift @ shearing @ zoom


def _fill_index(index: np.ndarray, size: int, fill_mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Map possibly out-of-range indices into ``[0, size)`` per ``fill_mode``."""
    valid = (index >= 0) & (index < size)
    if fill_mode == "wrap":
        return np.mod(index, size), valid
    if fill_mode == "reflect":
        period = np.mod(index, 2 * size)
        return np.where(period < size, period, 2 * size - 1 - period), valid
    return np.clip(index, 0, size - 1), valid


def affine_transform(
    x: np.ndarray,
    theta: float = 0.0,
    tx: float = 0.0,
    ty: float = 0.0,
    shear: float = 0.0,
    zx: float = 1.0,
    zy: float = 1.0,
    fill_mode: str = "nearest",
    cval: float = 0.0,
    order: int = 1,
) -> np.ndarray:
    """Resample one ``(height, width, channels)`` image through ``transform_matrix``.

    Args:
        order: 1 reads bilinearly; 0 reads the nearest pixel (keeps label masks' values).
        fill_mode: ``"nearest"``, ``"constant"`` (``cval``), ``"reflect"`` or ``"wrap"``.
    """
    if order not in (0, 1):
        raise ValueError(f"`order` must be 0 (nearest) or 1 (bilinear). Received: order={order!r}")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"`fill_mode` must be one of {FILL_MODES}. Received: {fill_mode!r}")
    matrix = transform_matrix(theta, tx, ty, shear, zx, zy)
    if np.allclose(matrix, np.eye(3)):
        return np.array(x, copy=True)
    height, width = x.shape[:2]
    center_r, center_c = (height - 1) / 2, (width - 1) / 2
    rows, cols = np.meshgrid(
        np.arange(height) - center_r, np.arange(width) - center_c, indexing="ij"
    )
    src_r = matrix[0, 0] * rows + matrix[0, 1] * cols + matrix[0, 2] + center_r
    src_c = matrix[1, 0] * rows + matrix[1, 1] * cols + matrix[1, 2] + center_c
    if order == 0:
        return _sample(
            x, np.rint(src_r).astype(np.int64), np.rint(src_c).astype(np.int64), fill_mode, cval
        )
    r0, c0 = np.floor(src_r).astype(np.int64), np.floor(src_c).astype(np.int64)
    wr, wc = (src_r - r0)[..., None], (src_c - c0)[..., None]
    out = np.zeros(src_r.shape + x.shape[2:], dtype=np.float64)
    for dr, weight_r in ((0, 1 - wr), (1, wr)):
        for dc, weight_c in ((0, 1 - wc), (1, wc)):
            out += weight_r * weight_c * _sample(x, r0 + dr, c0 + dc, fill_mode, cval)
    return out.astype(x.dtype)


def _sample(
    x: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill_mode: str, cval: float
) -> np.ndarray:
    height, width = x.shape[:2]
    rr, valid_r = _fill_index(rows, height, fill_mode)
    cc, valid_c = _fill_index(cols, width, fill_mode)
    values = x[rr, cc]
    if fill_mode == "constant":
        values = np.where((valid_r & valid_c)[..., None], values, cval).astype(x.dtype)
    return values
