"""load_dicom: slice order, Hounsfield units, geometry against the DICOM definition and
nibabel, NIfTI orientation, several series, bad files, and patient data kept out."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

from minidl.data.medical import (  # noqa: E402
    Volume,
    axial_affine,
    load_dicom,
    load_nifti,
    save_dicom_series,
    save_nifti,
)

RNG = np.random.default_rng(12)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def random_hu(shape):
    return RNG.integers(-1024, 2000, size=shape).astype("float32")


def oblique_affine(spacing=(3.0, 0.9, 0.6), origin=(12.0, -40.0, 80.0)):
    """A rotated (non-axial) grid: rows, columns and slices along tilted axes."""
    angle_a, angle_b = 0.4, -0.7
    rot_a = np.array(
        [[1, 0, 0], [0, np.cos(angle_a), -np.sin(angle_a)], [0, np.sin(angle_a), np.cos(angle_a)]]
    )
    rot_b = np.array(
        [[np.cos(angle_b), 0, np.sin(angle_b)], [0, 1, 0], [-np.sin(angle_b), 0, np.cos(angle_b)]]
    )
    affine = np.eye(4)
    affine[:3, :3] = rot_a @ rot_b @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def shuffle_files(paths):
    """Rename the files in a random order and number the instances backwards."""
    order = RNG.permutation(len(paths))
    renamed = []
    for new_index, path in zip(order, paths):
        ds = pydicom.dcmread(path)
        ds.InstanceNumber = len(paths) - int(ds.InstanceNumber) + 1
        target = path.with_name(f"IM{new_index:03d}")
        ds.save_as(target)
        path.unlink()
        renamed.append(target)
    return renamed


def world_from_dicom_tags(ds, row, col):
    """Patient position (RAS) of pixel (row, col) by DICOM PS3.3 C.7.6.2.1.1."""
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in ds.PixelSpacing)
    lps = ipp + iop[:3] * col_spacing * col + iop[3:] * row_spacing * row
    return LPS_TO_RAS @ lps


def test_series_is_sorted_by_position_not_by_file_name_or_instance_number(tmp_path):
    array = random_hu((6, 5, 7))
    volume = Volume(array, affine=axial_affine((2.5, 0.8, 0.7), (10.0, -20.0, 30.0)))
    shuffle_files(save_dicom_series(volume, tmp_path))
    loaded = load_dicom(tmp_path)
    assert loaded.array.dtype == np.float32 and loaded.shape == (6, 5, 7)
    np.testing.assert_array_equal(loaded.array, array)
    np.testing.assert_allclose(loaded.spacing, (2.5, 0.8, 0.7))
    np.testing.assert_allclose(loaded.affine, volume.affine, atol=1e-6)


def test_hounsfield_rescale_and_single_file_and_list_of_files(tmp_path):
    stored = RNG.integers(0, 3000, size=(1, 4, 5)).astype("uint16")
    (path,) = save_dicom_series(Volume(stored.astype("float32") - 1024.0), tmp_path)
    ds = pydicom.dcmread(path)
    ds.RescaleSlope, ds.RescaleIntercept = 2.0, -1000.0
    ds.PixelData = stored[0].astype("<u2").tobytes()
    ds.save_as(path)
    one = load_dicom(path)
    assert one.shape == (1, 4, 5)
    np.testing.assert_array_equal(one.array[0], stored[0] * 2.0 - 1000.0)
    assert one.meta["RescaleSlope"] == 2.0
    listed = load_dicom([path])
    np.testing.assert_array_equal(listed.array, one.array)


def test_oblique_geometry_matches_the_dicom_definition_and_nifti_export(tmp_path):
    array = random_hu((5, 6, 4))
    paths = shuffle_files(save_dicom_series(Volume(array, affine=oblique_affine()), tmp_path))
    loaded = load_dicom(tmp_path)
    by_pixels = {pydicom.dcmread(p).pixel_array.tobytes(): pydicom.dcmread(p) for p in paths}
    nifti_path = save_nifti(loaded, tmp_path / "ct.nii.gz")
    image = nibabel.load(nifti_path)
    data = np.asarray(image.dataobj)
    assert data.shape == (4, 6, 5)  # (columns, rows, slices), as nibabel users expect
    for k in range(loaded.shape[0]):
        ds = by_pixels[(loaded.array[k] + 1024).astype("<u2").tobytes()]
        for row, col in [(0, 0), (5, 0), (0, 3), (4, 2)]:
            want = world_from_dicom_tags(ds, row, col)
            np.testing.assert_allclose((loaded.affine @ [k, row, col, 1])[:3], want, atol=1e-4)
            np.testing.assert_allclose((image.affine @ [col, row, k, 1])[:3], want, atol=1e-3)
            assert data[col, row, k] == loaded.array[k, row, col]
    heights = [(loaded.affine @ [k, 0, 0, 1])[:3] for k in range(loaded.shape[0])]
    normal = LPS_TO_RAS @ np.cross(*np.split(np.array(ds.ImageOrientationPatient, float), 2))
    assert np.all(np.diff([h @ normal for h in heights]) > 0)  # ascending along the normal


def test_axial_series_has_nibabel_axis_codes_and_agrees_with_nibabel_wrapper(tmp_path):
    volume = Volume(random_hu((3, 4, 5)), affine=axial_affine((2.0, 0.5, 0.75), (5, 6, 7)))
    paths = save_dicom_series(volume, tmp_path)
    loaded = load_dicom(tmp_path)
    image = nibabel.load(save_nifti(loaded, tmp_path / "ct.nii"))
    assert nibabel.aff2axcodes(image.affine) == ("L", "P", "S")
    np.testing.assert_allclose(image.header.get_zooms(), (0.75, 0.5, 2.0), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

        wrapper = dicomwrappers.wrapper_from_file(str(paths[0]))
    # nibabel maps (row, col) of one slice to LPS; ours maps (slice, row, col) to RAS
    ras_from_wrapper = np.diag([-1.0, -1.0, 1.0, 1.0]) @ wrapper.affine
    np.testing.assert_allclose(loaded.affine[:3, 1], ras_from_wrapper[:3, 0], atol=1e-6)
    np.testing.assert_allclose(loaded.affine[:3, 2], ras_from_wrapper[:3, 1], atol=1e-6)
    np.testing.assert_allclose(loaded.affine[:3, 3], ras_from_wrapper[:3, 3], atol=1e-5)


def test_pydicom_ct_small_reads_as_one_hounsfield_slice():
    from pydicom.data import get_testdata_file

    volume = load_dicom(get_testdata_file("CT_small.dcm"))
    assert volume.shape == (1, 128, 128)
    assert volume.meta["Modality"] == "CT"
    assert -1100 < volume.array.min() < -800 and volume.array.max() > 500  # air and bone
    assert "PatientName" not in volume.meta and "PatientID" not in volume.meta


def test_several_series_are_refused_with_a_listing_unless_one_is_picked(tmp_path):
    first = Volume(random_hu((2, 3, 3)))
    second = Volume(random_hu((3, 3, 3)))
    save_dicom_series(first, tmp_path, series_uid="1.2.3.4", file_prefix="a")
    save_dicom_series(second, tmp_path, series_uid="1.2.3.5", series_number=2, file_prefix="b")
    with pytest.raises(ValueError, match=r"2 DICOM series.*1\.2\.3\.4.*2 files.*1\.2\.3\.5"):
        load_dicom(tmp_path)
    picked = load_dicom(tmp_path, series_uid="1.2.3.5")
    np.testing.assert_array_equal(picked.array, second.array)
    with pytest.raises(ValueError, match="No series with SeriesInstanceUID 9.9"):
        load_dicom(tmp_path, series_uid="9.9")


def test_a_folder_skips_non_dicom_files(tmp_path):
    volume = Volume(random_hu((2, 3, 3)))
    save_dicom_series(volume, tmp_path)
    (tmp_path / "README.txt").write_text("not an image")
    np.testing.assert_array_equal(load_dicom(tmp_path).array, volume.array)


def test_a_non_dicom_file_is_named(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(ValueError, match=r"notes\.dcm is not a DICOM file"):
        load_dicom(path)


def test_a_dicom_without_pixel_data_is_named(tmp_path):
    (path,) = save_dicom_series(Volume(random_hu((1, 2, 2))), tmp_path)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(ValueError, match=r"slice_0000\.dcm is a DICOM file without pixel data"):
        load_dicom([path])


def test_a_compressed_transfer_syntax_names_the_plugin_to_install(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    (path,) = save_dicom_series(Volume(random_hu((1, 4, 4))), tmp_path)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8 not really JPEG-LS \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(ValueError, match=r"slice_0000\.dcm.*JPEG-LS.*pip install pylibjpeg"):
        load_dicom(path)


def test_slices_of_different_sizes_are_named(tmp_path):
    save_dicom_series(Volume(random_hu((2, 3, 3))), tmp_path, series_uid="1.2.3", file_prefix="a")
    odd = Volume(random_hu((1, 4, 3)), affine=axial_affine((1, 1, 1), (0, 0, 5)))
    save_dicom_series(odd, tmp_path, series_uid="1.2.3", file_prefix="b")
    with pytest.raises(ValueError, match=r"b_0000\.dcm has slices of a different size.*4x3"):
        load_dicom(tmp_path)


def test_two_slices_at_one_position_are_refused(tmp_path):
    save_dicom_series(Volume(random_hu((2, 3, 3))), tmp_path, series_uid="1.2.3", file_prefix="a")
    save_dicom_series(Volume(random_hu((1, 3, 3))), tmp_path, series_uid="1.2.3", file_prefix="b")
    with pytest.raises(ValueError, match="same position along the slice normal"):
        load_dicom(tmp_path)


PHI = {
    "PatientName": "Doe^Jane",
    "PatientID": "PID-98765",
    "PatientBirthDate": "19610203",
    "InstitutionName": "St Example Hospital",
}


def _with_phi(paths):
    for path in paths:
        ds = pydicom.dcmread(path)
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.save_as(path)


def test_patient_data_stays_out_of_meta_output_logs_and_errors(tmp_path, caplog, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    _with_phi(save_dicom_series(Volume(random_hu((3, 3, 3))), good))
    _with_phi(
        save_dicom_series(Volume(random_hu((2, 3, 3))), bad, series_uid="1.9", file_prefix="a")
    )
    odd = Volume(random_hu((1, 4, 4)), affine=axial_affine((1, 1, 1), (0, 0, 9)))
    _with_phi(save_dicom_series(odd, bad, series_uid="1.9", file_prefix="b"))
    caplog.set_level(logging.DEBUG)
    volume = load_dicom(good)
    with pytest.raises(ValueError) as refused:
        load_dicom(bad)
    seen = " ".join(
        [repr(volume.meta), repr(volume), str(refused.value), caplog.text, *capsys.readouterr()]
    )
    for value in PHI.values():
        assert value not in seen and value.split("^")[0] not in seen
    with_phi = load_dicom(good, include_phi=True)
    assert with_phi.meta["PatientName"] == "Doe^Jane"
    assert with_phi.meta["PatientID"] == "PID-98765"
    assert with_phi.meta["InstitutionName"] == "St Example Hospital"


def test_nifti_export_of_a_dicom_series_round_trips(tmp_path):
    volume = Volume(random_hu((4, 5, 6)), affine=oblique_affine())
    save_dicom_series(volume, tmp_path / "dicom")
    ct = load_dicom(tmp_path / "dicom")
    again = load_nifti(save_nifti(ct, tmp_path / "ct.nii.gz"))
    np.testing.assert_array_equal(again.array, ct.array)
    np.testing.assert_allclose(again.affine, ct.affine, atol=1e-4)
    np.testing.assert_allclose(again.spacing, ct.spacing, rtol=1e-6)


def test_uneven_slice_gaps_are_logged_without_patient_data(tmp_path, caplog):
    paths = save_dicom_series(Volume(random_hu((4, 3, 3)), spacing=(2.0, 1.0, 1.0)), tmp_path)
    _with_phi(paths)
    ds = pydicom.dcmread(paths[3])
    ds.ImagePositionPatient = [0.0, 0.0, 9.0]  # gaps 2, 2, 5 mm
    ds.save_as(paths[3])
    caplog.set_level(logging.WARNING, logger="minidl")
    volume = load_dicom(tmp_path)
    assert "uneven slice spacing (2 to 5 mm)" in caplog.text
    assert "Doe" not in caplog.text
    np.testing.assert_allclose(volume.spacing[0], 3.0)  # the mean step, first to last
