"""SpatialDropout2D: dropout of whole feature maps (channels) of channels-last images."""

from __future__ import annotations

from typing import Any

from minidl import backend as K
from minidl.layers.convolutional import IMAGE_LAYOUT, ShapeTuple, check_data_format
from minidl.layers.core import Dropout
from minidl.layers.data_format import channels_first_capable


@channels_first_capable
class SpatialDropout2D(Dropout):
    """Zero whole channels of each image with probability ``rate`` while training.

    Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels
    barely regularises a convolution; this drops a channel of one sample everywhere at once
    and scales the kept channels by ``1 / (1 - rate)``. At inference it is the identity.

    Args:
        rate: fraction of channels to drop, in ``[0, 1)``.
        seed: fixes the sequence of masks.
        noise_shape: accepted for Keras 2 configs and ignored (as in Keras 2): the mask
            shape is always ``(batch, 1, 1, channels)``.
    """

    def __init__(
        self,
        rate: float,
        data_format: str | None = None,
        seed: int | None = None,
        noise_shape: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(rate, seed=seed, **kwargs)
        check_data_format(self, data_format, channels_first=True)

    def compute_output_shape(self, input_shape: ShapeTuple) -> ShapeTuple:
        self.check_input_rank(input_shape, 4, IMAGE_LAYOUT)
        return tuple(input_shape)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training or self.rate == 0:
            return inputs
        # one cell per (sample, channel), turned into ones: x ** 0 is 1 for every float
        # (NaN and inf too), so the mask never depends on the values
        corner = K.slice(inputs, (0, 0, 0, 0), (-1, 1, 1, -1))
        ones = K.stop_gradient(K.pow(corner, 0.0))
        return inputs * K.dropout(ones, self.rate, seed=self.seed)
