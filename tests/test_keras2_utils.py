"""Keras 2 utilities and import paths: to_categorical, normalize, preprocessing, lazy submodules."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import minidl
from minidl.preprocessing.sequence import pad_sequences
from minidl.preprocessing.text import Tokenizer, text_to_word_sequence, tokenizer_from_json
from minidl.utils import normalize, to_categorical


def test_to_categorical_matches_keras_2_shapes_and_values():
    assert to_categorical([2, 0]).tolist() == [[0, 0, 1], [1, 0, 0]]
    labels = np.array([[1], [3]])  # a trailing axis of 1 is dropped, as in Keras 2
    assert to_categorical(labels, 5).shape == (2, 5)
    grid = np.array([[0, 1], [2, 1]])
    out = to_categorical(grid)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    assert out[1, 0].tolist() == [0, 0, 1]
    assert np.array_equal(out.argmax(-1), grid)
    from minidl.utils import np_utils

    assert np_utils.to_categorical is to_categorical


@pytest.mark.parametrize(
    ("labels", "num_classes", "message"),
    [([0, 3], 3, "num_classes=3"), ([-1, 0], None, "labels >= 0"), ([0.5], None, "whole")],
)
def test_to_categorical_rejects_bad_labels(labels, num_classes, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(labels, num_classes)


def test_normalize_divides_by_the_norm_and_leaves_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    out = normalize(x)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0], [2**-0.5, -(2**-0.5)]])
    np.testing.assert_allclose(normalize(x, axis=0, order=1)[:, 0], [0.75, 0.0, 0.25])


def test_import_minidl_is_light_and_submodules_load_on_use():
    code = (
        "import sys, minidl\n"
        "heavy = [m for m in ('tensorflow', 'pytensor', 'minidl.layers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert minidl.layers.Dense and minidl.utils.to_categorical and minidl.optimizers.SGD\n"
        "assert minidl.preprocessing.text.Tokenizer and minidl.constraints.max_norm\n"
        "assert 'tensorflow' not in sys.modules and 'pytensor' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        minidl.nope  # noqa: B018


def test_keras_2_import_paths_exist():
    from minidl.applications.vgg16 import decode_predictions, preprocess_input
    from minidl.layers.convolutional import Conv2D, Convolution2D, MaxPooling2D, ZeroPadding2D
    from minidl.layers.core import Activation, Dense, Dropout, Flatten, Reshape
    from minidl.preprocessing.image import (
        ImageDataGenerator,
        array_to_img,
        img_to_array,
        load_img,
    )

    assert Convolution2D is Conv2D and MaxPooling2D is minidl.layers.MaxPooling2D
    assert ZeroPadding2D and Activation and Dense and Dropout and Flatten and Reshape
    assert preprocess_input(np.zeros((1, 2, 2, 3))).shape == (1, 2, 2, 3)
    assert decode_predictions(np.eye(1000)[[3]], top=1)[0][0][2] == 1.0
    assert ImageDataGenerator and array_to_img and img_to_array and load_img


def test_array_img_round_trip_and_load_img(tmp_path):
    from minidl.preprocessing.image import array_to_img, img_to_array, load_img, save_img

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 7, 3)).astype("float32")
    img = array_to_img(pixels, scale=False)
    assert img.size == (7, 5) and img.mode == "RGB"
    np.testing.assert_array_equal(img_to_array(img), pixels)
    assert img_to_array(img, data_format="channels_first").shape == (3, 5, 7)
    first = array_to_img(pixels.transpose(2, 0, 1), data_format="channels_first", scale=False)
    np.testing.assert_array_equal(img_to_array(first), pixels)
    scaled = img_to_array(array_to_img(pixels / 1000.0))  # scale=True maps min..max to 0..255
    assert scaled.min() == 0 and scaled.max() == 255
    path = tmp_path / "x.png"
    save_img(path, pixels, scale=False)
    np.testing.assert_array_equal(img_to_array(load_img(path)), pixels)
    with pytest.warns(DeprecationWarning, match="grayscale"):
        gray = load_img(path, grayscale=True, target_size=(2, 3))
    assert img_to_array(gray).shape == (2, 3, 1)
    with pytest.raises(ValueError, match=r"rank 3.*Received: an array of shape \(5, 7\)"):
        array_to_img(pixels[:, :, 0])


def test_text_to_word_sequence_filters_and_lowers():
    assert text_to_word_sequence("The cat, the HAT!\tend") == ["the", "cat", "the", "hat", "end"]
    assert text_to_word_sequence("a-b c", filters="", split="-") == ["a", "b c"]


CORPUS = ["the cat sat on the mat", "the dog sat", "a cat and a dog", "cat"]


def test_tokenizer_indexes_by_count_with_ties_in_first_seen_order():
    tokenizer = Tokenizer()
    tokenizer.fit_on_texts(CORPUS)
    # counts: the 3, cat 3, sat 2, on 1, mat 1, dog 2, a 2, and 1 (first seen in that order)
    order = sorted(tokenizer.word_index, key=tokenizer.word_index.get)
    assert order == ["the", "cat", "sat", "dog", "a", "on", "mat", "and"]
    assert tokenizer.document_count == 4
    assert tokenizer.word_docs["the"] == 2 and tokenizer.word_docs["a"] == 1
    assert tokenizer.texts_to_sequences(["cat the ate"]) == [[2, 1]]
    limited = Tokenizer(num_words=3, oov_token="?")
    limited.fit_on_texts(CORPUS)
    assert limited.word_index["?"] == 1 and limited.word_index["the"] == 2
    # cat (index 3) is outside num_words=3 and zebra is unknown: both become the OOV index
    assert limited.texts_to_sequences(["cat the zebra"]) == [[1, 2, 1]]
    again = tokenizer_from_json(tokenizer.to_json())
    assert again.word_index == tokenizer.word_index
    assert (
        again.texts_to_matrix(["cat"], "tfidf").tolist()
        == tokenizer.texts_to_matrix(["cat"], "tfidf").tolist()
    )


def test_sequences_to_matrix_uses_keras_2_formulas():
    tokenizer = Tokenizer(num_words=6)
    tokenizer.fit_on_texts(CORPUS)
    seqs = [[1, 1, 2, 7], [], [3]]  # 7 >= num_words is dropped from the counts
    docs = {i: tokenizer.index_docs[i] for i in range(6)}
    binary = np.zeros((3, 6))
    count = np.zeros((3, 6))
    freq = np.zeros((3, 6))
    tfidf = np.zeros((3, 6))
    for row, seq in enumerate(seqs):
        for j in set(seq):
            if j >= 6:
                continue
            c = seq.count(j)
            binary[row, j] = 1
            count[row, j] = c
            freq[row, j] = c / len(seq)  # Keras 2 divides by the full sequence length
            tfidf[row, j] = (1 + np.log(c)) * np.log(1 + 4 / (1 + docs[j]))
    for mode, want in (("binary", binary), ("count", count), ("freq", freq), ("tfidf", tfidf)):
        np.testing.assert_allclose(tokenizer.sequences_to_matrix(seqs, mode=mode), want)
    assert freq[0, 1] == 0.5 and count[0, 1] == 2
    with pytest.raises(ValueError, match="mode"):
        tokenizer.sequences_to_matrix(seqs, mode="onehot")
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer().texts_to_matrix(["a"])
    with pytest.raises(TypeError, match="single string"):
        tokenizer.fit_on_texts("the cat")


def test_pad_sequences_padding_truncating_and_value():
    seqs = [[1, 2, 3, 4], [5], []]
    assert pad_sequences(seqs).tolist() == [[1, 2, 3, 4], [0, 0, 0, 5], [0, 0, 0, 0]]
    out = pad_sequences(seqs, maxlen=2, padding="post", truncating="post", value=-1)
    assert out.tolist() == [[1, 2], [5, -1], [-1, -1]] and out.dtype == np.int32
    assert pad_sequences(seqs, maxlen=3).tolist()[0] == [2, 3, 4]
    vectors = pad_sequences([np.ones((2, 3)), np.ones((1, 3))], dtype="float32")
    assert vectors.shape == (2, 2, 3) and vectors[1, 0].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="truncating"):
        pad_sequences(seqs, truncating="middle")


def test_utils_sequence_feeds_fit(backend):
    from minidl.layers import Dense
    from minidl.models import Sequential
    from minidl.utils import Sequence

    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = to_categorical((x[:, 0] > 0).astype(int), 2)

    class Batches(Sequence):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return x[index * 8 : (index + 1) * 8], y[index * 8 : (index + 1) * 8]

    minidl.set_random_seed(0)
    model = Sequential([Dense(2, activation="softmax", input_shape=(4,))])
    model.compile("sgd", "categorical_crossentropy", metrics=["acc"])
    history = model.fit(Batches(), epochs=2, verbose=0)
    assert len(history.history["acc"]) == 2


def test_hashing_trick_and_one_hot():
    from minidl.preprocessing.text import hashing_trick, one_hot

    words = "The cat sat on the mat".split()
    md5 = hashing_trick(" ".join(words), 7, "md5")
    assert len(md5) == 6 and all(1 <= i <= 6 for i in md5)
    assert md5[0] == md5[4]  # "The" and "the" lower-case to one word
    assert md5 == hashing_trick("the CAT, sat on the mat!", 7, "md5")
    custom = hashing_trick("a bb ccc", 100, hash_function=len)
    assert custom == [2, 3, 4]  # (len % 99) + 1
    indices = one_hot("x y x", 5)
    assert indices[0] == indices[2] and all(1 <= i <= 4 for i in indices)
    with pytest.raises(ValueError, match="n >= 2|`n`"):
        one_hot("x", 1)
