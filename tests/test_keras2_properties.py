"""Hypothesis properties of the Keras 2 utilities: affine resampling, padding, label encoding,
optimizer clipping and constraints, against plain references (``naive_spatial.loop_nearest``
for the resampling, the others kept in this module)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidl.data.affine import affine_transform, transform_matrix
from minidl.preprocessing.sequence import pad_sequences
from minidl.utils import to_categorical

from .naive_spatial import loop_nearest
from .strategies import float_arrays

SETTINGS = settings(max_examples=40, deadline=None)


def _not_a_rounding_tie(x_shape, matrix):
    """Keep away from source positions exactly half-way between pixels (rounding ties)."""
    h, w = x_shape[:2]
    rows, cols = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    src_r = matrix[0, 0] * rows + matrix[0, 1] * cols + matrix[0, 2] + (h - 1) / 2
    src_c = matrix[1, 0] * rows + matrix[1, 1] * cols + matrix[1, 2] + (w - 1) / 2
    frac = np.abs(np.concatenate([src_r.ravel(), src_c.ravel()]) % 1 - 0.5)
    return frac.min() > 1e-6


@SETTINGS
@given(
    x=float_arrays(hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7)),
    theta=st.floats(-180, 180),
    tx=st.floats(-4, 4),
    ty=st.floats(-4, 4),
    shear=st.floats(-40, 40),
    zx=st.floats(0.5, 1.5),
    zy=st.floats(0.5, 1.5),
    fill_mode=st.sampled_from(["nearest", "constant", "reflect", "wrap"]),
)
def test_nearest_affine_matches_the_loop_reference(x, theta, tx, ty, shear, zx, zy, fill_mode):
    matrix = transform_matrix(theta, tx, ty, shear, zx, zy)
    assume(_not_a_rounding_tie(x.shape, matrix))
    got = affine_transform(x, theta, tx, ty, shear, zx, zy, fill_mode, cval=-9.0, order=0)
    if np.allclose(matrix, np.eye(3)):
        np.testing.assert_array_equal(got, x)
        return
    np.testing.assert_array_equal(got, loop_nearest(x, matrix, fill_mode, -9.0))


@SETTINGS
@given(
    x=float_arrays(hnp.array_shapes(min_dims=3, max_dims=3, min_side=2, max_side=6)),
    theta=st.floats(-30, 30),
    zoom=st.floats(0.7, 1.3),
)
def test_bilinear_stays_within_the_input_range(x, theta, zoom):
    out = affine_transform(x, theta=theta, zx=zoom, zy=zoom, fill_mode="nearest", order=1)
    assert out.shape == x.shape
    assert out.min() >= x.min() - 1e-9 and out.max() <= x.max() + 1e-9


@SETTINGS
@given(
    seqs=st.lists(st.lists(st.integers(1, 50), max_size=8), min_size=1, max_size=6),
    maxlen=st.none() | st.integers(0, 10),
    padding=st.sampled_from(["pre", "post"]),
    truncating=st.sampled_from(["pre", "post"]),
)
def test_pad_sequences_matches_a_list_reference(seqs, maxlen, padding, truncating):
    out = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    length = max((len(s) for s in seqs), default=0) if maxlen is None else maxlen
    assert out.shape == (len(seqs), length)
    for row, seq in zip(out.tolist(), seqs):
        kept = (seq[-length:] if truncating == "pre" else seq[:length]) if length else []
        pad = [-1] * (length - len(kept))
        assert row == (pad + kept if padding == "pre" else kept + pad)


@SETTINGS
@given(
    labels=hnp.arrays(
        np.int64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4),
        elements=st.integers(0, 6),
    ),
    extra=st.integers(0, 3),
)
def test_to_categorical_is_one_hot_along_a_new_last_axis(labels, extra):
    classes = int(labels.max()) + 1 + extra
    out = to_categorical(labels, classes)
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    assert out.shape == (*shape, classes)
    assert np.all(out.sum(axis=-1) == 1)
    np.testing.assert_array_equal(out.argmax(axis=-1), labels.reshape(shape))
