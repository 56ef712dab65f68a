"""Segment the lungs in chest CT with a 2-D U-Net: DICOM and NIfTI in, Dice out, masks back out.

Default run (no download): generate a seeded synthetic chest-CT set (a body with a fat layer, two
lungs at about -850 HU holding vessels, heart, spine and table, Gaussian noise; exact lung
masks), write each volume as a DICOM series and its mask as NIfTI in a temporary folder, read
them back with ``load_dicom`` / ``load_nifti``, train a small U-Net on lung-windowed slices,
report per-volume and mean Dice and IoU on held-out volumes, write the predicted masks as NIfTI
and a PNG figure of CT, ground truth and prediction. Then segment the real thoracic CT slice
that ships with pydicom (``CT_small.dcm``) and report its Dice against a threshold-and-morphology
reference, which is only a weak reference (no manual annotation exists for that slice).

``--data DIR`` trains on real data in one of two layouts:

* 2-D slices (Kaggle "Finding and Measuring Lungs in CT Data"): ``DIR/2d_images/*.tif`` and
  ``DIR/2d_masks/*.tif`` with matching file names (masks 0/255: pass ``--mask-threshold 127``);
  slices named ``ID_0001_Z_0042.tif`` are split by patient (``ID_0001``).
* NIfTI volumes (Medical Segmentation Decathlon): ``DIR/imagesTr/*.nii.gz`` and
  ``DIR/labelsTr/*.nii.gz`` with matching file names; labels above ``--mask-threshold``
  (default: labels must be 0/1) are foreground.

Slices are resized to ``--size`` pixels; a seeded fifth of the volumes (or patients) is held out.
Images are taken as Hounsfield units and put through the lung window (level -600, width 1500);
``--window LEVEL,WIDTH`` picks another window and ``--window none`` scales each volume's 0.5-99.5
percentile range onto [0, 1] instead, for images that are not in HU.

Run from the repository root (after ``pip install -e '.[medical]'``)::

    python examples/lung_segmentation.py
    MINIDL_BACKEND=tensorflow python examples/lung_segmentation.py --out /tmp/lungs
    python examples/lung_segmentation.py --data ~/data/finding-lungs --mask-threshold 127

The last line of the output reads ``held-out Dice <value>`` (mean per-volume Dice).
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import minidl
from minidl import backend as K
from minidl.optimizers import Adam

RESULTS = "pred_{name}.nii.gz"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a folder in the Kaggle or MSD layout (default: synthetic)")
    parser.add_argument("--backend", help="numpy, theano or tensorflow (default: MINIDL_BACKEND)")
    parser.add_argument("--out", help="folder for predicted masks and the figure (default: temp)")
    parser.add_argument("--volumes", type=int, default=8, help="synthetic training volumes (8)")
    parser.add_argument("--test-volumes", type=int, default=3, help="synthetic held-out (3)")
    parser.add_argument("--slices", type=int, default=16, help="slices per synthetic volume (16)")
    parser.add_argument("--size", type=int, default=64, help="slice height and width (64)")
    parser.add_argument("--depth", type=int, default=3, help="U-Net depth (3)")
    parser.add_argument("--filters", type=int, default=8, help="U-Net filters at level 1 (8)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (8)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch size (8)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's rate (3e-3)")
    parser.add_argument("--mask-threshold", type=float, help="masks above it are foreground")
    parser.add_argument(
        "--window", default="lung", help="a preset, LEVEL,WIDTH in HU, or none (default lung)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--verbose", type=int, default=2, help="fit verbosity (0, 1 or 2)")
    args = parser.parse_args(argv)
    try:
        normalise(np.zeros(1, dtype="float32"), args.window)
    except ValueError as err:
        parser.error(f"--window: {err}")
    if args.size % 2**args.depth:
        parser.error(
            f"--size must be divisible by 2**depth = {2**args.depth}. Received: {args.size}"
        )
    for name in ("volumes", "test_volumes", "slices", "epochs", "batch_size", "filters", "depth"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer.")
    return args


# ------------------------------------------------------------------------------------- data


def normalise(values: np.ndarray, spec: str) -> np.ndarray:
    """Map image values onto [0, 1]: a window preset, ``LEVEL,WIDTH`` in HU, or ``none``."""
    from minidl.data.medical import window

    if spec == "none":
        low, high = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
        scaled = (values - low) / max(float(high - low), 1e-6)
        return np.clip(scaled, 0.0, 1.0).astype("float32")
    if "," in spec:
        level, width = (float(part) for part in spec.split(","))
        return window(values, level, width)
    return window(values, spec)


def write_and_read_synthetic(args: argparse.Namespace, folder: Path) -> tuple[list, list]:
    """Generate volumes, write them as DICOM series + NIfTI masks, and read them back."""
    from minidl.data.medical import load_dicom, load_nifti, save_dicom_series, save_nifti
    from minidl.data.medical.synthetic import synthetic_chest_ct

    count = args.volumes + args.test_volumes
    spacing = (10.0, 350.0 / args.size, 350.0 / args.size)  # a 35 cm field of view
    pairs = synthetic_chest_ct(
        count, shape=(args.slices, args.size, args.size), seed=args.seed, spacing=spacing
    )
    cases = []
    for index, (ct, lungs) in enumerate(pairs):
        case = folder / f"case{index:02d}"
        save_dicom_series(ct, case / "ct")
        save_nifti(lungs, case / "lungs.nii.gz")
        cases.append(case)
    images, masks = [], []
    for case in cases:
        ct, lungs = load_dicom(case / "ct"), load_nifti(case / "lungs.nii.gz")
        if not np.allclose(ct.affine, lungs.affine, atol=1e-3):
            raise ValueError(f"{case}: the CT series and its mask disagree on geometry")
        images.append(ct)
        masks.append(lungs)
    print(f"Synthetic chest CT: {count} volumes of {ct.shape} voxels, spacing {ct.spacing} mm,")
    print(f"  written as DICOM series + NIfTI masks under {folder} and read back")
    return images, masks


def _resize_volume(image, mask, size: int, name: str, threshold: float | None):
    """Resize every slice of a volume (linear) and its mask (nearest) to size x size."""
    from minidl.data.medical import Volume, binary_mask, check_pair, resize_pair

    check_pair(image, mask, name, name)
    binary = binary_mask(mask, str(mask.meta.get("path", name)), threshold)
    planes = [resize_pair(i, m, (size, size)) for i, m in zip(image.array, binary)]
    affine = image.affine.copy()
    scale = np.array([1.0, image.shape[1] / size, image.shape[2] / size])
    affine[:3, :3] = affine[:3, :3] * scale[None, :]
    meta = {**image.meta, "name": name}
    return (
        Volume(np.stack([p[0] for p in planes]), affine=affine, meta=meta),
        Volume(np.stack([p[1] for p in planes]).astype("uint8"), affine=affine, meta=meta),
    )


def _paired_files(
    root: Path, image_folder: str, mask_folder: str, pattern: str, mask_kind: str
) -> list[tuple[Path, Path]]:
    """The files of ``root/image_folder`` matching ``pattern`` (hidden ones skipped), each with
    the file of the same name in ``root/mask_folder``, which must exist."""
    pairs = []
    for path in sorted((root / image_folder).glob(pattern)):
        if path.name.startswith("."):
            continue
        mask_path = root / mask_folder / path.name
        if not mask_path.is_file():
            raise ValueError(f"{path} has no {mask_kind}: expected {mask_path}")
        pairs.append((path, mask_path))
    return pairs


def read_real_data(args: argparse.Namespace) -> tuple[list, list, list[str]]:
    """Read the Kaggle (2d_images/2d_masks) or MSD (imagesTr/labelsTr) layout."""
    from minidl.data.medical import Volume, load_nifti

    root = Path(args.data).expanduser()
    images, masks, groups = [], [], []
    if (root / "2d_images").is_dir() and (root / "2d_masks").is_dir():
        from PIL import Image

        for path, mask_path in _paired_files(root, "2d_images", "2d_masks", "*.tif", "mask"):
            image = np.asarray(Image.open(path), dtype="float32")
            mask = np.asarray(Image.open(mask_path))
            if image.ndim != 2 or mask.ndim != 2:
                raise ValueError(
                    f"{path} and {mask_path} must be grey-scale slices. "
                    f"Received: shapes {image.shape} and {mask.shape}"
                )
            image_volume = Volume(image[None], meta={"path": str(path)})
            mask_volume = Volume(mask[None], meta={"path": str(mask_path)})
            pair = _resize_volume(
                image_volume, mask_volume, args.size, path.stem, args.mask_threshold
            )
            images.append(pair[0])
            masks.append(pair[1])
            match = re.match(r"(.+?)_Z_", path.stem)
            groups.append(match.group(1) if match else path.stem)
        layout = "Kaggle 2d_images/2d_masks"
    elif (root / "imagesTr").is_dir() and (root / "labelsTr").is_dir():
        pairs = _paired_files(root, "imagesTr", "labelsTr", "*.nii*", "label volume")
        for path, label_path in pairs:
            pair = _resize_volume(
                load_nifti(path),
                load_nifti(label_path),
                args.size,
                path.name.split(".")[0],
                args.mask_threshold,
            )
            images.append(pair[0])
            masks.append(pair[1])
            groups.append(path.name)
        layout = "MSD imagesTr/labelsTr"
    else:
        raise ValueError(
            f"{root} is in neither layout: expected 2d_images/ + 2d_masks/ (Kaggle) or "
            "imagesTr/ + labelsTr/ (Medical Segmentation Decathlon)"
        )
    if len(set(groups)) < 2:
        raise ValueError(f"{root} holds fewer than two volumes or patients; nothing to hold out")
    print(f"{layout}: {len(images)} volumes from {len(set(groups))} patients under {root}")
    return images, masks, groups


def split_held_out(groups: list[str], seed: int) -> tuple[list[int], list[int]]:
    """Indices for training and held-out: a seeded fifth of the groups (at least one) held out."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(names)[: max(1, len(names) // 5)].tolist())
    train = [i for i, g in enumerate(groups) if g not in held]
    test = [i for i, g in enumerate(groups) if g in held]
    return train, test


# ------------------------------------------------------------------------------ evaluation


def overlap(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two binary arrays (1.0 when both are empty)."""
    truth, predicted = truth.astype(bool), predicted.astype(bool)
    both, total = np.logical_and(truth, predicted).sum(), truth.sum() + predicted.sum()
    union = total - both
    dice = 1.0 if total == 0 else 2.0 * both / total
    return float(dice), float(1.0 if union == 0 else both / union)


def predict_volume(model, hu: np.ndarray, batch_size: int, spec: str) -> np.ndarray:
    """Binary lung mask (uint8) of a ``[slice, row, col]`` volume, normalised by ``spec``."""
    scores = model.predict(normalise(hu, spec)[..., None], batch_size=batch_size, verbose=0)
    return (scores[..., 0] > 0.5).astype("uint8")


def weak_reference(hu: np.ndarray) -> np.ndarray:
    """Threshold-and-morphology lung mask: HU < -400, opened, holes filled, small parts dropped."""
    from scipy import ndimage

    air = hu < -400
    air = ndimage.binary_opening(air, structure=np.ones((3, 3)))
    labels, count = ndimage.label(air)
    sizes = ndimage.sum(air, labels, range(1, count + 1))
    keep = np.isin(labels, 1 + np.flatnonzero(sizes >= 0.01 * hu.size))
    return ndimage.binary_fill_holes(keep).astype("uint8")


def segment_ct_small(model, args: argparse.Namespace, train_pixel_mm: float):
    """Segment pydicom's CT_small.dcm at the training pixel size; Dice vs the weak reference."""
    from pydicom.data import get_testdata_file

    from minidl.applications import UNet
    from minidl.data.medical import load_dicom, resize_pair

    ct = load_dicom(get_testdata_file("CT_small.dcm"))
    hu = ct.array[0]
    factor = 2**args.depth
    side = max(factor, int(round(hu.shape[0] * ct.spacing[1] / train_pixel_mm / factor)) * factor)
    small, _ = resize_pair(hu, None, (side, side))  # about the training pixel size
    net = UNet((side, side, 1), depth=args.depth, filters=args.filters, name="unet_ct_small")
    net.set_weights(model.get_weights())
    predicted_small = predict_volume(net, small[None], args.batch_size, args.window)[0]
    _, predicted = resize_pair(small, predicted_small, hu.shape)
    reference = weak_reference(hu)
    dice, iou = overlap(reference, predicted)
    print(
        f"CT_small.dcm (pydicom test data, {hu.shape[0]}x{hu.shape[1]} at "
        f"{ct.spacing[1]:.2f} mm, run at {side}x{side}): Dice {dice:.4f}, IoU {iou:.4f} against a "
        "WEAK reference (HU < -400, opened, holes filled; not a manual annotation)"
    )
    return hu, reference, predicted, dice


def save_figure(
    path: Path, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, str]], spec: str
) -> bool:
    """Write a PNG: for each row, CT (windowed by ``spec``), reference mask and prediction."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("Figure skipped: matplotlib is missing (pip install matplotlib)")
        return False
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for row, (title, hu, truth, predicted, truth_label) in zip(axes, rows):
        shown = normalise(hu, spec)
        for ax, label, mask, colour in (
            (row[0], f"{title}: CT", None, None),
            (row[1], truth_label, truth, (0.1, 0.9, 0.2)),
            (row[2], "prediction", predicted, (1.0, 0.3, 0.1)),
        ):
            ax.imshow(shown, cmap="gray", vmin=0, vmax=1)
            if mask is not None:
                overlay = np.zeros((*mask.shape, 4))
                overlay[..., :3] = colour
                overlay[..., 3] = 0.45 * (mask > 0)
                ax.imshow(overlay)
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    """Build the data, train the U-Net, evaluate, write masks and the figure."""
    args = parse_args(argv)
    try:
        if args.backend:
            K.set_backend(args.backend)
        K.current()  # a missing backend extra is reported here
        from minidl.applications import UNet
        from minidl.data.medical import (
            PairedAugmenter,
            SliceSequence,
            Volume,
            load_dicom,  # noqa: F401 - fail early when the [medical] extra is missing
            save_nifti,
        )
        from minidl.data.medical._deps import require

        require("pydicom", "lung_segmentation.py")
        require("nibabel", "lung_segmentation.py")
    except (ImportError, ValueError) as err:
        raise SystemExit(f"lung_segmentation.py: error: {err}") from None
    start = time.perf_counter()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="minidl_lungs_"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="minidl_ct_") as scratch:
        try:
            if args.data:
                images, masks, groups = read_real_data(args)
                train, test = split_held_out(groups, args.seed)
            else:
                images, masks = write_and_read_synthetic(args, Path(scratch))
                train = list(range(args.volumes))
                test = list(range(args.volumes, args.volumes + args.test_volumes))
        except (OSError, ValueError) as err:
            raise SystemExit(f"lung_segmentation.py: error: {err}") from None
    threshold = args.mask_threshold if args.data is None else None  # applied when reading
    minidl.set_random_seed(args.seed)
    augment = PairedAugmenter(rotation_range=10, shift_range=0.05, zoom_range=0.1, seed=args.seed)
    sequence = SliceSequence(
        [normalise(images[i].array, args.window) for i in train],
        [masks[i] for i in train],
        batch_size=args.batch_size,
        window=None,
        augment=augment,
        mask_threshold=threshold,
        seed=args.seed,
    )
    model = UNet((args.size, args.size, 1), depth=args.depth, filters=args.filters)
    model.compile(Adam(learning_rate=args.learning_rate), loss="dice_loss", metrics=["dice"])
    print(
        f"U-Net depth {args.depth}, {args.filters} filters, {model.count_params():,} parameters; "
        f"{len(sequence.index)} training slices of {args.size}x{args.size} from {len(train)} "
        f"volumes; backend {K.name()}, seed {args.seed}"
    )
    train_start = time.perf_counter()
    model.fit(sequence, epochs=args.epochs, verbose=args.verbose, shuffle=False)
    train_seconds = time.perf_counter() - train_start

    dices, ious, rows = [], [], []
    for number, index in enumerate(test):
        ct, truth = images[index], masks[index].array
        predicted = predict_volume(model, ct.array, args.batch_size, args.window)
        dice, iou = overlap(truth, predicted)
        dices.append(dice)
        ious.append(iou)
        name = str(ct.meta.get("name", f"case{index:02d}"))
        save_nifti(Volume(predicted, affine=ct.affine), out / RESULTS.format(name=name))
        print(f"  held-out {name}: Dice {dice:.4f}  IoU {iou:.4f}  ({ct.shape[0]} slices)")
        if number < 2:
            middle = int(np.argmax(truth.sum(axis=(1, 2))))
            rows.append((name, ct.array[middle], truth[middle], predicted[middle], "ground truth"))
    print(f"Predicted masks written as NIfTI to {out}")
    try:
        hu, reference, predicted, _ = segment_ct_small(
            model, args, train_pixel_mm=float(images[train[0]].spacing[1])
        )
        rows.append(("CT_small.dcm", hu, reference, predicted, "weak reference (threshold)"))
    except (ImportError, OSError, ValueError) as err:
        print(f"CT_small.dcm skipped: {err}")
    if save_figure(out / "lung_segmentation.png", rows, args.window):
        print(f"Figure: {out / 'lung_segmentation.png'}")
    print(f"Training {train_seconds:.1f} s, total {time.perf_counter() - start:.1f} s")
    print(f"mean held-out IoU {np.mean(ious):.4f} over {len(test)} volumes")
    print(f"held-out Dice {np.mean(dices):.4f}")


if __name__ == "__main__":
    main()
