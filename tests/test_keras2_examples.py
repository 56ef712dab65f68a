"""Ports of Keras 2.2.4's examples run unchanged but for imports, offline data and epochs.

Each port in ``examples/keras2`` runs in-process on every backend with a few dozen samples
(``MINIDL_EXAMPLE_SAMPLES``), so the suite stays fast; the test checks that the script ends
with its test-set report and, where the script trains long enough, that it learned something.
The grid search of ``mnist_sklearn_wrapper`` (25 models) runs on numpy by default and on the
other backends with ``-m slow``.
"""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "keras2"
SAMPLES = {
    "mnist_mlp": 64,
    "mnist_cnn": 16,
    "mnist_transfer_cnn": 24,
    "cifar10_cnn": 16,
    "reuters_mlp": 64,
    "mnist_sklearn_wrapper": 24,
}


def run_example(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str]:
    monkeypatch.setenv("MINIDL_EXAMPLE_SAMPLES", str(SAMPLES[name]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("offline_datasets", None)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    return namespace, out.getvalue()


def check_sklearn_wrapper_example(tmp_path, monkeypatch):
    namespace, printed = run_example("mnist_sklearn_wrapper", tmp_path, monkeypatch)
    assert "The parameters of the best model are" in printed
    results = namespace["validator"].cv_results_
    assert len(results["params"]) == 8 and all(s < 0 for s in results["mean_test_score"])
    best = namespace["validator"].best_estimator_
    assert namespace["best_model"] is best.model is best.model_  # Keras 2's `.model`
    assert namespace["best_model"].metrics_names == ["loss", "accuracy"]
    assert "accuracy :" in printed


def test_sklearn_wrapper_example(tmp_path, monkeypatch):
    """The grid search builds 25 models: the default run takes the numpy backend."""
    check_sklearn_wrapper_example(tmp_path, monkeypatch)


@pytest.mark.slow
def test_sklearn_wrapper_example_other_backends(backend, tmp_path, monkeypatch):
    if backend == "numpy":
        pytest.skip("runs in the default suite (test_sklearn_wrapper_example)")
    check_sklearn_wrapper_example(tmp_path, monkeypatch)


@pytest.mark.parametrize("name", sorted(set(SAMPLES) - {"mnist_sklearn_wrapper"}))
def test_keras2_example_runs(backend, name, tmp_path, monkeypatch):
    namespace, printed = run_example(name, tmp_path, monkeypatch)
    assert "Test accuracy:" in printed
    assert namespace["model"].optimizer is not None
    if name == "mnist_mlp":  # two epochs on the synthetic digits: well above chance (0.1)
        assert namespace["score"][1] > 0.3
        assert len(namespace["history"].history["val_accuracy"]) == 2
    if name == "cifar10_cnn":
        assert (tmp_path / "saved_models" / "keras_cifar10_trained_model.h5").is_file()
    if name == "mnist_transfer_cnn":
        frozen = [layer for layer in namespace["feature_layers"] if layer.weights]
        assert frozen and not any(layer.trainable for layer in frozen)
    if name == "reuters_mlp":
        assert namespace["x_train"].shape[1] == 1000
    assert os.environ["MINIDL_EXAMPLE_SAMPLES"] == str(SAMPLES[name])


def test_mnist_cnn_takes_its_channels_first_branch(tmp_path, monkeypatch):
    """With K.set_image_data_format("channels_first") the port runs its NCHW branch."""
    from minidl import backend as K

    K.set_image_data_format("channels_first")
    try:
        namespace, printed = run_example("mnist_cnn", tmp_path, monkeypatch)
    finally:
        K.set_image_data_format("channels_last")
    assert namespace["input_shape"] == (1, 28, 28)
    assert namespace["model"].layers[0].data_format == "channels_first"
    assert "Test accuracy:" in printed
