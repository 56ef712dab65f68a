"""examples/lung_segmentation.py with tiny settings: synthetic, Kaggle and MSD layouts, outputs,
bad data named; and the synthetic chest-CT generator."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from minidl.data.medical import Volume, load_nifti, save_nifti  # noqa: E402
from minidl.data.medical.synthetic import LUNG, VESSEL, synthetic_chest_ct  # noqa: E402

from .example_scripts import load_example  # noqa: E402

TINY = ["--size", "16", "--depth", "1", "--filters", "2", "--epochs", "1", "--batch-size", "4"]


def test_synthetic_set_is_seeded_and_its_masks_are_exact():
    first = synthetic_chest_ct(2, shape=(6, 32, 32), seed=3)
    again = synthetic_chest_ct(2, shape=(6, 32, 32), seed=3)
    other = synthetic_chest_ct(2, shape=(6, 32, 32), seed=4)
    np.testing.assert_array_equal(first[1][0].array, again[1][0].array)
    assert not np.array_equal(first[1][1].array, other[1][1].array)
    clean = synthetic_chest_ct(3, shape=(8, 48, 48), seed=1, noise_hu=0, blur_pixels=0)
    for ct, lungs in clean:
        inside = ct.array[lungs.array == 1]
        assert set(np.unique(inside)) <= {LUNG, VESSEL} and (inside == VESSEL).any()
        assert not (ct.array[lungs.array == 0] == LUNG).any()
        assert lungs.array[len(lungs.array) // 2].sum() > 0.1 * 48 * 48
        for edge in (-1000.0, 250.0):  # air outside the body and the table / spine
            assert (ct.array == edge).any()


def test_default_flow_on_tiny_synthetic_data_writes_masks_and_figure(tmp_path, capsys):
    example = load_example("lung_segmentation.py")
    out = tmp_path / "out"
    example.main(
        [*TINY, "--volumes", "2", "--test-volumes", "2", "--slices", "4", "--out", str(out)]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"held-out Dice \d\.\d{4}", lines[-1])
    assert any(line.startswith("CT_small.dcm") and "WEAK reference" in line for line in lines)
    assert sum("held-out case" in line for line in lines) == 2
    masks = sorted(out.glob("pred_case*.nii.gz"))
    assert [p.name for p in masks] == ["pred_case02.nii.gz", "pred_case03.nii.gz"]
    predicted = load_nifti(masks[0])
    assert predicted.shape == (4, 16, 16) and set(np.unique(predicted.array)) <= {0, 1}
    assert (out / "lung_segmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _kaggle_layout(root, mask_value=255, odd_shape=False):
    from PIL import Image

    (root / "2d_images").mkdir(parents=True)
    (root / "2d_masks").mkdir()
    rng = np.random.default_rng(0)
    for patient in range(5):
        for z in range(2):
            name = f"ID_{patient:04d}_Z_{z:04d}.tif"
            mask = np.zeros((24, 24), dtype="uint8")
            mask[5:15, 4:11] = mask_value
            image = np.where(mask > 0, -850, 40) + rng.normal(0, 20, mask.shape)
            Image.fromarray(image.astype("float32")).save(root / "2d_images" / name)
            shape = (24, 23) if odd_shape and patient == 3 else (24, 24)
            Image.fromarray(np.resize(mask, shape)).save(root / "2d_masks" / name)


def test_kaggle_layout_trains_and_holds_out_patients(tmp_path, capsys):
    example = load_example("lung_segmentation.py")
    _kaggle_layout(tmp_path / "kaggle")
    args = [*TINY, "--data", str(tmp_path / "kaggle"), "--mask-threshold", "127"]
    args += ["--window=-600,1500"]
    example.main([*args, "--out", str(tmp_path / "out")])
    output = capsys.readouterr().out
    assert "Kaggle 2d_images/2d_masks: 10 volumes from 5 patients" in output
    assert output.count("held-out ID_") == 2  # one patient of five, two slices
    assert len(list((tmp_path / "out").glob("pred_ID_*.nii.gz"))) == 2


def test_kaggle_masks_of_0_255_without_threshold_and_odd_shapes_are_named(tmp_path):
    example = load_example("lung_segmentation.py")
    _kaggle_layout(tmp_path / "a")
    with pytest.raises(SystemExit, match=r"ID_0000_Z_0000\.tif must hold only 0 and 1.*255"):
        example.main([*TINY, "--data", str(tmp_path / "a")])
    _kaggle_layout(tmp_path / "b", mask_value=1, odd_shape=True)
    with pytest.raises(SystemExit, match=r"ID_0003_Z_0000.*same shape.*\(1, 24, 23\)"):
        example.main([*TINY, "--data", str(tmp_path / "b")])
    _kaggle_layout(tmp_path / "c", mask_value=1)
    (tmp_path / "c" / "2d_masks" / "ID_0002_Z_0001.tif").unlink()
    with pytest.raises(SystemExit, match=r"ID_0002_Z_0001\.tif has no mask: expected .*2d_masks"):
        example.main([*TINY, "--data", str(tmp_path / "c")])


def test_msd_layout_reads_nifti_volume_pairs(tmp_path, capsys):
    example = load_example("lung_segmentation.py")
    root = tmp_path / "Task06_Lung"
    pairs = synthetic_chest_ct(5, shape=(3, 32, 32), seed=2)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for index, (ct, lungs) in enumerate(pairs):
        save_nifti(ct, root / "imagesTr" / f"lung_{index:03d}.nii.gz")
        save_nifti(lungs, root / "labelsTr" / f"lung_{index:03d}.nii.gz")
    save_nifti(Volume(np.zeros((3, 32, 32), "float32")), root / "imagesTr" / "._lung_000.nii.gz")
    example.main([*TINY, "--data", str(root), "--out", str(tmp_path / "out"), "--window", "none"])
    output = capsys.readouterr().out
    assert "MSD imagesTr/labelsTr: 5 volumes from 5 patients" in output
    assert output.count("held-out lung_") == 1
    assert output.strip().splitlines()[-1].startswith("held-out Dice ")


def test_unknown_layout_and_window_are_refused(tmp_path, capsys):
    example = load_example("lung_segmentation.py")
    with pytest.raises(SystemExit, match="neither layout.*2d_images.*imagesTr"):
        example.main([*TINY, "--data", str(tmp_path)])
    with pytest.raises(SystemExit):
        example.main([*TINY, "--window", "lungs"])
    assert "--window: Unknown window preset 'lungs'" in capsys.readouterr().err


def test_normalise_scales_non_hu_images_by_percentiles():
    example = load_example("lung_segmentation.py")
    values = np.linspace(0, 4000, 1001, dtype="float32")
    scaled = example.normalise(values, "none")
    assert scaled.min() == 0 and scaled.max() == 1 and abs(scaled[500] - 0.5) < 1e-3
    np.testing.assert_allclose(
        example.normalise(values, "40,400"), np.clip((values + 160) / 400, 0, 1)
    )
