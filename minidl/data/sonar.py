"""Load the UCI Sonar (mines vs. rocks) data set from the shipped copy, a path or a URL.

The file has no header; each line holds 60 numbers and a label, ``M`` (mine) or ``R`` (rock).
A copy ships with minidl (see ``minidl/data/resources/README.md`` for provenance and licence:
CC BY 4.0, https://doi.org/10.24432/C5T01Q), so nothing is downloaded unless you pass a URL.

>>> X, y = load_sonar()
>>> X.shape, X.dtype, sorted(set(y.tolist()))
((208, 60), dtype('float32'), ['M', 'R'])
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

N_FEATURES = 60
SONAR_LABELS = ("M", "R")
DEFAULT_PATH = Path(__file__).resolve().parent / "resources" / "sonar.all-data"

# A row with too many fields is replaced by this marker so that its line number is kept.
_TOO_MANY_FIELDS = "\x1fminidl-too-many-fields:"


def _source_name(source: str | os.PathLike | None) -> str:
    return str(DEFAULT_PATH if source is None else source)


def _read_fields(source: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read every line as ``N_FEATURES + 1`` string fields; row ``i`` is line ``i + 1``."""
    width = N_FEATURES + 1

    def mark_long_row(fields: list[str]) -> list[str]:
        return [f"{_TOO_MANY_FIELDS}{len(fields)}"]

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                source,
                header=None,
                names=range(width),
                index_col=False,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                engine="python",
                on_bad_lines=mark_long_row,
            )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(f"Sonar file {name} could not be parsed as CSV: {err}") from None
    if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        # pandas warns (and truncates) only when the first line is longer than ``names``.
        raise ValueError(
            f"Sonar file {name}, line 1: expected {width} comma-separated fields "
            f"({N_FEATURES} numbers and a label). Received: more than {width} fields."
        )
    return frame


def _check_row(name: str, line: int, fields: list) -> None:
    """Raise ``ValueError`` naming ``name`` and ``line`` when a row is malformed."""
    first = fields[0]
    if isinstance(first, str) and first.startswith(_TOO_MANY_FIELDS):
        count = first[len(_TOO_MANY_FIELDS) :]
        raise ValueError(
            f"Sonar file {name}, line {line}: expected {N_FEATURES + 1} comma-separated fields "
            f"({N_FEATURES} numbers and a label). Received: {count} fields."
        )
    present = [f for f in fields if isinstance(f, str)]
    if len(present) != N_FEATURES + 1:
        raise ValueError(
            f"Sonar file {name}, line {line}: expected {N_FEATURES + 1} comma-separated fields "
            f"({N_FEATURES} numbers and a label). Received: {len(present)} fields."
        )
    for column, text in enumerate(fields[:N_FEATURES], start=1):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise ValueError(
                f"Sonar file {name}, line {line}, field {column}: expected a finite number. "
                f"Received: {text!r}"
            )
    label = fields[N_FEATURES].strip()
    if label not in SONAR_LABELS:
        raise ValueError(
            f"Sonar file {name}, line {line}: expected the label 'M' or 'R' in field "
            f"{N_FEATURES + 1}. Received: {fields[N_FEATURES]!r}"
        )


def load_sonar(source: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return the Sonar features ``X`` (float32, ``(n, 60)``) and labels ``y`` (``"M"``/``"R"``).

    Args:
        source: a file path or a URL that pandas can read (``file://``, ``http(s)://``, ...).
            ``None`` (the default) reads the copy shipped with minidl; nothing is downloaded.
            Blank lines are skipped.

    Returns:
        ``(X, y)``: ``X`` has one row per sample; ``y`` is a NumPy array of ``str`` labels.

    Raises:
        ValueError: for a malformed file (wrong number of fields, a value that is not a finite
            number, a label other than ``M``/``R``, or no rows), naming the file and line.
        FileNotFoundError: when a local path does not exist.
    """
    name = _source_name(source)
    frame = _read_fields(DEFAULT_PATH if source is None else source, name)
    rows = frame.to_numpy(dtype=object)
    blank = np.array([all(f is None or f != f or f == "" for f in row) for row in rows], bool)
    for index, row in enumerate(rows):
        if not blank[index]:
            _check_row(name, index + 1, list(row))
    rows = rows[~blank]
    if len(rows) == 0:
        raise ValueError(f"Sonar file {name} holds no data rows. Received: only blank lines.")
    features = rows[:, :N_FEATURES].astype(np.float32)
    labels = np.array([label.strip() for label in rows[:, N_FEATURES]], dtype=str)
    return features, labels
