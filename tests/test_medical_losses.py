"""Dice loss, Dice coefficient and IoU: per-image values vs NumPy, gradients, use in compile."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl import backend as K
from minidl import losses, metrics
from minidl.layers import Conv2D
from minidl.models import Sequential

SETTINGS = settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FD_STEP = 1e-6


def np_sums(t, p):
    axes = tuple(range(1, t.ndim))
    return (t * p).sum(axis=axes), t.sum(axis=axes), p.sum(axis=axes)


def np_dice_loss(t, p):
    inter, ts, ps = np_sums(t, p)
    return 1 - (2 * inter + 1) / (ts + ps + 1)


def np_dice(t, p):
    inter, ts, ps = np_sums(t, (p > 0.5).astype(p.dtype))
    return np.where(ts + ps == 0, 1.0, 2 * inter / np.maximum(ts + ps, 1e-30))


def np_iou(t, p):
    inter, ts, ps = np_sums(t, (p > 0.5).astype(p.dtype))
    union = ts + ps - inter
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1e-30))


@st.composite
def masks_and_probabilities(draw):
    """A binary mask batch and probabilities of any rank 2-4 (batch first)."""
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=5))
    mask = draw(hnp.arrays(np.float32, shape, elements=st.sampled_from([0.0, 1.0])))
    probs = draw(hnp.arrays(np.float32, shape, elements=st.floats(0, 1, width=32, allow_nan=False)))
    assume(np.all(np.abs(probs - 0.5) > 1e-3))
    return mask, probs


def run(fn, *arrays):
    specs = [((None, *a.shape[1:]), str(a.dtype)) for a in arrays]
    return K.function(lambda *xs: (fn(*xs), []), specs)(*arrays)


@SETTINGS
@given(data=masks_and_probabilities())
def test_overlap_losses_and_metrics_are_per_image_and_match_numpy(backend, data):
    mask, probs = data

    def fn(t, p):
        return [losses.get("dice_loss")(t, p), metrics.get("dice")(t, p), metrics.get("iou")(t, p)]

    got = run(fn, mask, probs)
    want = [np_dice_loss(mask, probs), np_dice(mask, probs), np_iou(mask, probs)]
    for name, value, expected in zip(("dice_loss", "dice", "iou"), got, want):
        assert value.shape == (mask.shape[0],), name
        assert value.dtype == np.float32, name
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_masks_without_a_channel_axis_and_empty_masks(backend):
    mask = np.zeros((3, 4, 4), dtype="float32")
    mask[1, :2] = 1.0
    probs = np.zeros((3, 4, 4, 1), dtype="float32")
    probs[1, :1, :, 0] = 0.9  # half of image 1's mask found; image 2 predicts 4 stray pixels
    probs[2, 0, :, 0] = 0.8

    def fn(t, p):
        return [metrics.dice_coefficient(t, p), metrics.iou(t, p), losses.dice_loss(t, p)]

    dice, iou, loss = run(fn, mask, probs)
    np.testing.assert_allclose(dice, [1.0, 2 * 4 / 12, 0.0], atol=1e-6)
    np.testing.assert_allclose(iou, [1.0, 4 / 8, 0.0], atol=1e-6)
    np.testing.assert_allclose(loss[0], 0.0, atol=1e-7)  # empty predicted empty costs nothing


@SETTINGS
@given(data=masks_and_probabilities())
def test_dice_loss_gradient_matches_central_differences(backend, data):
    mask, probs = (a.astype("float64") for a in data)

    def step(t, p):
        loss = K.sum(losses.dice_loss(t, p) * np.arange(1.0, mask.shape[0] + 1))
        return [loss, *K.gradients(loss, [p])], []

    specs = [((None, *mask.shape[1:]), "float64")] * 2
    fn = K.function(step, specs)
    _, grad = fn(mask, probs)
    weights = np.arange(1.0, mask.shape[0] + 1)
    numeric = np.zeros_like(probs)
    for index in np.ndindex(probs.shape):
        up, down = probs.copy(), probs.copy()
        up[index] += FD_STEP
        down[index] -= FD_STEP
        numeric[index] = (
            (np_dice_loss(mask, up) * weights).sum() - (np_dice_loss(mask, down) * weights).sum()
        ) / (2 * FD_STEP)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_names_resolve_and_metric_aliases():
    assert losses.get("dice_loss") is losses.dice_loss
    assert metrics.get("dice_coefficient") is metrics.dice_coefficient
    assert metrics.get("dice") is metrics.dice_coefficient
    assert metrics.get("dice_coef") is metrics.dice_coefficient
    assert metrics.get("IoU") is metrics.iou
    assert losses.serialize(losses.dice_loss) == "dice_loss"


def test_compile_by_name_trains_and_reports_per_image_averages(backend):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 6, 6, 1)).astype("float32")
    y = (x > 0.3).astype("float32")
    y[:4] = 0.0  # empty masks weigh as much as full ones in a per-image average
    K.set_backend(backend)
    from minidl import initializers

    initializers.set_seed(5)
    model = Sequential([Conv2D(1, 3, padding="same", activation="sigmoid", input_shape=(6, 6, 1))])
    model.compile("adam", loss="dice_loss", metrics=["dice_coefficient", "iou"])
    history = model.fit(x, y, epochs=15, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert {"dice_coefficient", "iou"} <= set(history.history)
    loss, dice, iou = model.evaluate(x, y, batch_size=5, verbose=0)
    predicted = model.predict(x, verbose=0)
    np.testing.assert_allclose(loss, np_dice_loss(y, predicted).mean(), rtol=1e-4)
    np.testing.assert_allclose(dice, np_dice(y, predicted).mean(), rtol=1e-4)
    np.testing.assert_allclose(iou, np_iou(y, predicted).mean(), rtol=1e-4)
    # a global (all-pixel) Dice differs from the per-image mean on this data
    inter, ts, ps = (s.sum() for s in np_sums(y, (predicted > 0.5).astype("float32")))
    assert abs(2 * inter / (ts + ps) - dice) > 1e-3


@pytest.mark.parametrize("rank", [2, 3])
def test_rank_mismatch_is_a_clear_error(rank):
    mask = np.zeros((2,) * rank, dtype="float32")
    probs = np.zeros((2, 3, 3, 3, 1), dtype="float32")
    with pytest.raises(ValueError, match="dice_loss.*Received"):
        run(losses.dice_loss, mask, probs)
