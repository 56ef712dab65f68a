"""Medical images: DICOM and NIfTI volumes, CT windowing, resampling, slices for training.

Needs the ``[medical]`` extra (``pip install 'minidl[medical]'``: pydicom, nibabel, SciPy);
importing this package does not import them, and the functions that need one say how to
install it when it is missing. See ``minidl.data.medical.volume`` for the coordinate
convention (arrays ``[slice, row, col]``, affines to RAS+ mm).

>>> from minidl.data import medical
>>> medical.WINDOW_PRESETS["lung"], medical.WINDOW_PRESETS["mediastinum"]
((-600.0, 1500.0), (40.0, 400.0))
"""

from minidl.data.medical.dicom import PHI_TAGS, load_dicom
from minidl.data.medical.dicom_writer import save_dicom_series
from minidl.data.medical.nifti import load_nifti, save_nifti
from minidl.data.medical.slices import SliceSequence, binary_mask, check_pair
from minidl.data.medical.synthetic import synthetic_chest_ct
from minidl.data.medical.transforms import PairedAugmenter, resize_pair
from minidl.data.medical.volume import (
    WINDOW_PRESETS,
    Volume,
    axial_affine,
    resample,
    spacing_from_affine,
    window,
)

__all__ = [
    "PHI_TAGS",
    "WINDOW_PRESETS",
    "PairedAugmenter",
    "SliceSequence",
    "Volume",
    "axial_affine",
    "binary_mask",
    "check_pair",
    "load_dicom",
    "load_nifti",
    "resample",
    "resize_pair",
    "save_dicom_series",
    "save_nifti",
    "spacing_from_affine",
    "synthetic_chest_ct",
    "window",
]
