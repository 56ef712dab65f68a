"""Word indexing and bag-of-words matrices (Keras 2's ``keras.preprocessing.text``).

>>> tokenizer = Tokenizer(num_words=4)
>>> tokenizer.fit_on_texts(["the cat sat", "the cat ran", "the end"])
>>> tokenizer.word_index["the"], tokenizer.word_index["cat"]
(1, 2)
>>> tokenizer.texts_to_sequences(["the cat sat away", "the ran"])
[[1, 2, 3], [1]]
>>> tokenizer.texts_to_matrix(["the the cat"], mode="count").tolist()
[[0.0, 2.0, 1.0, 0.0]]
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
MODES = ("binary", "count", "tfidf", "freq")


def text_to_word_sequence(
    text: str, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[str]:
    """Split ``text`` into words after lower-casing it and turning ``filters`` into spaces.

    >>> text_to_word_sequence("Hello, World!  again")
    ['hello', 'world', 'again']
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a text string. Received: {text!r}")
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in text.split(split) if word]


def hashing_trick(
    text: str,
    n: int,
    hash_function: Callable[[str], int] | str | None = None,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
) -> list[int]:
    """Each word's index in ``[1, n - 1]`` from a hash (0 is left for padding), as Keras 2.

    ``hash_function``: None uses Python's ``hash`` (which varies between processes unless
    ``PYTHONHASHSEED`` is set, as in Keras), ``"md5"`` a stable MD5 digest, or a callable.

    >>> hashing_trick("the cat the", 10, "md5")[0] == hashing_trick("The", 10, "md5")[0]
    True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"`n` must be an integer >= 2. Received: n={n!r}")
    if hash_function is None:
        hash_function = hash
    elif hash_function == "md5":

        def hash_function(word: str) -> int:
            return int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16)

    elif not callable(hash_function):
        raise ValueError(
            f"`hash_function` must be None, 'md5' or a callable. Received: {hash_function!r}"
        )
    words = text_to_word_sequence(text, filters=filters, lower=lower, split=split)
    return [(hash_function(w) % (n - 1)) + 1 for w in words]


def one_hot(
    text: str, n: int, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[int]:
    """Keras 2's ``one_hot``: ``hashing_trick`` with Python's ``hash`` (indices, not vectors)."""
    return hashing_trick(text, n, hash_function=None, filters=filters, lower=lower, split=split)


class Tokenizer:
    """Index the words of a corpus by frequency and turn texts into sequences or matrices.

    Word indices start at 1 (0 is left for padding) and follow descending word counts, ties in
    order of first appearance. Only words with an index below ``num_words`` are kept by
    ``texts_to_sequences`` and the matrix methods.

    Args:
        num_words: keep the ``num_words - 1`` most frequent words; all when None.
        filters: characters removed from texts.
        lower: lower-case texts first.
        split: the word separator.
        char_level: treat every character as a token.
        oov_token: a token that stands in for out-of-vocabulary words (gets index 1).
    """

    def __init__(
        self,
        num_words: int | None = None,
        filters: str = DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        document_count: int = 0,
        **kwargs: Any,
    ) -> None:
        if "nb_words" in kwargs:  # the Keras 1 name, still accepted by Keras 2
            num_words = kwargs.pop("nb_words")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Tokenizer: {kwargs}")
        if num_words is not None and (
            isinstance(num_words, bool) or not isinstance(num_words, int) or num_words < 1
        ):
            raise ValueError(
                f"`num_words` must be a positive integer or None. Received: num_words={num_words!r}"
            )
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.split = split
        self.char_level = char_level
        self.oov_token = oov_token
        self.document_count = document_count
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_docs: defaultdict[str, int] = defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}
        self.index_docs: defaultdict[int, int] = defaultdict(int)

    def _tokens(self, text: str | Sequence[str]) -> list[str]:
        if self.char_level or isinstance(text, list):
            if self.lower:
                if isinstance(text, list):
                    return [t.lower() for t in text]
                return list(text.lower())
            return list(text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts: Iterable[str | Sequence[str]]) -> None:
        """Count words and documents in ``texts`` (strings, or lists of tokens) and index them."""
        if isinstance(texts, str):
            raise TypeError(
                "`fit_on_texts` expects a list of texts, not a single string. "
                f"Received: {texts[:40]!r}"
            )
        for text in texts:
            self.document_count += 1
            tokens = self._tokens(text)
            for token in tokens:
                self.word_counts[token] = self.word_counts.get(token, 0) + 1
            for token in set(tokens):
                self.word_docs[token] += 1
        by_count = sorted(self.word_counts.items(), key=lambda item: -item[1])  # stable: ties
        vocabulary = [] if self.oov_token is None else [self.oov_token]
        vocabulary += [word for word, _ in by_count if word != self.oov_token]
        self.word_index = {word: index for index, word in enumerate(vocabulary, start=1)}
        self.index_word = {index: word for word, index in self.word_index.items()}
        self.index_docs = defaultdict(int)
        for word, count in self.word_docs.items():
            self.index_docs[self.word_index[word]] = count

    def fit_on_sequences(self, sequences: Iterable[Sequence[int]]) -> None:
        """Count documents per index from integer sequences (needed by ``tfidf``)."""
        for seq in sequences:
            self.document_count += 1
            for index in set(seq):
                self.index_docs[int(index)] += 1

    def texts_to_sequences_generator(
        self, texts: Iterable[str | Sequence[str]]
    ) -> Iterator[list[int]]:
        """Yield each text as a list of word indices (unknown or rare words dropped or OOV)."""
        oov_index = None if self.oov_token is None else self.word_index.get(self.oov_token)
        for text in texts:
            vector = []
            for token in self._tokens(text):
                index = self.word_index.get(token)
                if index is not None and (self.num_words is None or index < self.num_words):
                    vector.append(index)
                elif oov_index is not None:
                    vector.append(oov_index)
            yield vector

    def texts_to_sequences(self, texts: Iterable[str | Sequence[str]]) -> list[list[int]]:
        """Each text as a list of word indices."""
        if isinstance(texts, str):
            raise TypeError(
                "`texts_to_sequences` expects a list of texts, not a single string. "
                f"Received: {texts[:40]!r}"
            )
        return list(self.texts_to_sequences_generator(texts))

    def sequences_to_texts(self, sequences: Iterable[Sequence[int]]) -> list[str]:
        """Turn index sequences back into space-joined words."""
        texts = []
        for seq in sequences:
            words = []
            for index in seq:
                word = self.index_word.get(int(index))
                if word is not None and (self.num_words is None or index < self.num_words):
                    words.append(word)
                elif self.oov_token is not None:
                    words.append(self.oov_token)
            texts.append(" ".join(words))
        return texts

    def texts_to_matrix(self, texts: Iterable[str | Sequence[str]], mode: str = "binary"):
        """A ``(len(texts), num_words)`` bag-of-words matrix (see ``sequences_to_matrix``)."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(
        self, sequences: Sequence[Sequence[int]], mode: str = "binary"
    ) -> np.ndarray:
        """A ``(len(sequences), num_words)`` float matrix, one row per sequence.

        Modes (Keras 2's formulas), for a word with ``c`` occurrences in a sequence of
        length ``n``: ``binary`` 1; ``count`` c; ``freq`` c / n; ``tfidf``
        ``(1 + log c) * log(1 + documents / (1 + documents containing the word))``.
        """
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        if self.num_words:
            width = self.num_words
        elif self.word_index:
            width = len(self.word_index) + 1
        else:
            raise ValueError(
                "Specify a dimension (`num_words` argument), or fit on some text data first. "
                "Received: num_words=None and an empty word index"
            )
        if mode == "tfidf" and not self.document_count:
            raise ValueError(
                "Fit the Tokenizer on some data before using tfidf mode. Received: no documents"
            )
        matrix = np.zeros((len(sequences), width))
        for row, seq in enumerate(sequences):
            if not len(seq):
                continue
            counts: defaultdict[int, int] = defaultdict(int)
            for index in seq:
                if index < width:
                    counts[int(index)] += 1
            for index, count in counts.items():
                if mode == "count":
                    matrix[row, index] = count
                elif mode == "freq":
                    matrix[row, index] = count / len(seq)
                elif mode == "binary":
                    matrix[row, index] = 1
                else:
                    tf = 1 + np.log(count)
                    idf = np.log(1 + self.document_count / (1 + self.index_docs.get(index, 0)))
                    matrix[row, index] = tf * idf
        return matrix

    def get_config(self) -> dict[str, Any]:
        """Settings and fitted counts (JSON-serialisable)."""
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The tokenizer as JSON that ``tokenizer_from_json`` reads back."""
        return json.dumps({"class_name": "Tokenizer", "config": self.get_config()}, **kwargs)


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """Rebuild a ``Tokenizer`` saved with ``to_json``."""
    config = dict(json.loads(json_string).get("config", {}))
    tables = {key: json.loads(config.pop(key)) for key in ("word_counts", "word_docs")}
    index_docs = json.loads(config.pop("index_docs"))
    index_word = json.loads(config.pop("index_word"))
    word_index = json.loads(config.pop("word_index"))
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = OrderedDict(tables["word_counts"])
    tokenizer.word_docs = defaultdict(int, tables["word_docs"])
    tokenizer.index_docs = defaultdict(int, {int(k): v for k, v in index_docs.items()})
    tokenizer.index_word = {int(k): v for k, v in index_word.items()}
    tokenizer.word_index = word_index
    return tokenizer
