"""Parallel model selection: the scikit-learn wrappers under joblib's default backend, Dask, Ray.

Each test runs ``GridSearchCV`` over ``KerasClassifier`` and ``cross_val_score`` over
``KerasRegressor`` once serially and once on parallel workers, and checks that the seeded
scores agree and that every worker used the backend named by ``MINIDL_BACKEND``.
"""

from __future__ import annotations

import importlib.util
import os

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from minidl import backend as K
from minidl.layers import Dense
from minidl.models import Sequential
from minidl.wrappers import KerasClassifier, KerasRegressor


def build_classifier(meta, units=4):
    return Sequential(
        [
            Dense(units, activation="tanh", input_shape=(meta["n_features_in_"],)),
            Dense(1, activation="sigmoid"),
        ]
    )


def build_regressor(meta, units=4):
    return Sequential(
        [Dense(units, activation="tanh", input_shape=(meta["n_features_in_"],)), Dense(1)]
    )


def worker_backend(_: int) -> tuple[str | None, str]:
    """The backend a worker process uses, and the MINIDL_BACKEND it sees."""
    from minidl import backend

    return os.environ.get("MINIDL_BACKEND"), backend.name()


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    x = rng.randn(48, 4).astype("float32")
    labels = (x[:, 0] + 0.5 * rng.randn(48) > 0).astype(int)
    targets = x[:, 1] - 0.5 * x[:, 2]
    return x, labels, targets


def scores(n_jobs: int) -> np.ndarray:
    """Grid-search fold scores of two classifiers, then cross-validated regressor scores."""
    x, labels, targets = data()
    classifier = KerasClassifier(build_classifier, epochs=4, batch_size=8, random_state=0)
    grid = GridSearchCV(classifier, {"units": [2, 6]}, cv=KFold(3), n_jobs=n_jobs, refit=False)
    results = grid.fit(x, labels).cv_results_
    fold_scores = [results[f"split{i}_test_score"] for i in range(3)]
    regressor = KerasRegressor(build_regressor, epochs=4, batch_size=8, random_state=1)
    regression = cross_val_score(regressor, x, targets, cv=KFold(3), n_jobs=n_jobs)
    return np.concatenate([np.ravel(fold_scores), regression])


@pytest.fixture
def backend_env(monkeypatch):
    """Name the current backend in MINIDL_BACKEND, which worker processes read."""
    monkeypatch.setenv("MINIDL_BACKEND", K.name())
    return K.name()


def check_against_serial(parallel: np.ndarray) -> None:
    serial = scores(n_jobs=1)
    assert len(set(np.round(serial, 6))) > 2  # real scores, not one constant
    np.testing.assert_allclose(parallel, serial, rtol=1e-5, atol=1e-6)


def needs_module(module: str, label: str) -> pytest.MarkDecorator:
    """Skip the test unless ``module`` of the ``[distributed]`` extra is installed."""
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None,
        reason=f"{label} not installed (pip install 'minidl[distributed]')",
    )


def test_default_joblib_backend_scores_like_a_serial_run(backend_env):
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)  # fresh workers see MINIDL_BACKEND
    parallel = scores(n_jobs=2)
    seen = joblib.Parallel(n_jobs=2)(joblib.delayed(worker_backend)(i) for i in range(2))
    assert all(found == (backend_env, backend_env) for found in seen)
    check_against_serial(parallel)


@pytest.mark.slow
@needs_module("distributed", "dask.distributed")
def test_dask_cluster_scores_like_a_serial_run(backend_env):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        with joblib.parallel_backend("dask"):
            parallel = scores(n_jobs=-1)
        seen = list(client.run(worker_backend, 0).values())
    assert len(seen) == 2 and all(found == (backend_env, backend_env) for found in seen)
    check_against_serial(parallel)


@pytest.mark.slow
@needs_module("ray", "ray")
def test_ray_scores_like_a_serial_run(backend_env):
    import ray
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with joblib.parallel_backend("ray"):
            parallel = scores(n_jobs=-1)
            seen = joblib.Parallel(n_jobs=2)(joblib.delayed(worker_backend)(i) for i in range(2))
    finally:
        ray.shutdown()
    assert all(found == (backend_env, backend_env) for found in seen)
    check_against_serial(parallel)
