"""``data_format="channels_first"`` for image layers: the layer transposes, backends do not.

Backends compute channels-last only. A layer created with ``channels_first`` (or with
``data_format=None`` while ``K.image_data_format()`` is ``"channels_first"``) moves axis 1 to
the end of its input, runs its channels-last code, and moves the channel axis of a rank-3+
output back to position 1. Weights keep their channels-last layout, so weight files do not
depend on the data format.

>>> to_channels_last_shape((None, 3, 8, 6)), to_channels_first_shape((None, 8, 6, 3))
((None, 8, 6, 3), (None, 3, 8, 6))
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from minidl import backend as K

DATA_FORMATS = ("channels_last", "channels_first")
KERAS1_DIM_ORDERING = {"tf": "channels_last", "th": "channels_first", "default": None}

ShapeTuple = tuple[int | None, ...]


def resolve_data_format(layer: Any, data_format: str | None, channels_first: bool) -> str:
    """The layer's data format: ``data_format``, else ``K.image_data_format()``.

    Raises:
        ValueError: for an unknown name, or ``channels_first`` on a layer that cannot
            transpose (``channels_first=False``).
    """
    resolved = K.image_data_format() if data_format is None else data_format
    allowed = DATA_FORMATS if channels_first else ("channels_last",)
    if resolved not in allowed:
        expected = (
            "'channels_last' or 'channels_first'"
            if channels_first
            else "'channels_last' (this layer computes on (batch, height, width, channels); "
            "transpose channels-first data with numpy.transpose(x, (0, 2, 3, 1)))"
        )
        raise layer.invalid_argument("data_format", expected, data_format)
    return resolved


def to_channels_last_shape(shape: Sequence[int | None]) -> ShapeTuple:
    """``(batch, channels, *spatial)`` -> ``(batch, *spatial, channels)``."""
    shape = tuple(shape)
    return shape if len(shape) < 3 else (shape[0], *shape[2:], shape[1])


def to_channels_first_shape(shape: Sequence[int | None]) -> ShapeTuple:
    """``(batch, *spatial, channels)`` -> ``(batch, channels, *spatial)``."""
    shape = tuple(shape)
    return shape if len(shape) < 3 else (shape[0], shape[-1], *shape[1:-1])


def _to_last(x: Any) -> Any:
    rank = K.ndim(x)
    return x if rank < 3 else K.transpose(x, (0, *range(2, rank), 1))


def _to_first(x: Any) -> Any:
    rank = K.ndim(x)
    return x if rank < 3 else K.transpose(x, (0, rank - 1, *range(1, rank - 1)))


def channels_first_capable(cls: type) -> type:
    """Class decorator: run ``build``/``call``/``compute_output_shape`` channels-last when the
    instance's ``data_format`` is ``channels_first``, transposing around them; ``get_config``
    gains the ``data_format`` key. Methods already wrapped (inherited) are left alone."""

    def first(self: Any) -> bool:
        """channels_first, and not already inside a transposed method (whose own calls of
        ``compute_output_shape`` and the like use channels-last shapes)."""
        inside = self.__dict__.get("_inside_channels_last", 0)
        return not inside and getattr(self, "data_format", "channels_last") == "channels_first"

    def channels_last(self: Any, run: Any) -> Any:
        self._inside_channels_last = self.__dict__.get("_inside_channels_last", 0) + 1
        try:
            return run()
        finally:
            self._inside_channels_last -= 1

    def build(method: Any) -> Any:
        def wrapped(self: Any, input_shape: Any) -> None:
            if not first(self):
                return method(self, input_shape)
            shape = to_channels_last_shape(input_shape)
            return channels_last(self, lambda: method(self, shape))

        return wrapped

    def call(method: Any) -> Any:
        def wrapped(self: Any, inputs: Any, training: bool = False, **kwargs: Any) -> Any:
            if not first(self):
                return method(self, inputs, training=training, **kwargs)
            x = _to_last(inputs)
            return _to_first(
                channels_last(self, lambda: method(self, x, training=training, **kwargs))
            )

        return wrapped

    def output_shape(method: Any) -> Any:
        def wrapped(self: Any, input_shape: Any) -> ShapeTuple:
            if not first(self):
                return method(self, input_shape)
            shape = to_channels_last_shape(input_shape)
            return to_channels_first_shape(channels_last(self, lambda: method(self, shape)))

        return wrapped

    def get_config(method: Any) -> Any:
        def wrapped(self: Any) -> dict[str, Any]:
            return {**method(self), "data_format": self.data_format}

        return wrapped

    for name, wrap in (
        ("build", build),
        ("call", call),
        ("compute_output_shape", output_shape),
        ("get_config", get_config),
    ):
        method = getattr(cls, name)
        if getattr(method, "_channels_first_wrapped", False):
            continue
        wrapped = functools.wraps(method)(wrap(method))
        wrapped._channels_first_wrapped = True
        setattr(cls, name, wrapped)
    return cls
