"""NIfTI round trips, HU windows, resampling, paired augmentation, slice batches, mask checks,
and the [medical] extra staying optional."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

nibabel = pytest.importorskip("nibabel")

from minidl.data.medical import (  # noqa: E402
    WINDOW_PRESETS,
    PairedAugmenter,
    SliceSequence,
    Volume,
    axial_affine,
    binary_mask,
    load_dicom,
    load_nifti,
    resample,
    resize_pair,
    save_dicom_series,
    save_nifti,
    window,
)

RNG = np.random.default_rng(7)


def rotated_affine(spacing=(2.0, 0.8, 1.1), origin=(-3.0, 4.0, 50.0)):
    q, _ = np.linalg.qr(np.array([[0.9, 0.3, -0.2], [0.1, 0.8, 0.5], [-0.4, 0.2, 0.7]]))
    affine = np.eye(4)
    affine[:3, :3] = q @ np.diag(spacing)
    affine[:3, 3] = origin
    return affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_nifti_round_trip_keeps_values_affine_and_spacing(tmp_path, suffix, dtype):
    array = (
        RNG.normal(size=(3, 4, 5)) * 500 if dtype == "float32" else RNG.integers(0, 2, (3, 4, 5))
    )
    volume = Volume(array.astype(dtype), affine=rotated_affine())
    path = save_nifti(volume, tmp_path / f"vol{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"vol{suffix}"]  # no partial file
    again = load_nifti(path)
    assert again.array.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(again.array, volume.array)
    np.testing.assert_allclose(again.affine, volume.affine, atol=1e-5)
    np.testing.assert_allclose(again.spacing, (2.0, 0.8, 1.1), rtol=1e-6)
    np.testing.assert_allclose(nibabel.load(path).header.get_zooms(), (1.1, 0.8, 2.0), rtol=1e-6)


def test_load_nifti_reads_a_file_written_by_nibabel_in_its_own_axis_order(tmp_path):
    data = RNG.normal(size=(5, 4, 3)).astype("float32")  # nibabel order (i, j, k)
    affine = rotated_affine()
    nibabel.save(nibabel.Nifti1Image(data, affine), tmp_path / "x.nii.gz")
    volume = load_nifti(tmp_path / "x.nii.gz")
    assert volume.shape == (3, 4, 5)
    for i, j, k in [(0, 0, 0), (4, 1, 2), (2, 3, 1)]:
        assert volume.array[k, j, i] == data[i, j, k]
        np.testing.assert_allclose(volume.affine @ [k, j, i, 1], affine @ [i, j, k, 1], atol=1e-4)
    assert volume.meta["path"].endswith("x.nii.gz")


def test_save_nifti_of_a_plain_array_and_an_explicit_affine(tmp_path):
    array = np.arange(24, dtype="float32").reshape(2, 3, 4)
    plain = load_nifti(save_nifti(array, tmp_path / "a.nii"))
    np.testing.assert_allclose(plain.affine, axial_affine((1, 1, 1)))
    affine = rotated_affine()
    given = load_nifti(save_nifti(Volume(array), tmp_path / "b.nii", affine=affine))
    np.testing.assert_allclose(given.affine, affine, atol=1e-5)


def test_nifti_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"ends with \.nii or \.nii\.gz.*vol\.img"):
        save_nifti(np.zeros((1, 1, 1)), tmp_path / "vol.img")
    with pytest.raises(FileNotFoundError, match=r"missing does not exist.*x\.nii"):
        save_nifti(np.zeros((1, 1, 1)), tmp_path / "missing" / "x.nii")
    broken = tmp_path / "broken.nii"
    broken.write_bytes(b"\x00" * 400)
    with pytest.raises(ValueError, match=r"broken\.nii is not a readable NIfTI file"):
        load_nifti(broken)
    nibabel.save(
        nibabel.Nifti1Image(np.zeros((2, 2, 2, 3), "float32"), np.eye(4)), tmp_path / "t.nii"
    )
    with pytest.raises(ValueError, match=r"t\.nii must hold a 3-D volume.*\(2, 2, 2, 3\)"):
        load_nifti(tmp_path / "t.nii")


def test_window_presets_and_errors():
    assert WINDOW_PRESETS["lung"] == (-600.0, 1500.0)
    assert WINDOW_PRESETS["mediastinum"] == (40.0, 400.0)
    hu = np.array([-2000.0, -1350.0, -600.0, 0.0, 150.0, 3000.0])
    lung = window(hu, "lung")
    assert lung.dtype == np.float32
    np.testing.assert_allclose(lung, [0, 0, 0.5, 0.9, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(window(hu, 40, 400), np.clip((hu + 160) / 400, 0, 1), atol=1e-6)
    np.testing.assert_allclose(window(hu, "mediastinum"), window(hu, 40, 400))
    with pytest.raises(ValueError, match="Unknown window preset 'lungs'.*mediastinum"):
        window(hu, "lungs")
    with pytest.raises(ValueError, match="width.*positive.*Received: width=0"):
        window(hu, 40, 0)


def test_resample_keeps_world_positions_of_a_linear_field():
    affine = rotated_affine()
    gradient = np.array([0.3, -1.2, 0.7])  # HU per mm along RAS x, y, z

    def field(aff, shape):
        index = np.indices(shape).reshape(3, -1)
        world = aff[:3, :3] @ index + aff[:3, 3:4]
        return (gradient @ world).reshape(shape)

    volume = Volume(field(affine, (8, 9, 10)).astype("float32"), affine=affine)
    out = resample(volume, (1.0, 1.5, None))
    np.testing.assert_allclose(out.spacing, (1.0, 1.5, 1.1), rtol=1e-9)
    assert out.shape == (16, 5, 10)
    np.testing.assert_allclose(out.affine[:3, 3], affine[:3, 3])
    expected = field(out.affine, out.shape)
    inside = (slice(0, 15), slice(None), slice(None))  # away from the clamped far edge
    np.testing.assert_allclose(out.array[inside], expected[inside], atol=1e-3)


def test_resample_masks_with_nearest_stay_binary():
    mask = Volume((RNG.random((6, 7, 8)) > 0.5).astype("uint8"), spacing=(3, 1, 1))
    out = resample(mask, (1.0, 0.7, 0.7), order=0)
    assert out.array.dtype == np.uint8 and set(np.unique(out.array)) == {0, 1}
    # nearest neighbour copies labels: about the same share of ones as the input mask
    assert abs(out.array.mean() - mask.array.mean()) < 0.1
    with pytest.raises(ValueError, match="positive"):
        resample(mask, (1.0, 0.0, 1.0))


def test_paired_augmentation_moves_image_and_mask_together():
    mask = np.zeros((32, 32), dtype="uint8")
    mask[6:20, 9:25] = 1
    mask[22:28, 4:10] = 1
    image = mask.astype("float32")
    augment = PairedAugmenter(
        rotation_range=30, shift_range=0.1, zoom_range=0.2, horizontal_flip=True, seed=1
    )
    changed = 0
    for _ in range(5):
        moved_image, moved_mask = augment(image, mask)
        assert moved_mask.dtype == np.uint8 and set(np.unique(moved_mask)) <= {0, 1}
        assert moved_image.dtype == np.float32
        exact = (moved_image == 0) | (moved_image == 1)  # away from interpolated edges
        assert exact.mean() > 0.8
        np.testing.assert_array_equal(moved_image[exact], moved_mask[exact])
        changed += not np.array_equal(moved_mask, mask)
    assert changed >= 4
    same_again = PairedAugmenter(rotation_range=30, seed=4)(image, mask)
    np.testing.assert_array_equal(
        same_again[1], PairedAugmenter(rotation_range=30, seed=4)(image, mask)[1]
    )
    identity = PairedAugmenter()(image[..., None], mask[..., None])
    np.testing.assert_array_equal(identity[0][..., 0], image)
    with pytest.raises(ValueError, match=r"same height and width.*\(32, 32\).*\(31, 32\)"):
        augment(image, mask[:31])


def test_resize_pair_keeps_masks_binary():
    mask = np.zeros((10, 10), dtype="uint8")
    mask[2:6, 3:8] = 1
    image, resized = resize_pair(mask * 100.0, mask, (20, 15))
    assert image.shape == resized.shape == (20, 15) and set(np.unique(resized)) <= {0, 1}
    assert abs(resized.sum() - 20 * 15 / 100 * mask.sum()) <= 15


def test_slice_sequence_visits_every_slice_once_per_epoch():
    images = [RNG.normal(size=(n, 6, 6)).astype("float32") * 300 - 600 for n in (3, 4)]
    masks = [(RNG.random(a.shape) > 0.5).astype("uint8") for a in images]
    sequence = SliceSequence(images, masks, batch_size=3, seed=0)
    assert len(sequence) == 3
    seen = []
    for _epoch in range(2):
        batches = [sequence[i] for i in range(len(sequence))]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        assert x.shape == (7, 6, 6, 1) and y.shape == (7, 6, 6, 1) and x.dtype == np.float32
        assert 0 <= x.min() and x.max() <= 1
        windowed = np.concatenate([window(a, "lung") for a in images])
        order = [int(np.argmin(np.abs(windowed - s[..., 0]).sum(axis=(1, 2)))) for s in x]
        assert sorted(order) == list(range(7))
        np.testing.assert_array_equal(y[..., 0], np.concatenate(masks)[order])
        seen.append(order)
        sequence.on_epoch_end()
    assert seen[0] != seen[1]  # reshuffled
    x_all, y_all = sequence.arrays()
    np.testing.assert_array_equal(
        x_all[..., 0], np.concatenate([window(a, "lung") for a in images])
    )
    np.testing.assert_array_equal(y_all[..., 0], np.concatenate(masks))


def test_slice_sequence_errors_name_the_files(tmp_path):
    image = Volume(np.zeros((2, 4, 4), "float32"))
    save_nifti(image, tmp_path / "ct.nii.gz")
    save_nifti(np.zeros((2, 4, 5), "uint8"), tmp_path / "wrong.nii.gz")
    save_nifti(np.full((2, 4, 4), 255, "uint8"), tmp_path / "mask255.nii.gz")
    ct = load_nifti(tmp_path / "ct.nii.gz")
    with pytest.raises(ValueError, match=r"ct\.nii\.gz and its mask .*wrong\.nii\.gz.*\(2, 4, 5\)"):
        SliceSequence([ct], [load_nifti(tmp_path / "wrong.nii.gz")])
    with pytest.raises(ValueError, match=r"mask .*mask255\.nii\.gz must hold only 0 and 1.*255"):
        SliceSequence([ct], [load_nifti(tmp_path / "mask255.nii.gz")])
    thresholded = SliceSequence([ct], [load_nifti(tmp_path / "mask255.nii.gz")], mask_threshold=127)
    assert thresholded[0][1].min() == 1.0
    assert binary_mask(np.array([True, False])).tolist() == [1, 0]


def test_a_missing_extra_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(ImportError, match=r"pip install 'minidl\[medical\]'"):
        load_dicom(tmp_path)


def test_importing_minidl_and_the_medical_package_pulls_in_no_medical_dependency():
    code = (
        "import sys, minidl, minidl.data.medical\n"
        "heavy = [m for m in ('pydicom', 'nibabel', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@st.composite
def oriented_volumes(draw):
    """A Volume of any small shape with a random rotation, spacing and origin."""
    shape = tuple(draw(st.integers(1, 5)) for _ in range(3))
    quaternion = np.array([draw(st.floats(-1, 1)) for _ in range(4)])
    assume(np.linalg.norm(quaternion) > 0.1)
    w, x, y, z = quaternion / np.linalg.norm(quaternion)
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    spacing = [draw(st.floats(0.3, 5.0)) for _ in range(3)]
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = [draw(st.floats(-200, 200)) for _ in range(3)]
    values = RNG.integers(-1024, 3000, size=shape).astype("float32")
    return Volume(values, affine=affine)


@settings(max_examples=15, deadline=None)
@given(volume=oriented_volumes())
def test_nifti_and_dicom_round_trips_keep_every_voxel_in_place(volume):
    with tempfile.TemporaryDirectory() as folder:
        again = load_nifti(save_nifti(volume, Path(folder) / "v.nii.gz"))
        np.testing.assert_array_equal(again.array, volume.array)
        np.testing.assert_allclose(again.affine, volume.affine, atol=1e-3)
        save_dicom_series(volume, Path(folder) / "dicom")
        series = load_dicom(Path(folder) / "dicom")
    assert series.shape == volume.shape
    np.testing.assert_allclose(series.spacing, volume.spacing, rtol=1e-5)
    # the loader orders slices along the normal: maybe reversed, each voxel where it was
    index = np.indices(volume.shape).reshape(3, -1)
    world = (volume.affine[:3, :3] @ index + volume.affine[:3, 3:4]).T
    found = np.linalg.solve(series.affine[:3, :3], (world - series.affine[:3, 3]).T).T
    found = np.rint(found).astype(int)
    np.testing.assert_array_equal(series.array[tuple(found.T)], volume.array.reshape(-1))
