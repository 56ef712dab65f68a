"""Read and write NIfTI-1 volumes (``.nii``, ``.nii.gz``) as ``Volume`` objects.

NIfTI stores voxels indexed ``[i, j, k]`` = ``[col, row, slice]`` with an affine to RAS+ mm; a
``Volume`` is indexed ``[slice, row, col]``. Reading transposes the array and reorders the
affine's columns; writing does the reverse, so the file shows nibabel users the orientation
they expect (an axial CT series read by ``load_dicom`` has axis codes L, P, S).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from minidl.data.medical._deps import require
from minidl.data.medical.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# (slice, row, col) <-> (col, row, slice): the same permutation both ways
AXES_SWAP = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype="float64")


def _check_suffix(path: Path) -> None:
    if not path.name.lower().endswith(NIFTI_SUFFIXES):
        raise ValueError(f"A NIfTI file name ends with .nii or .nii.gz. Received: {str(path)!r}")


def load_nifti(path: str | os.PathLike) -> Volume:
    """Read a 3-D NIfTI volume (``.nii`` or ``.nii.gz``) into a ``Volume``.

    The array keeps the file's scaled values (``scl_slope``/``scl_inter`` applied) as float32,
    indexed ``[slice, row, col]``; ``affine`` is the file's best affine (sform, else qform)
    with its columns reordered to that index order, in RAS+ mm. Trailing axes of length 1
    (a 4-D file with one time point) are dropped.

    Raises:
        ValueError: naming the file, when it is not NIfTI or does not hold a 3-D volume.
        ImportError: when nibabel is missing (the message gives the pip command).
    """
    nibabel = require("nibabel", "load_nifti")
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such NIfTI file: {path}")
    try:
        image = nibabel.load(str(path))
        data = np.asarray(image.dataobj)
    except Exception as error:  # noqa: BLE001 - nibabel raises many types for broken files
        raise ValueError(f"{path} is not a readable NIfTI file. Received: {error!r}") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise ValueError(
            f"{path} must hold a 3-D volume; load one time point or channel of a 4-D file "
            f"with nibabel. Received: shape {data.shape}"
        )
    if data.dtype.kind == "f" or data.dtype.kind not in "biu":
        data = data.astype("float32", copy=False)
    header = image.header
    meta: dict[str, Any] = {
        "source": "nifti",
        "path": str(path),
        "shape_on_disk": tuple(int(n) for n in data.shape),
    }
    zooms = header.get_zooms()
    meta["zooms"] = tuple(float(z) for z in zooms[:3])
    affine = np.asarray(image.affine, dtype="float64") @ AXES_SWAP
    return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), affine=affine, meta=meta)


def save_nifti(
    volume_or_array: Volume | np.ndarray,
    path: str | os.PathLike,
    affine: np.ndarray | None = None,
) -> Path:
    """Write a ``Volume`` (or a ``[slice, row, col]`` array) to ``.nii`` or ``.nii.gz``.

    The array keeps its dtype (float32 images, uint8 masks); the file's sform and qform hold
    the affine (``affine`` if given, else the Volume's, else ``axial_affine`` of 1 mm voxels)
    and the voxel sizes come from it, in mm. The file is written to a temporary name and then
    renamed, so a failed write leaves no partial file.

    Returns:
        The path written.
    """
    nibabel = require("nibabel", "save_nifti")
    path = Path(path)
    _check_suffix(path)
    if isinstance(volume_or_array, Volume):
        volume = volume_or_array
        if affine is not None:
            volume = Volume(volume.array, affine=affine, meta=volume.meta)
    else:
        volume = Volume(np.asarray(volume_or_array), affine=affine)
    data = volume.array
    if data.dtype == np.float64:
        data = data.astype("float32")
    if data.dtype == bool:
        data = data.astype("uint8")
    nifti_affine = volume.affine @ AXES_SWAP
    image = nibabel.Nifti1Image(np.ascontiguousarray(data.transpose(2, 1, 0)), nifti_affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(nifti_affine, code=1)
    image.set_sform(nifti_affine, code=1)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {path.parent} does not exist. "
            f"Received: path={str(path)!r}"
        )
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else ".nii"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{suffix}")
    try:
        nibabel.save(image, str(temporary))
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path
