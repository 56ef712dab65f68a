"""Keras 2's ImageDataGenerator: every option, fit statistics, flow(), subsets, masks, layouts."""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl.data.affine import transform_matrix
from minidl.layers import Dense, Flatten
from minidl.models import Sequential
from minidl.preprocessing.image import ImageDataGenerator, NumpyArrayIterator
from minidl.utils import to_categorical

from .naive_spatial import loop_nearest

RNG = np.random.default_rng(3)
IMAGE = RNG.uniform(10, 200, size=(6, 7, 2)).astype("float32")


@pytest.mark.parametrize(
    "params",
    [
        {"theta": 90.0},
        {"theta": 30.0, "tx": 1.0},
        {"shear": 20.0},
        {"zx": 0.7, "zy": 1.3, "ty": -2.0},
        {"theta": -15.0, "shear": 10.0, "zx": 1.2},
    ],
)
@pytest.mark.parametrize("fill_mode", ["nearest", "constant"])
def test_affine_parameters_match_a_loop_reference(params, fill_mode):
    gen = ImageDataGenerator(interpolation_order=0, fill_mode=fill_mode, cval=-5.0)
    got = gen.apply_transform(IMAGE, params)
    matrix = transform_matrix(**params)
    want = loop_nearest(IMAGE, matrix, fill_mode, -5.0)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, IMAGE)


def test_rotation_by_90_degrees_is_a_rot90():
    square = RNG.normal(size=(5, 5, 1)).astype("float32")
    got = ImageDataGenerator(interpolation_order=0).apply_transform(square, {"theta": 90.0})
    np.testing.assert_array_equal(got, np.rot90(square, k=-1))


def test_integer_shift_with_constant_fill_moves_rows():
    gen = ImageDataGenerator(fill_mode="constant", cval=0.0)
    got = gen.apply_transform(IMAGE, {"tx": 2.0})
    np.testing.assert_array_equal(got[:-2], IMAGE[2:])
    assert np.all(got[-2:] == 0)


def test_photometric_options():
    gen = ImageDataGenerator()
    shifted = gen.apply_transform(IMAGE, {"channel_shift_intensity": 30.0})
    np.testing.assert_allclose(shifted, np.clip(IMAGE + 30, IMAGE.min(), IMAGE.max()))
    bright = gen.apply_transform(IMAGE, {"brightness": 1.5})
    np.testing.assert_allclose(bright, np.clip(IMAGE * 1.5, 0, 255), rtol=1e-6)
    flipped = gen.apply_transform(IMAGE, {"flip_horizontal": True, "flip_vertical": True})
    np.testing.assert_array_equal(flipped, IMAGE[::-1, ::-1])
    drawn = ImageDataGenerator(brightness_range=(0.5, 0.6), channel_shift_range=5.0)
    params = drawn.get_random_transform(IMAGE.shape, seed=1)
    assert 0.5 <= params["brightness"] <= 0.6 and abs(params["channel_shift_intensity"]) <= 5
    draws = [
        ImageDataGenerator(width_shift_range=2).get_random_transform((4, 9, 1), s)["ty"]
        for s in range(60)
    ]
    assert set(draws) == {-1.0, 0.0, 1.0}  # Keras 2: int n gives whole pixels -(n-1)..n-1
    listed = {
        ImageDataGenerator(height_shift_range=[3]).get_random_transform((4, 9, 1), s)["tx"]
        for s in range(30)
    }
    assert listed == {-3.0, 3.0}
    fraction = ImageDataGenerator(height_shift_range=0.25).get_random_transform((8, 4, 1), 0)
    assert abs(fraction["tx"]) <= 2.0


def test_standardize_order_rescale_and_samplewise():
    gen = ImageDataGenerator(
        preprocessing_function=lambda x: x + 1.0,
        rescale=0.5,
        samplewise_center=True,
        samplewise_std_normalization=True,
    )
    out = gen.standardize(IMAGE)
    want = (IMAGE + 1.0) * 0.5
    want = want - want.mean()
    want = want / (want.std() + 1e-6)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    plain = ImageDataGenerator(preprocessing_function=lambda x: x + 1.0, rescale=0.5)
    np.testing.assert_allclose(plain.standardize(IMAGE), (IMAGE + 1.0) * 0.5)


def test_featurewise_statistics_from_fit():
    x = RNG.normal(loc=[3.0, -2.0], scale=[2.0, 0.5], size=(50, 4, 4, 2)).astype("float32")
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
    with pytest.warns(UserWarning, match="has not been fit"):
        gen.standardize(x[0])
    gen.fit(x)
    np.testing.assert_allclose(gen.mean.ravel(), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    out = np.stack([gen.standardize(image) for image in x])
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), [0, 0], atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), [1, 1], rtol=1e-4)


def test_zca_whitening_decorrelates():
    mixing = RNG.normal(size=(12, 12))
    x = (RNG.normal(size=(400, 12)) @ mixing).reshape(400, 2, 3, 2).astype("float32")
    with pytest.warns(UserWarning, match="featurewise_center"):
        gen = ImageDataGenerator(zca_whitening=True, zca_epsilon=1e-9)
    gen.fit(x)
    flat = np.stack([gen.standardize(image) for image in x]).reshape(400, -1).astype("float64")
    np.testing.assert_allclose(flat.T @ flat / 400, np.eye(12), atol=2e-3)
    assert (
        np.abs(np.cov(x.reshape(400, -1).T) - np.diag(np.diag(np.cov(x.reshape(400, -1).T)))).max()
        > 1
    )


def test_flow_batches_labels_seed_and_subset():
    x = np.arange(10, dtype="float32")[:, None, None, None] * np.ones((1, 3, 3, 1), "float32")
    y = np.arange(10)
    gen = ImageDataGenerator(rotation_range=20, validation_split=0.3)
    batches = gen.flow(x, y, batch_size=4, seed=5)
    assert isinstance(batches, NumpyArrayIterator) and len(batches) == 3
    bx, by = batches[0]
    assert bx.shape == (4, 3, 3, 1) and bx.dtype == np.float32
    np.testing.assert_allclose(bx[:, 1, 1, 0], by)  # the centre pixel keeps its label value
    again = gen.flow(x, y, batch_size=4, seed=5)[0]
    np.testing.assert_array_equal(again[0], bx)
    assert not np.array_equal(gen.flow(x, y, batch_size=4, seed=6)[0][0], bx)
    first_epoch = [next(batches)[1] for _ in range(3)]
    second_epoch = [next(batches)[1] for _ in range(3)]
    assert sorted(np.concatenate(first_epoch)) == list(range(10))
    assert not all(np.array_equal(a, b) for a, b in zip(first_epoch, second_epoch))
    val = gen.flow(x, y, batch_size=10, shuffle=False, subset="validation")[0][1]
    train = gen.flow(x, y, batch_size=10, shuffle=False, subset="training")[0][1]
    assert val.tolist() == [0, 1, 2] and train.tolist() == list(range(3, 10))
    weights = gen.flow(x, y, sample_weight=y * 2.0, batch_size=2, shuffle=False)[1]
    assert weights[2].tolist() == [4.0, 6.0]
    assert gen.flow(x, batch_size=3)[0].shape == (3, 3, 3, 1)
    with pytest.raises(ValueError, match="rank 4"):
        gen.flow(x[:, :, :, 0], y)
    with pytest.raises(ValueError, match="same length"):
        gen.flow(x, y[:3])
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator().flow(x, y, subset="training")


def test_masks_stay_binary_and_aligned_with_one_seed():
    image = RNG.uniform(0, 1, size=(8, 16, 16, 1)).astype("float32")
    mask = (image > 0.5).astype("float32")
    geometry = {
        "rotation_range": 40,
        "width_shift_range": 0.2,
        "shear_range": 15,
        "zoom_range": 0.3,
        "horizontal_flip": True,
        "fill_mode": "reflect",
    }
    images = ImageDataGenerator(**geometry, interpolation_order=0, brightness_range=(0.9, 1.1))
    masks = ImageDataGenerator(**geometry, interpolation_order=0)
    img_batch = next(images.flow(image, batch_size=8, seed=11))
    mask_batch = next(masks.flow(mask, batch_size=8, seed=11))
    assert set(np.unique(mask_batch)) <= {0.0, 1.0}
    plain_images = ImageDataGenerator(**geometry, interpolation_order=0)
    unbrightened = next(plain_images.flow(image, batch_size=8, seed=11))
    np.testing.assert_array_equal(mask_batch, (unbrightened > 0.5).astype("float32"))
    assert not np.array_equal(img_batch, unbrightened)  # brightness changed the image only
    bilinear = ImageDataGenerator(**geometry)
    smooth = next(bilinear.flow(mask, batch_size=8, seed=11))
    assert len(np.unique(smooth)) > 2  # why masks need interpolation_order=0


def test_channels_first_layout():
    x = RNG.uniform(size=(4, 5, 6, 3)).astype("float32")
    settings = {"rotation_range": 30, "zoom_range": 0.2, "channel_shift_range": 0.1}
    last = next(ImageDataGenerator(**settings).flow(x, batch_size=4, shuffle=False, seed=2))
    first_gen = ImageDataGenerator(**settings, data_format="channels_first")
    first = next(first_gen.flow(x.transpose(0, 3, 1, 2), batch_size=4, shuffle=False, seed=2))
    np.testing.assert_allclose(first, last.transpose(0, 3, 1, 2), rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="interpolation_order"):
        ImageDataGenerator(interpolation_order=3)
    with pytest.raises(ValueError, match="brightness_range"):
        ImageDataGenerator(brightness_range=1.5)
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator(validation_split=1.0)
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator().flow_from_directory(".", subset="training")


def test_flow_from_directory_subsets(tmp_path):
    from PIL import Image

    for label, count in (("cats", 5), ("dogs", 4)):
        (tmp_path / label).mkdir()
        for k in range(count):
            Image.new("RGB", (4, 4), (k * 40, 0, 0)).save(tmp_path / label / f"{k}.png")
    gen = ImageDataGenerator(validation_split=0.4, rescale=1 / 255)

    def files(subset):
        it = gen.flow_from_directory(
            str(tmp_path), target_size=(4, 4), batch_size=2, subset=subset, shuffle=False
        )
        return it.filenames, it.classes.tolist(), len(it)

    val_files, val_classes, val_batches = files("validation")
    train_files, train_classes, _ = files("training")
    assert val_files == ["cats/0.png", "cats/1.png", "dogs/0.png"]  # int(0.4 * n) per class
    assert val_classes == [0, 0, 1] and val_batches == 2
    assert sorted(train_files + val_files) == sorted(files(None)[0])
    assert not set(train_files) & set(val_files)
    with pytest.raises(ValueError, match="subset"):
        gen.flow_from_directory(str(tmp_path), subset="test")


def test_fit_on_flow_on_every_backend(backend):
    x = RNG.uniform(size=(24, 6, 6, 1)).astype("float32")
    y = to_categorical((x.mean(axis=(1, 2, 3)) > 0.5).astype(int), 2)
    gen = ImageDataGenerator(horizontal_flip=True, rotation_range=10, featurewise_center=True)
    gen.fit(x)
    minidl.set_random_seed(0)
    model = Sequential([Flatten(input_shape=(6, 6, 1)), Dense(2, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(gen.flow(x, y, batch_size=8, seed=1), epochs=2, verbose=0)
    assert len(history.history["accuracy"]) == 2
    history = model.fit(
        gen.flow(x, y, batch_size=8, seed=1), steps_per_epoch=3, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
