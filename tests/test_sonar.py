"""The Sonar loader (path, file:// URL, malformed files) and a short training run per backend."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder, StandardScaler

import minidl
from minidl.data.sonar import DEFAULT_PATH, load_sonar
from minidl.layers import Dense
from minidl.models import Sequential

from .example_scripts import load_example

SONAR_SHA256 = "e90434cdbf00fcf93ffa911fe447ae25606979658e60f1d32e155c3b5240234d"


def sonar_lines() -> list[str]:
    return DEFAULT_PATH.read_text().splitlines()


def write_lines(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "sonar.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_shipped_file_is_the_documented_one():
    assert hashlib.sha256(DEFAULT_PATH.read_bytes()).hexdigest() == SONAR_SHA256


def test_default_load_shapes_and_labels():
    X, y = load_sonar()
    assert X.shape == (208, 60)
    assert X.dtype == np.float32
    assert y.shape == (208,)
    assert (y == "M").sum() == 111 and (y == "R").sum() == 97
    np.testing.assert_allclose(X[0, :4], [0.0200, 0.0371, 0.0428, 0.0207])
    assert y[0] == "R"
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_path_and_file_url_give_the_same_data(tmp_path):
    X, y = load_sonar()
    path = write_lines(tmp_path, sonar_lines())
    X_path, y_path = load_sonar(path)
    X_url, y_url = load_sonar((tmp_path / "sonar.csv").as_uri())
    np.testing.assert_array_equal(X_path, X)
    np.testing.assert_array_equal(X_url, X)
    assert list(y_path) == list(y) == list(y_url)


def test_blank_lines_are_skipped(tmp_path):
    lines = sonar_lines()
    path = write_lines(tmp_path, lines[:3] + [""] + lines[3:] + [""])
    X, y = load_sonar(path)
    assert X.shape == (208, 60) and len(y) == 208


def _replace_line(lines: list[str], index: int, new: str) -> list[str]:
    return lines[:index] + [new] + lines[index + 1 :]


def _drop_a_number(line: str) -> str:
    return line.split(",", 1)[1]


def _add_a_number(line: str) -> str:
    return "0.5," + line


def _non_numeric(line: str) -> str:
    fields = line.split(",")
    fields[2] = "0.12x"
    return ",".join(fields)


def _unknown_label(line: str) -> str:
    return line[:-1] + "X"


@pytest.mark.parametrize(
    "corrupt, line_index, message",
    [
        (_drop_a_number, 4, "line 5: expected 61 comma-separated fields.*Received: 60 fields"),
        (_add_a_number, 9, "line 10: expected 61 comma-separated fields.*Received: 62 fields"),
        (_add_a_number, 0, "line 1: expected 61 comma-separated fields.*Received: 62 fields"),
        (_non_numeric, 6, "line 7, field 3: expected a finite number. Received: '0.12x'"),
        (lambda line: line.replace(line.split(",")[0], "nan", 1), 2, "line 3, field 1"),
        (_unknown_label, 207, "line 208: expected the label 'M' or 'R'.*Received: 'X'"),
    ],
)
def test_malformed_file_names_file_line_and_problem(tmp_path, corrupt, line_index, message):
    lines = sonar_lines()
    path = write_lines(tmp_path, _replace_line(lines, line_index, corrupt(lines[line_index])))
    with pytest.raises(ValueError, match=message) as info:
        load_sonar(path)
    assert path in str(info.value)


def test_file_without_rows_is_rejected(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(ValueError, match="holds no data rows"):
        load_sonar(str(path))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_sonar(str(tmp_path / "absent.csv"))


# ------------------------------------------------------------------ training on Sonar

MAJORITY_RATE = 111 / 208  # always answering "M"


def test_short_training_beats_the_majority_class_on_held_out_data(backend):
    X, labels = load_sonar()
    y = LabelEncoder().fit_transform(labels).astype("float32")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, stratify=y, random_state=7
    )
    scaler = StandardScaler().fit(X_train)
    minidl.set_random_seed(7)
    model = Sequential(
        [Dense(60, activation="relu", input_dim=60), Dense(8, "relu"), Dense(1, "sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(scaler.transform(X_train), y_train, epochs=15, batch_size=16, verbose=0)
    _, accuracy = model.evaluate(scaler.transform(X_test), y_test, verbose=0)
    assert accuracy >= MAJORITY_RATE + 0.15, accuracy


def test_example_split_and_cv_runs_print_labelled_accuracies(capsys):
    example = load_example("sonar_mlp.py")
    example.main(["--epochs", "2", "--batch-size", "32"])
    example.main(["--cv", "2", "--epochs", "2", "--batch-size", "32", "--smaller"])
    out = capsys.readouterr().out
    assert "model 60-60-8-1" in out and "model 60-60-1" in out
    assert re.search(r"Training accuracy \(124 samples\): \d+\.\d\d%", out)
    assert re.search(r"Held-out test accuracy \(84 samples\): \d+\.\d\d%", out)
    assert re.search(r"Standardized 2-fold CV accuracy: \d+\.\d\d% \(std \d+\.\d\d%\)", out)


def test_example_exits_with_a_message_on_bad_arguments(tmp_path):
    example = load_example("sonar_mlp.py")
    with pytest.raises(SystemExit):
        example.main(["--cv", "1"])
    bad = tmp_path / "bad.csv"
    bad.write_text("0.1,0.2\n")
    with pytest.raises(SystemExit, match="line 1: expected 61 comma-separated fields"):
        example.main(["--data", str(bad)])
