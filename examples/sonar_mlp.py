"""Classify sonar returns as mines or rocks with a small MLP (the classic Keras tutorial).

The model is 60 inputs -> Dense 60 relu -> Dense 8 relu -> Dense 1 sigmoid (``--smaller``:
60 -> 60 -> 1), trained with adam on binary cross-entropy. Inputs are standardised with a
scaler fitted on training data only.

Default: one stratified 60:40 train/test split; prints the training and the held-out accuracy.
``--cv 10``: stratified 10-fold cross-validation of a scikit-learn Pipeline (StandardScaler +
KerasClassifier), so the scaler is refitted inside every fold; prints mean and std accuracy.

Run from the repository root (after ``pip install -e .``)::

    python examples/sonar_mlp.py
    python examples/sonar_mlp.py --cv 10 --backend theano
    MINIDL_BACKEND=tensorflow python examples/sonar_mlp.py --cv 10 --smaller
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler

import minidl
from minidl import backend as K
from minidl.data.sonar import load_sonar
from minidl.layers import Dense
from minidl.models import Sequential
from minidl.wrappers import KerasClassifier

STANDARD_HIDDEN = (60, 8)
SMALLER_HIDDEN = (60,)


def build_model(hidden_units: Sequence[int] = STANDARD_HIDDEN, n_features: int = 60) -> Sequential:
    """Return the compiled MLP: ``n_features`` -> relu layers of ``hidden_units`` -> 1 sigmoid."""
    model = Sequential()
    for index, units in enumerate(hidden_units):
        shape = {"input_shape": (n_features,)} if index == 0 else {}
        model.add(Dense(units, activation="relu", **shape))
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="path or URL of sonar.all-data (default: shipped copy)")
    parser.add_argument("--backend", help="numpy, theano or tensorflow (default: MINIDL_BACKEND)")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs (default 100)")
    parser.add_argument("--batch-size", type=int, default=5, help="batch size (default 5)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--cv", type=int, metavar="K", help="run stratified K-fold CV instead")
    parser.add_argument("--smaller", action="store_true", help="use the 60-60-1 model")
    parser.add_argument("--verbose", type=int, default=0, help="fit verbosity (0, 1 or 2)")
    args = parser.parse_args(argv)
    if args.cv is not None and args.cv < 2:
        parser.error(f"--cv needs at least 2 folds. Received: --cv {args.cv}")
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be positive integers.")
    return args


def run_split(X: np.ndarray, y: np.ndarray, args: argparse.Namespace, hidden: tuple) -> None:
    """Train on a stratified 60% of the data and report training and held-out accuracy."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, stratify=y, random_state=args.seed
    )
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    minidl.set_random_seed(args.seed)
    model = build_model(hidden, X.shape[1])
    model.fit(
        X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=args.verbose
    )
    train_acc = model.evaluate(X_train, y_train, verbose=0)[1]
    test_acc = model.evaluate(X_test, y_test, verbose=0)[1]
    print(f"Training accuracy ({len(y_train)} samples): {100 * train_acc:.2f}%")
    print(f"Held-out test accuracy ({len(y_test)} samples): {100 * test_acc:.2f}%")


def run_cv(X: np.ndarray, y: np.ndarray, args: argparse.Namespace, hidden: tuple) -> None:
    """Report mean and std accuracy of stratified K-fold CV with in-fold standardisation."""
    minidl.set_random_seed(args.seed)
    classifier = KerasClassifier(
        build_model,
        hidden_units=hidden,
        n_features=X.shape[1],
        epochs=args.epochs,
        batch_size=args.batch_size,
        verbose=args.verbose,
        random_state=args.seed,
    )
    pipeline = Pipeline([("standardize", StandardScaler()), ("mlp", classifier)])
    folds = StratifiedKFold(n_splits=args.cv, shuffle=True, random_state=args.seed)
    scores = cross_val_score(pipeline, X, y, cv=folds)
    print(f"Fold accuracies: {' '.join(f'{100 * s:.1f}' for s in scores)}")
    print(
        f"Standardized {args.cv}-fold CV accuracy: {100 * scores.mean():.2f}% "
        f"(std {100 * scores.std():.2f}%)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Load the data, then run the split or the cross-validation experiment."""
    args = parse_args(argv)
    try:
        if args.backend:
            K.set_backend(args.backend)
        K.current()  # loads the chosen backend now, so a missing extra is reported here
        X, labels = load_sonar(args.data)
    except (ImportError, OSError, ValueError) as err:  # a bad backend or --data
        raise SystemExit(f"sonar_mlp.py: error: {err}") from None
    y = LabelEncoder().fit_transform(labels)  # M -> 0, R -> 1
    hidden = SMALLER_HIDDEN if args.smaller else STANDARD_HIDDEN
    sizes = "-".join(str(n) for n in (X.shape[1], *hidden, 1))
    print(f"Sonar: {len(y)} samples, model {sizes}, backend {K.name()}, seed {args.seed}")
    start = time.perf_counter()
    if args.cv:
        run_cv(X, y, args, hidden)
    else:
        run_split(X, y, args, hidden)
    print(f"Elapsed: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
