"""The image folder iterator: listing, order, seeded shuffling, labels, bad files, augmentation."""

from __future__ import annotations

import io
import logging
import os
import threading

import numpy as np
import pytest
from PIL import Image

from minidl.data import DirectoryIterator, ImageDataGenerator, flow_from_directory

# Each image is a constant colour whose red channel is its id, so a batch row tells which file
# it came from. Files are written out of name order to check sorting.
LAYOUT = {
    "dogs": ["d2.png", "d0.png", "d1.png", "sub/d3.png"],
    "cats": ["c1.png", "c0.png", "c2.png"],
}
SORTED = {
    "cats": ["c0.png", "c1.png", "c2.png"],
    "dogs": ["d0.png", "d1.png", "d2.png", os.path.join("sub", "d3.png")],
}


def _file_id(class_name: str, filename: str) -> int:
    base = 10 if class_name == "cats" else 20
    return base + int(os.path.basename(filename)[1])


def _write_image(path: str, red: int, size=(10, 8), fmt="PNG") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(red)
    pixels = np.empty((size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0] = red
    pixels[..., 1:] = rng.integers(0, 256, size=(size[1], size[0], 2))
    Image.fromarray(pixels).save(path, format=fmt)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("images"))
    for class_name, files in LAYOUT.items():
        for filename in files:
            _write_image(os.path.join(root, class_name, filename), _file_id(class_name, filename))
    with open(os.path.join(root, "cats", "notes.txt"), "w") as handle:
        handle.write("not an image and not listed")
    return root


def _ids(x: np.ndarray) -> list[int]:
    return [int(round(v)) for v in x[:, 0, 0, 0]]


def _epoch_ids(batches: DirectoryIterator) -> list[int]:
    ids = []
    for i in range(len(batches)):
        x = batches[i][0] if batches.class_mode is not None else batches[i]
        ids += _ids(x)
    return ids


def test_listing_follows_keras_conventions(image_root):
    batches = flow_from_directory(image_root, target_size=(8, 10), batch_size=3, shuffle=False)
    assert batches.class_indices == {"cats": 0, "dogs": 1}
    expected = [os.path.join(c, f) for c in ("cats", "dogs") for f in SORTED[c]]
    assert batches.filenames == expected
    assert batches.classes.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert batches.samples == 7 and len(batches) == 3 and batches.num_classes == 2
    assert batches.image_shape == (8, 10, 3)
    x, y = batches[0]
    assert x.shape == (3, 8, 10, 3) and x.dtype == np.float32 and y.dtype == np.float32
    assert batches[-1][0].shape[0] == 1  # the last batch holds the remainder
    assert _epoch_ids(batches) == [_file_id(c, f) for c in ("cats", "dogs") for f in SORTED[c]]
    with pytest.raises(IndexError, match="3 batches"):
        batches[3]


def test_given_classes_choose_folders_and_label_order(image_root):
    batches = flow_from_directory(
        image_root, target_size=(8, 10), classes=["dogs"], shuffle=False, batch_size=8
    )
    assert batches.class_indices == {"dogs": 0} and batches.samples == 4
    swapped = flow_from_directory(image_root, target_size=(8, 10), classes=["dogs", "cats"])
    assert swapped.class_indices == {"dogs": 0, "cats": 1}
    assert swapped.classes.tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="birds"):
        flow_from_directory(image_root, classes=["cats", "birds"])


def test_seeded_shuffling_is_reproducible_and_changes_per_epoch(image_root):
    def make(seed, prefetch=True):
        return flow_from_directory(
            image_root, target_size=(8, 10), batch_size=2, seed=seed, prefetch=prefetch
        )

    first, again, other = make(3), make(3, prefetch=False), make(4)
    epoch0 = _epoch_ids(first)
    assert sorted(epoch0) == sorted(_file_id(c, f) for c in SORTED for f in SORTED[c])
    assert _epoch_ids(again) == epoch0
    first.on_epoch_end()
    again.on_epoch_end()
    epoch1 = _epoch_ids(first)
    assert epoch1 == _epoch_ids(again) and sorted(epoch1) == sorted(epoch0)
    assert epoch1 != epoch0 and _epoch_ids(other) != epoch0
    first.close()
    again.close()


def test_labels_match_images_for_every_class_mode(image_root):
    common = dict(target_size=(8, 10), batch_size=7, seed=0)
    x, y = flow_from_directory(image_root, class_mode="categorical", **common)[0]
    truth = np.array([1 if i >= 20 else 0 for i in _ids(x)])
    np.testing.assert_array_equal(y, np.eye(2, dtype="float32")[truth])
    x, y = flow_from_directory(image_root, class_mode="binary", **common)[0]
    assert y.dtype == np.float32 and y.tolist() == [1.0 if i >= 20 else 0.0 for i in _ids(x)]
    x, y = flow_from_directory(image_root, class_mode="sparse", **common)[0]
    assert y.dtype.kind == "i" and y.tolist() == [1 if i >= 20 else 0 for i in _ids(x)]
    x, y = flow_from_directory(image_root, class_mode="input", **common)[0]
    np.testing.assert_array_equal(x, y)
    only_x = flow_from_directory(image_root, class_mode=None, **common)[0]
    assert isinstance(only_x, np.ndarray) and only_x.shape == (7, 8, 10, 3)
    with pytest.raises(ValueError, match="exactly 2 classes"):
        flow_from_directory(image_root, class_mode="binary", classes=["cats"])


def test_resizing_and_color_modes(image_root):
    gray = flow_from_directory(image_root, target_size=(5, 4), color_mode="grayscale")
    assert gray[0][0].shape == (7, 5, 4, 1)
    rgba = flow_from_directory(image_root, target_size=(3, 3), color_mode="rgba", batch_size=2)
    assert rgba[0][0].shape == (2, 3, 3, 4)
    for kwargs in (
        {"class_mode": "onehot"},
        {"color_mode": "cmyk"},
        {"batch_size": 0},
        {"target_size": (0, 4)},
        {"interpolation": "cubic"},
        {"on_error": "ignore"},
    ):
        with pytest.raises(ValueError, match="Received"):
            flow_from_directory(image_root, **kwargs)
    with pytest.raises(ValueError, match="existing folder"):
        flow_from_directory(os.path.join(image_root, "missing"))


def test_next_is_endless_and_reset_restarts(image_root):
    batches = flow_from_directory(image_root, target_size=(8, 10), batch_size=3, seed=1)
    seen = [_ids(next(batches)[0]) for _ in range(7)]  # more than two epochs of 3 batches
    assert [len(ids) for ids in seen] == [3, 3, 1, 3, 3, 1, 3]
    assert batches.epoch == 2
    batches.reset()
    assert _ids(batches.next()[0]) == seen[6]


def test_augmentation_changes_pixels_not_shapes_and_is_seeded(image_root):
    plain = flow_from_directory(image_root, target_size=(8, 10), batch_size=7, shuffle=False)
    augment = ImageDataGenerator(
        rescale=1 / 255,
        horizontal_flip=True,
        width_shift_range=0.3,
        height_shift_range=2,
        zoom_range=0.2,
        rotation_range=10,
    )

    def flow(seed):
        return augment.flow_from_directory(
            image_root, target_size=(8, 10), batch_size=7, shuffle=False, seed=seed
        )

    x_plain, y_plain = plain[0]
    x_aug, y_aug = flow(5)[0]
    assert x_aug.shape == x_plain.shape and x_aug.dtype == np.float32
    np.testing.assert_array_equal(y_aug, y_plain)
    assert not np.allclose(x_aug, x_plain / 255)
    assert x_aug.min() >= 0 and x_aug.max() <= 1
    np.testing.assert_array_equal(flow(5)[0][0], x_aug)
    assert not np.array_equal(flow(6)[0][0], x_aug)
    # Prefetching (a background thread) gives the same augmented, shuffled batches.
    streams = []
    for prefetch in (True, False):
        batches = augment.flow_from_directory(
            image_root, target_size=(8, 10), batch_size=3, seed=2, prefetch=prefetch
        )
        streams.append([next(batches)[0] for _ in range(5)])  # crosses an epoch boundary
        batches.close()
    for with_thread, without in zip(*streams):
        np.testing.assert_array_equal(with_thread, without)


def test_random_transform_geometry():
    image = np.arange(4 * 5, dtype="float32").reshape(4, 5, 1)
    flip = ImageDataGenerator(horizontal_flip=True)
    flipped = {tuple(flip.random_transform(image, seed=s)[0, :, 0]) for s in range(10)}
    assert flipped == {tuple(image[0, :, 0]), tuple(image[0, ::-1, 0])}
    # A whole-pixel shift with constant fill moves the image and fills the gap with cval.
    shift = ImageDataGenerator(width_shift_range=1.0, fill_mode="constant", cval=-1.0)
    for seed in range(20):
        moved = shift.random_transform(image, seed=seed)
        assert moved.shape == image.shape
        assert np.all((moved >= -1) & (moved <= image.max()))
    identity = ImageDataGenerator(zoom_range=(1.0, 1.0))
    np.testing.assert_array_equal(identity.random_transform(image, seed=0), image)
    for mode in ("nearest", "reflect", "wrap"):
        out = ImageDataGenerator(zoom_range=(1.5, 1.5), fill_mode=mode).random_transform(image)
        assert out.shape == image.shape and np.all(np.isfinite(out))
        assert out.min() >= image.min() and out.max() <= image.max()
    with pytest.raises(ValueError, match="zoom_range"):
        ImageDataGenerator(zoom_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="fill_mode"):
        ImageDataGenerator(fill_mode="mirror")


@pytest.fixture()
def bad_root(tmp_path) -> str:
    root = str(tmp_path)
    for name in ("a0.png", "a1.png"):
        _write_image(os.path.join(root, "a", name), 1)
    _write_image(os.path.join(root, "b", "b0.png"), 2)
    with open(os.path.join(root, "b", "garbage.jpg"), "wb") as handle:
        handle.write(b"this is not a JPEG")
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG")
    with open(os.path.join(root, "b", "truncated.jpg"), "wb") as handle:
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return root


def test_unreadable_files_are_skipped_with_a_warning_naming_them(bad_root, caplog):
    with caplog.at_level(logging.WARNING, logger="minidl"):
        batches = flow_from_directory(bad_root, target_size=(8, 10), batch_size=8, seed=0)
    garbage = os.path.join(bad_root, "b", "garbage.jpg")
    assert garbage in caplog.text
    assert batches.invalid_filenames == [os.path.join("b", "garbage.jpg")]
    assert batches.samples == 4  # the truncated JPEG has a valid header: found when loaded
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="minidl"):
        x, y = batches[0]  # shuffled training batches leave it out
    assert os.path.join(bad_root, "b", "truncated.jpg") in caplog.text
    assert x.shape == (3, 8, 10, 3) and sorted(y.tolist()) == [[0, 1], [1, 0], [1, 0]]


def test_unreadable_files_raise_naming_them(bad_root):
    with pytest.raises(ValueError, match="garbage.jpg"):
        flow_from_directory(bad_root, on_error="raise")
    os.remove(os.path.join(bad_root, "b", "garbage.jpg"))
    batches = flow_from_directory(bad_root, target_size=(8, 10), on_error="raise", shuffle=False)
    with pytest.raises(ValueError, match="truncated.jpg"):
        batches[0]


def test_prefetch_thread_stops_on_close(image_root):
    before = {t.ident for t in threading.enumerate()}
    with flow_from_directory(image_root, target_size=(8, 10), batch_size=2, seed=0) as batches:
        batches[0]
        workers = [t for t in threading.enumerate() if t.ident not in before]
        assert any(t.name.startswith("minidl-prefetch") for t in workers)
    assert batches._executor is None
    for thread in workers:
        thread.join(timeout=5)
        assert not thread.is_alive()
