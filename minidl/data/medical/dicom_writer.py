"""Write a ``Volume`` of Hounsfield units as a DICOM CT series (one file per slice).

Used by the tests and the lung-segmentation example to exercise the real DICOM reading path on
generated data. The files carry no patient data: the patient name and ID are "ANONYMOUS".
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from minidl.data.medical._deps import require
from minidl.data.medical.dicom import LPS_TO_RAS
from minidl.data.medical.volume import Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RESCALE_INTERCEPT = -1024.0


def save_dicom_series(
    volume: Volume,
    folder: str | os.PathLike,
    series_uid: str | None = None,
    series_number: int = 1,
    file_prefix: str = "slice",
) -> list[Path]:
    """Write ``volume`` (HU, any orientation) as one uncompressed CT file per slice.

    Values are rounded to whole HU and stored as unsigned 16-bit integers with
    ``RescaleIntercept`` -1024, so HU below -1024 are clipped. Positions and orientation come
    from ``volume.affine`` (see ``minidl.data.medical.volume``), so ``load_dicom`` reads back
    the same array, spacing and geometry.

    Args:
        volume: the image; ``array`` indexed ``[slice, row, col]``.
        folder: created if needed.
        series_uid: the SeriesInstanceUID (a new random one by default).
        series_number: the SeriesNumber tag.
        file_prefix: files are named ``<prefix>_<slice index>.dcm``.

    Returns:
        The paths written, in slice order.
    """
    pydicom = require("pydicom", "save_dicom_series")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.linalg.inv(LPS_TO_RAS) @ volume.affine
    dz, dy, dx = volume.spacing
    row_cosine, column_cosine = lps[:3, 2] / dx, lps[:3, 1] / dy
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    stored = np.clip(np.rint(volume.array.astype("float64") - RESCALE_INTERCEPT), 0, 65535)
    stored = stored.astype("<u2")
    paths = []
    for index in range(volume.shape[0]):
        instance_uid = generate_uid()
        file_meta = FileMetaDataset()
        file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        file_meta.MediaStorageSOPInstanceUID = instance_uid
        file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = file_meta
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = instance_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.PatientName = "ANONYMOUS"
        ds.PatientID = "ANONYMOUS"
        ds.Modality = "CT"
        ds.SeriesNumber = int(series_number)
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [float(v) for v in (lps @ [index, 0, 0, 1])[:3]]
        ds.ImageOrientationPatient = [float(v) for v in (*row_cosine, *column_cosine)]
        ds.PixelSpacing = [float(dy), float(dx)]
        ds.SliceThickness = float(dz)
        ds.Rows, ds.Columns = int(volume.shape[1]), int(volume.shape[2])
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = RESCALE_INTERCEPT
        ds.RescaleSlope = 1.0
        ds.RescaleType = "HU"
        ds.PixelData = stored[index].tobytes()
        path = folder / f"{file_prefix}_{index:04d}.dcm"
        ds.save_as(str(path), enforce_file_format=True)
        paths.append(path)
    del pydicom
    return paths
