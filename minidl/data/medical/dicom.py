"""Read a DICOM series (or one DICOM file) into a ``Volume`` of Hounsfield units.

Slices are ordered by their position along the slice normal (``ImagePositionPatient``
projected on the cross product of the ``ImageOrientationPatient`` cosines), never by file name
or ``InstanceNumber``. Patient-identifying tags are left out of ``Volume.meta`` unless
``include_phi=True``, and nothing here prints or logs tag values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minidl.data.medical._deps import require
from minidl.data.medical.volume import Volume

logger = logging.getLogger("minidl")

PathLike = str | os.PathLike

SAFE_TAGS = (
    "Modality",
    "SOPClassUID",
    "SeriesNumber",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "PatientPosition",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "KVP",
    "ConvolutionKernel",
    "PhotometricInterpretation",
    "BitsStored",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
)
"""Tags copied into ``Volume.meta``: they describe the acquisition, not the patient."""

PHI_TAGS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "OtherPatientIDs",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyDescription",
    "SeriesDescription",
    "ProtocolName",
)
"""Identifying tags, copied into ``Volume.meta`` only with ``include_phi=True``."""

PLUGIN_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.81": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg pylibjpeg-rle",
}
"""pip packages that let pydicom decode each compressed transfer syntax."""

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
POSITION_TOLERANCE_MM = 1e-3


def _plain(value: Any) -> Any:
    """A pydicom element value as plain Python (floats, ints, strings, lists of them)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _read_header(path: Path, pydicom: Any) -> Any:
    """Read one file's dataset (large values are read lazily) or raise naming the file."""
    try:
        return pydicom.dcmread(str(path), defer_size=4096)
    except pydicom.errors.InvalidDicomError as error:
        raise ValueError(
            f"{path} is not a DICOM file (no 'DICM' marker after the 128-byte preamble). "
            f"Received: {type(error).__name__}"
        ) from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"Could not read DICOM file {path}. Received: {error!r}") from None


def _list_files(path: PathLike | Sequence[PathLike]) -> tuple[list[Path], bool]:
    """The files to read, and whether they came from scanning a folder."""
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not files:
                raise ValueError(f"The folder {path} holds no files. Received: path={str(path)!r}")
            return files, True
        if not path.exists():
            raise FileNotFoundError(f"No such DICOM file or folder: {path}")
        return [path], False
    files = [Path(p) for p in path]
    if not files:
        raise ValueError("`path` is an empty list of DICOM files. Received: []")
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"No such DICOM file: {file}")
    return files, False


def _has_pixels(dataset: Any) -> bool:
    return any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _scan(files: list[Path], from_folder: bool, pydicom: Any) -> list[tuple[Path, Any]]:
    """Headers of the image files; in a folder, other files are skipped (and counted)."""
    images, skipped = [], []
    for file in files:
        try:
            dataset = _read_header(file, pydicom)
        except ValueError:
            if not from_folder:
                raise
            skipped.append(file.name)
            continue
        if not _has_pixels(dataset):
            if not from_folder:
                raise ValueError(
                    f"{file} is a DICOM file without pixel data (SOP class "
                    f"{getattr(dataset.get('SOPClassUID'), 'name', 'unknown')}); "
                    "expected an image. Received: no PixelData element"
                )
            skipped.append(file.name)
            continue
        images.append((file, dataset))
    if skipped:
        logger.debug("load_dicom skipped %d files that are not DICOM images", len(skipped))
    if not images:
        raise ValueError(
            f"No DICOM image in {files[0].parent}: {len(skipped)} files, none of them a DICOM "
            f"file with pixel data. Received: {', '.join(skipped[:5])}"
        )
    return images


def _pick_series(images: list[tuple[Path, Any]], series_uid: str | None) -> list[tuple[Path, Any]]:
    """The files of one series; several series need ``series_uid`` to choose."""
    groups: dict[str, list[tuple[Path, Any]]] = {}
    for item in images:
        groups.setdefault(str(item[1].get("SeriesInstanceUID", "")), []).append(item)
    if series_uid is not None:
        if str(series_uid) not in groups:
            raise ValueError(
                f"No series with SeriesInstanceUID {series_uid} among the files. Available: "
                f"{', '.join(sorted(groups))}. Received: series_uid={series_uid!r}"
            )
        return groups[str(series_uid)]
    if len(groups) > 1:
        listing = "; ".join(
            f"{uid or '(no SeriesInstanceUID)'} (series number "
            f"{items[0][1].get('SeriesNumber', '?')}, {items[0][1].get('Modality', '?')}, "
            f"{len(items)} files)"
            for uid, items in sorted(groups.items())
        )
        raise ValueError(
            f"The files hold {len(groups)} DICOM series; pass series_uid= to pick one. "
            f"Series: {listing}. Received: series_uid=None"
        )
    return next(iter(groups.values()))


def _float_list(dataset: Any, keyword: str, count: int, file: Path, default: Any) -> np.ndarray:
    value = dataset.get(keyword)
    if value is None:
        if default is None:
            raise ValueError(
                f"{file} lacks {keyword}, needed to place its slice in the volume. "
                f"Received: no {keyword} element"
            )
        return np.asarray(default, dtype="float64")
    values = np.asarray([float(v) for v in value], dtype="float64")
    if values.shape != (count,):
        raise ValueError(f"{file}: {keyword} must hold {count} numbers. Received: {list(values)}")
    return values


def _geometry(slices: list[tuple[Path, Any]]) -> tuple[list[tuple[Path, Any]], np.ndarray]:
    """Sort slices along the normal; return them and the LPS affine of ``(slice, row, col)``."""
    single = len(slices) == 1
    first_file, first = slices[0]
    orientation = _float_list(first, "ImageOrientationPatient", 6, first_file, [1, 0, 0, 0, 1, 0])
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    pixel_spacing = _float_list(first, "PixelSpacing", 2, first_file, [1.0, 1.0])
    size = (int(first.Rows), int(first.Columns))
    positions = []
    for file, dataset in slices:
        if (int(dataset.Rows), int(dataset.Columns)) != size:
            raise ValueError(
                f"{file} has slices of a different size from the rest of the series: expected "
                f"{size[0]}x{size[1]} (rows x columns) like {first_file.name}. "
                f"Received: {int(dataset.Rows)}x{int(dataset.Columns)}"
            )
        own = _float_list(dataset, "ImageOrientationPatient", 6, file, orientation)
        if not np.allclose(own, orientation, atol=1e-4):
            raise ValueError(
                f"{file} is oriented differently from {first_file.name}; a series needs one "
                f"ImageOrientationPatient. Received: {list(own)} and {list(orientation)}"
            )
        own_spacing = _float_list(dataset, "PixelSpacing", 2, file, pixel_spacing)
        if not np.allclose(own_spacing, pixel_spacing, rtol=1e-4):
            raise ValueError(
                f"{file} has PixelSpacing {list(own_spacing)}, unlike {first_file.name}: "
                f"expected {list(pixel_spacing)}. Received: {list(own_spacing)}"
            )
        default_position = [0.0, 0.0, 0.0] if single else None
        positions.append(_float_list(dataset, "ImagePositionPatient", 3, file, default_position))
    order = np.argsort([float(p @ normal) for p in positions], kind="stable")
    slices = [slices[i] for i in order]
    positions = [positions[i] for i in order]
    heights = np.array([float(p @ normal) for p in positions])
    gaps = np.diff(heights)
    if len(gaps) and gaps.min() < POSITION_TOLERANCE_MM:
        at = int(np.argmin(gaps))
        raise ValueError(
            f"{slices[at][0]} and {slices[at + 1][0]} lie at the same position along the slice "
            "normal; a series needs one slice per position (several acquisitions or echoes "
            f"share this series?). Received: positions {heights[at]:.4f} and "
            f"{heights[at + 1]:.4f} mm"
        )
    if len(gaps) > 1 and gaps.max() - gaps.min() > 0.01 * gaps.mean() + POSITION_TOLERANCE_MM:
        logger.warning(
            "load_dicom: uneven slice spacing (%.4g to %.4g mm); the affine uses the mean step",
            gaps.min(),
            gaps.max(),
        )
    if single:
        thickness = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        step = normal * float(thickness)
    else:
        step = (positions[-1] - positions[0]) / (len(positions) - 1)
    affine = np.eye(4)
    affine[:3, 0] = step
    affine[:3, 1] = column_cosine * pixel_spacing[0]
    affine[:3, 2] = row_cosine * pixel_spacing[1]
    affine[:3, 3] = positions[0]
    return slices, affine


def _pixels(file: Path, dataset: Any) -> np.ndarray:
    """One slice's stored values, or an error naming the file and the plugin it needs."""
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        raise ValueError(
            f"{file} is a multi-frame DICOM image; load_dicom reads single-frame slices. "
            f"Received: NumberOfFrames={int(dataset.NumberOfFrames)}"
        )
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise ValueError(
            f"{file} holds a colour image; load_dicom reads grey-scale (CT/MR) slices. "
            f"Received: SamplesPerPixel={int(dataset.SamplesPerPixel)}"
        )
    syntax = getattr(dataset, "file_meta", {}).get("TransferSyntaxUID")
    try:
        return np.asarray(dataset.pixel_array)
    except Exception as error:  # noqa: BLE001 - pydicom raises many types for undecodable data
        if syntax is not None and syntax.is_compressed:
            package = PLUGIN_PACKAGES.get(str(syntax), "pylibjpeg pylibjpeg-libjpeg")
            raise ValueError(
                f"{file} is compressed with {syntax.name} ({syntax}); pydicom needs a plugin to "
                f"decode it. Install one with: pip install {package}. "
                f"Received: {type(error).__name__}"
            ) from None
        raise ValueError(
            f"Could not decode the pixel data of {file}. Received: {error!r}"
        ) from None


def _meta(dataset: Any, count: int, include_phi: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"source": "dicom", "num_slices": count}
    for keyword in SAFE_TAGS + (PHI_TAGS if include_phi else ()):
        if keyword in dataset and dataset.get(keyword) not in (None, ""):
            meta[keyword] = _plain(dataset.get(keyword))
    syntax = getattr(dataset, "file_meta", {}).get("TransferSyntaxUID")
    if syntax is not None:
        meta["TransferSyntaxUID"] = str(syntax)
    return meta


def load_dicom(
    path: PathLike | Sequence[PathLike], series_uid: str | None = None, include_phi: bool = False
) -> Volume:
    """Read one DICOM file, a folder holding one series, or a list of files into a ``Volume``.

    Args:
        path: a file, a folder (its files are read; files that are not DICOM images, such as a
            DICOMDIR, are skipped), or a list of files of one series.
        series_uid: the ``SeriesInstanceUID`` to read when the files hold several series.
        include_phi: also copy patient-identifying tags (names, IDs, dates, UIDs,
            institution) into ``meta``. Off by default.

    Returns:
        A ``Volume``: ``array`` float32 Hounsfield units (``RescaleSlope`` and
        ``RescaleIntercept`` applied) shaped ``(slices, rows, cols)``, sorted by position
        along the slice normal; ``spacing`` ``(z, y, x)`` mm; ``affine`` mapping
        ``(slice, row, col, 1)`` to RAS+ mm (DICOM's LPS with x and y negated); ``meta``.

    Raises:
        ValueError: naming the file, for a file that is not DICOM, has no pixel data, needs
            a decoder plugin (the pip package is named), differs in size or orientation from
            the other slices, or shares its position with another slice; and for several
            series without ``series_uid``.
        ImportError: when pydicom is missing (the message gives the pip command).
    """
    pydicom = require("pydicom", "load_dicom")
    files, from_folder = _list_files(path)
    images = _pick_series(_scan(files, from_folder, pydicom), series_uid)
    images, affine_lps = _geometry(images)
    planes = []
    for file, dataset in images:
        stored = _pixels(file, dataset).astype("float32")
        slope = float(dataset.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(dataset.get("RescaleIntercept", 0.0) or 0.0)
        planes.append(stored * np.float32(slope) + np.float32(intercept))
    array = np.stack(planes).astype("float32", copy=False)
    meta = _meta(images[0][1], len(images), include_phi)
    meta["path"] = str(path) if isinstance(path, (str, os.PathLike)) else str(images[0][0])
    return Volume(array, affine=LPS_TO_RAS @ affine_lps, meta=meta)
