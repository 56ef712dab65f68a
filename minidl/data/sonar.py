"""Load the UCI Sonar (mines vs. rocks) data set from the shipped copy, a path or a URL.

The file has no header; each line holds 60 numbers and a label, ``M`` (mine) or ``R`` (rock).
A copy ships with minidl (see ``minidl/data/resources/README.md`` for provenance and licence:
CC BY 4.0, https://doi.org/10.24432/C5T01Q), so nothing is downloaded unless you pass a URL.

Every non-blank line becomes one row or an error naming its line: the file is split on
newlines and commas by this module (no CSV quoting rules), so a stray quote cannot merge
lines and silently drop rows.

>>> X, y = load_sonar()
>>> X.shape, X.dtype, sorted(set(y.tolist()))
((208, 60), dtype('float32'), ['M', 'R'])
"""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

N_FEATURES = 60
SONAR_LABELS = ("M", "R")
DEFAULT_PATH = Path(__file__).resolve().parent / "resources" / "sonar.all-data"
DEFAULT_TIMEOUT = 30.0  # seconds a URL load may wait for the server (each connect / read)
_QUOTES = "\"'"


def _is_url(source: str) -> bool:
    scheme = urllib.parse.urlsplit(source).scheme
    return len(scheme) > 1 and "://" in source  # "C:\\data" is a Windows path, not a URL


def _read_url(url: str, timeout: float) -> bytes:
    """The bytes at ``url``; any failure (timeout included) is an ``OSError`` naming it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            return response.read()
    except urllib.error.HTTPError as err:
        raise OSError(f"Could not download the Sonar file {url!r}: HTTP {err.code}.") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(err, TimeoutError) or isinstance(reason, TimeoutError):
            raise TimeoutError(
                f"Could not download the Sonar file {url!r}: no answer within {timeout} s "
                "(pass a larger `timeout`)."
            ) from None
        raise OSError(f"Could not download the Sonar file {url!r}: {reason}") from None


def _read_bytes(source: str | os.PathLike | None, timeout: float) -> bytes:
    if source is None:
        return DEFAULT_PATH.read_bytes()
    if isinstance(source, str) and _is_url(source):
        if urllib.parse.urlsplit(source).scheme == "file":
            path = urllib.request.url2pathname(urllib.parse.urlsplit(source).path)
            return Path(path).read_bytes()
        return _read_url(source, timeout)
    return Path(source).read_bytes()


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"Sonar file {name}, line {line}: expected ASCII numbers and labels. Received: "
            f"the byte {data[err.start : err.start + 1]!r}, which is not UTF-8 text."
        ) from None


def _check_row(name: str, line: int, fields: list[str]) -> None:
    """Raise ``ValueError`` naming ``name`` and ``line`` when a row is malformed."""
    if len(fields) != N_FEATURES + 1:
        raise ValueError(
            f"Sonar file {name}, line {line}: expected {N_FEATURES + 1} comma-separated fields "
            f"({N_FEATURES} numbers and a label). Received: {len(fields)} fields."
        )
    for column, text in enumerate(fields[:N_FEATURES], start=1):
        try:
            value = float(text) if "_" not in text else float("nan")
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


def load_sonar(
    source: str | os.PathLike | None = None, timeout: float = DEFAULT_TIMEOUT
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Sonar features ``X`` (float32, ``(n, 60)``) and labels ``y`` (``"M"``/``"R"``).

    Args:
        source: a file path, a ``file://`` URL or an ``http(s)://`` URL. ``None`` (the
            default) reads the copy shipped with minidl; nothing is downloaded. Blank lines
            are skipped; every other line is one row.
        timeout: seconds a URL load waits for the server before it fails.

    Returns:
        ``(X, y)``: ``X`` has one row per sample; ``y`` is a NumPy array of ``str`` labels.

    Raises:
        ValueError: for a malformed file (wrong number of fields, a quote character, a value
            that is not a finite number, a label other than ``M``/``R``, text that is not
            UTF-8, or no rows), naming the file and line.
        FileNotFoundError: when a local path does not exist.
        OSError: when a URL cannot be read (``TimeoutError`` after ``timeout``), naming it.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds. Received: {timeout!r}")
    name = str(DEFAULT_PATH if source is None else source)
    text = _decode(_read_bytes(source, float(timeout)), name)
    features, labels = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        quote = next((c for c in line if c in _QUOTES), None)
        if quote is not None:
            raise ValueError(
                f"Sonar file {name}, line {number}: expected unquoted numbers and a label. "
                f"Received: a {quote} at column {line.index(quote) + 1}."
            )
        fields = line.rstrip("\r").split(",")
        _check_row(name, number, fields)
        features.append([float(f) for f in fields[:N_FEATURES]])
        labels.append(fields[N_FEATURES].strip())
    if not features:
        raise ValueError(f"Sonar file {name} holds no data rows. Received: only blank lines.")
    return np.asarray(features, dtype=np.float32), np.array(labels, dtype=str)
