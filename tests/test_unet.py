"""minidl.applications.UNet: structure and names, argument errors, training, backends agree,
saving."""

from __future__ import annotations

import numpy as np
import pytest

import minidl
from minidl import backend as K
from minidl.applications import UNet
from minidl.models import load_model


def expected_parameters(channels, classes, depth, filters, batch_norm, upsampling):
    """Count by hand: conv 3x3 (bias only without BN), BN 4 per channel, up-convs, 1x1 head."""

    def block(cin, cout):
        conv = 9 * cin * cout + (0 if batch_norm else cout)
        return (
            conv
            + (4 * cout if batch_norm else 0)
            + 9 * cout * cout
            + (0 if batch_norm else cout)
            + (4 * cout if batch_norm else 0)
        )

    total, cin = 0, channels
    for level in range(depth):
        total += block(cin, filters * 2**level)
        cin = filters * 2**level
    total += block(cin, filters * 2**depth)
    cin = filters * 2**depth
    for level in reversed(range(depth)):
        width = filters * 2**level
        total += (4 if upsampling == "transpose" else 9) * cin * width + width
        total += block(2 * width, width)
        cin = width
    return total + cin * classes + classes


@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_structure_names_and_parameter_count(upsampling, batch_norm):
    model = UNet(
        (16, 24, 2), classes=3, depth=2, filters=4, batch_norm=batch_norm, upsampling=upsampling
    )
    assert model.output_shape == (None, 16, 24, 3)
    names = [layer.name for layer in model.layers]
    assert len(set(names)) == len(names)
    assert names[0] == "image" and names[-1] == "mask"
    for name in (
        "enc1_conv1",
        "enc2_pool",
        "bottleneck_conv2",
        "dec2_up",
        "dec1_concat",
        "dec1_conv2",
    ):
        assert name in names
    assert ("enc1_bn1" in names) == batch_norm
    assert ("dec1_upconv" in names) == (upsampling == "nearest")
    assert model.get_layer("bottleneck_conv1").output_shape == (None, 4, 6, 16)
    assert model.get_layer("dec1_concat").output_shape == (None, 16, 24, 8)
    assert model.count_params() == expected_parameters(2, 3, 2, 4, batch_norm, upsampling)


def test_default_unet_matches_the_issue_signature():
    model = UNet((64, 64, 1))
    assert model.output_shape == (None, 64, 64, 1)
    assert model.get_layer("enc4_conv1").filters == 256
    assert model.get_layer("bottleneck_conv1").filters == 512
    assert model.get_layer("mask").activation.__name__ == "sigmoid"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": (20, 16, 1), "depth": 3}, r"divisible by 8.*\(20, 16, 1\)"),
        ({"input_shape": (16, 16)}, r"\(height, width, channels\).*\(16, 16\)"),
        ({"input_shape": (16, 16, 1), "classes": 0}, "classes.*Received: classes=0"),
        ({"input_shape": (16, 16, 1), "filters": 2.5}, "filters.*Received: filters=2.5"),
        ({"input_shape": (16, 16, 1), "upsampling": "bilinear"}, "transpose, nearest.*bilinear"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)


def squares(count=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, size=(count, size, size, 1)).astype("float32")
    y = np.zeros_like(x)
    for i in range(count):
        r, c, h = rng.integers(1, size // 2), rng.integers(1, size // 2), rng.integers(3, size // 2)
        y[i, r : r + h, c : c + h] = 1.0
    return x + y, y


def same_predictions_as_numpy(backend, x, **kwargs):
    """Build a U-Net on numpy and on ``backend`` with the same weights; compare predictions."""
    K.set_backend("numpy")
    minidl.set_random_seed(1)
    reference = UNet((16, 16, 1), **kwargs)
    expected = reference.predict(x, verbose=0)
    K.set_backend(backend)
    model = UNet((16, 16, 1), **kwargs)
    model.set_weights(reference.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    return model


def test_every_backend_predicts_like_numpy_and_trains(backend):
    x, y = squares()
    model = same_predictions_as_numpy(backend, x, depth=1, filters=4)
    model.compile("adam", loss="dice_loss", metrics=["dice_coefficient"])
    history = model.fit(x, y, epochs=4, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_nearest_upsampling_predicts_like_numpy(backend):
    if backend == "numpy":
        pytest.skip("numpy is the reference: comparing it with itself cannot fail")
    x, _ = squares(count=3)
    same_predictions_as_numpy(backend, x, depth=1, filters=3, upsampling="nearest")


def test_softmax_head_and_save_load_round_trip(tmp_path):
    x, _ = squares(count=2)
    model = UNet((16, 16, 1), classes=3, depth=1, filters=2)
    scores = model.predict(x, verbose=0)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-5)
    model.compile("sgd", loss="categorical_crossentropy")
    model.save(tmp_path / "unet.h5")
    again = load_model(tmp_path / "unet.h5")
    assert [layer.name for layer in again.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(again.predict(x, verbose=0), scores, rtol=1e-6)
