"""The softmax/sigmoid -> logits link (``backends.logits``) is one attribute on every backend.

A cross-entropy works on the logits only when its probabilities came from the matching
activation along its own axis; anywhere else it must use the probabilities themselves.
"""

from __future__ import annotations

import numpy as np

from minidl import backend as K
from minidl.backends.logits import logits_of

EPS = 1e-7


def _clipped_crossentropy(t, p, axis=-1):
    p = np.clip(p / p.sum(axis=axis, keepdims=True), EPS, 1 - EPS)
    return -(t * np.log(p)).sum(axis=axis)


def test_the_link_is_used_only_for_its_own_activation_and_axis(backend):
    z = np.array([[-300.0, 0.0]], dtype="float32")
    t = np.array([[1.0, 0.0]], dtype="float32")
    z3 = np.array([[-300.0, 0.0], [0.0, 0.0]], dtype="float32")
    t3 = np.array([[1.0, 0.0], [1.0, 0.0]], dtype="float32")
    found = {}

    def step(z, t, z3, t3):
        probabilities = K.softmax(z)
        found["linked"] = logits_of(probabilities, "softmax", -1, 2) is not None
        found["not sigmoid"] = logits_of(probabilities, "sigmoid") is None
        outputs = [
            K.categorical_crossentropy(t, probabilities),  # the link: exact
            K.categorical_crossentropy(t, K.sigmoid(z)),  # a sigmoid's logits: not these
            K.binary_crossentropy(t, probabilities),  # a softmax's logits: not these
            K.categorical_crossentropy(K.transpose(t3), K.softmax(K.transpose(z3), 0), axis=0),
            K.categorical_crossentropy(t3, K.softmax(z3, axis=0), axis=-1),  # another axis
        ]
        return outputs, []

    specs = [((1, 2), "float32"), ((1, 2), "float32"), ((2, 2), "float32"), ((2, 2), "float32")]
    linked, sigmoid_in_cce, softmax_in_bce, axis0, other_axis = K.function(step, specs)(
        z, t, z3, t3
    )
    assert found == {"linked": True, "not sigmoid": True}
    np.testing.assert_allclose(linked, [300.0], rtol=1e-4)
    sigmoid = 1 / (1 + np.exp(-z.astype(float)))
    np.testing.assert_allclose(sigmoid_in_cce, _clipped_crossentropy(t, sigmoid), rtol=1e-4)
    one = np.float32(1)  # clipped in float32, as the backends do
    p = np.clip(np.array([[0.0, 1.0]], dtype="float32"), np.float32(EPS), one - np.float32(EPS))
    bce = -(t * np.log(p) + (one - t) * np.log(one - p))
    np.testing.assert_allclose(softmax_in_bce, bce, rtol=1e-3)
    np.testing.assert_allclose(axis0, [300.0, np.log(2.0)], rtol=1e-4)
    e = np.exp(z3 - z3.max(axis=0))
    np.testing.assert_allclose(other_axis, _clipped_crossentropy(t3, e / e.sum(axis=0)), rtol=1e-4)
