"""Loaders on hostile input: stray quotes, odd bytes, slow servers, link loops, 16-bit images.

Promises (issue 11, classes 7 and 8): a text loader never loses rows (a bad line fails,
naming it); a URL load times out, naming the URL; image folders with link loops are listed
once and end; predicting a folder keeps rows aligned with ``filenames``; 16-bit grayscale
images keep their values.
"""

from __future__ import annotations

import http.server
import io
import os
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from minidl.data.image import DirectoryIterator, flow_from_directory, img_to_array, load_img
from minidl.data.sonar import DEFAULT_PATH, load_sonar
from minidl.layers import Dense, Flatten
from minidl.models import Sequential

LINES = DEFAULT_PATH.read_text().splitlines()


def _write(tmp_path, lines: list[str]) -> str:
    path = tmp_path / "sonar.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --------------------------------------------------------------------------- sonar
@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_stray_quote_fails_naming_its_line(tmp_path, quote):
    lines = list(LINES)
    lines[10] = quote + lines[10]  # pandas' CSV rules merged lines 11..n into one field
    path = _write(tmp_path, lines)
    with pytest.raises(ValueError, match="line 11: expected unquoted numbers") as info:
        load_sonar(path)
    assert path in str(info.value)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_sonar_lines_are_kept_or_the_file_fails(tmp_path, data):
    """Random characters inserted into random lines: every row survives, or a line is named."""
    lines = list(LINES[:20])
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        at = data.draw(st.integers(0, len(lines[index])))
        junk = data.draw(st.text(alphabet="\"',;\t x0.5MR\\\r", min_size=1, max_size=3))
        lines[index] = lines[index][:at] + junk + lines[index][at:]
    path = _write(tmp_path, lines)
    try:
        X, y = load_sonar(path)
    except ValueError as err:
        assert path in str(err) and "line " in str(err)
    else:
        assert len(X) == len(y) == sum(1 for line in lines if line.strip())


def test_bytes_that_are_not_utf8_name_the_line(tmp_path):
    path = tmp_path / "sonar.csv"
    path.write_bytes(("\n".join(LINES[:5]) + "\n").encode() + b"\xff0.1,0.2\n")
    with pytest.raises(ValueError, match="line 6: .*not UTF-8"):
        load_sonar(str(path))


class _SilentServer:
    """Accepts connections and never answers."""

    def __enter__(self) -> str:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/sonar.all-data"

    def __exit__(self, *args) -> None:
        self.sock.close()


def test_a_url_that_does_not_answer_times_out_naming_it():
    with _SilentServer() as url:
        start = time.perf_counter()
        with pytest.raises(TimeoutError, match="no answer within 0.3 s") as info:
            load_sonar(url, timeout=0.3)
        assert time.perf_counter() - start < 5
    assert url in str(info.value)


def test_http_errors_name_the_url():
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/missing.csv"
    try:
        with pytest.raises(OSError, match="HTTP 404") as info:
            load_sonar(url, timeout=5)
        assert url in str(info.value)
    finally:
        server.shutdown()


@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_timeout_must_be_positive(timeout):
    with pytest.raises(ValueError, match="timeout"):
        load_sonar(timeout=timeout)


# ------------------------------------------------------------------ image folders
def _png(path: str, value: int = 10) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", (6, 4), (value, 0, 0)).save(path)


def test_link_loops_end_and_each_real_folder_is_listed_once(tmp_path):
    root = tmp_path / "data"
    _png(str(root / "cats" / "a.png"))
    _png(str(root / "cats" / "sub" / "b.png"))
    os.symlink(root / "cats", root / "cats" / "sub" / "loop")  # cats/sub/loop -> cats
    os.symlink(root / "cats" / "sub", root / "cats" / "again")  # a second way into sub
    for follow in (False, True):
        batches = flow_from_directory(str(root), target_size=(4, 6), follow_links=follow)
        real = sorted(os.path.realpath(p) for p in batches.filepaths)
        assert len(real) == len(set(real)) == 2, batches.filenames
    batches.close()


def test_follow_links_enters_a_linked_folder(tmp_path):
    outside = tmp_path / "outside"
    _png(str(outside / "c.png"))
    _png(str(tmp_path / "data" / "dogs" / "d.png"))
    os.symlink(outside, tmp_path / "data" / "dogs" / "more")
    plain = flow_from_directory(str(tmp_path / "data"), target_size=(4, 6))
    linked = flow_from_directory(str(tmp_path / "data"), target_size=(4, 6), follow_links=True)
    assert plain.filenames == [os.path.join("dogs", "d.png")]
    assert linked.filenames == [
        os.path.join("dogs", "d.png"),
        os.path.join("dogs", "more", "c.png"),
    ]


def _truncated_jpeg(path: str) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, format="JPEG")
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_predicting_a_folder_with_a_late_unreadable_image_never_shifts_rows(tmp_path):
    for k in range(3):
        _png(str(tmp_path / "test" / f"{k}.png"), 40 * k)
    _truncated_jpeg(str(tmp_path / "test" / "0b.jpg"))  # header fine, data cut
    model = Sequential([Flatten(input_shape=(4, 6, 3)), Dense(1, kernel_initializer="ones")])
    batches = flow_from_directory(
        str(tmp_path), target_size=(4, 6), class_mode=None, shuffle=False, batch_size=2
    )
    assert batches.filenames[1] == os.path.join("test", "0b.jpg")
    with pytest.raises(ValueError, match="0b.jpg.*cannot be left out"):
        model.predict(batches, verbose=0)
    batches.close()


def test_training_batches_skip_a_late_unreadable_image_keeping_labels_aligned(tmp_path):
    _png(str(tmp_path / "a" / "a0.png"), 10)
    _truncated_jpeg(str(tmp_path / "a" / "a1.jpg"))
    _png(str(tmp_path / "b" / "b0.png"), 200)
    batches = flow_from_directory(str(tmp_path), target_size=(4, 6), batch_size=3, seed=1)
    x, y = batches[0]
    assert x.shape[0] == y.shape[0] == 2
    label_of_red = {10: [1, 0], 200: [0, 1]}  # each image stays with its own label
    assert [label_of_red[int(v)] for v in x[:, 0, 0, 0]] == y.tolist()
    batches.close()
    in_order = flow_from_directory(str(tmp_path), target_size=(4, 6), shuffle=False)
    with pytest.raises(ValueError, match="a1.jpg.*cannot be left out"):
        in_order[0]
    in_order.close()


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_16_bit_grayscale_keeps_its_values(tmp_path, interpolation):
    values = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
    path = str(tmp_path / "g16.png")
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"
    array = img_to_array(load_img(path, color_mode="grayscale"))
    assert array.shape == (3, 4, 1) and array.dtype == np.float32
    np.testing.assert_array_equal(array[:, :, 0], values)
    resized = img_to_array(load_img(path, "grayscale", (6, 8), interpolation))
    assert resized.shape == (6, 8, 1) and resized.max() > 255


def test_16_bit_grayscale_in_a_folder_iterator(tmp_path):
    values = np.full((4, 6), 40000, dtype=np.uint16)
    os.makedirs(tmp_path / "c")
    Image.fromarray(values).save(str(tmp_path / "c" / "g.png"))
    batches = DirectoryIterator(
        str(tmp_path), target_size=(4, 6), color_mode="grayscale", class_mode=None
    )
    assert batches[0].max() == 40000
    batches.close()
