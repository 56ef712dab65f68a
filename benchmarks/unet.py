"""minidl's U-Net (``applications.UNet``) beside the same network in Keras 3 and PyTorch.

Usage::

    python -m benchmarks.unet --quick --backends numpy,theano   # 3 rounds per configuration
    python -m benchmarks.unet                                   # 5 rounds, every backend
    python -m benchmarks.unet --only train:8x128 --backends numpy --no-memory

The network is ``UNet((size, size, 1), depth=3, filters=32)``: 3x3 convolutions without
bias, each followed by batch normalisation (momentum 0.9, epsilon 1e-3) and a ReLU, 2x2
max-pools, 2x2 transposed convolutions with stride 2 to upsample, ``Concatenate`` skips and a
1x1 sigmoid ``mask`` (about 1.9 million parameters). Configurations: a training step
(``train_on_batch``; SGD on binary cross-entropy, batch normalisation on batch statistics)
and a prediction (``predict_on_batch``; moving statistics) at batch 8 on 128x128 images and
at batch 1 on 256x256 images. Rows: minidl on each backend, Keras 3 on TensorFlow (the same
layers and names through its functional API) and PyTorch (an ``nn.Module`` with the weights
converted from the Keras layout), each when installed, all from the same weights on the same
batch. The value columns give each row's loss, or its mean mask probability, at steps 1 and
2; they agree when the rows compute the same thing. The issue sets no speed targets for the
U-Net: the report gives the ratios to Keras 3. How rows are timed and weighed is in
``benchmarks.real_models``. Writes ``unet.json`` and ``unet.md`` to ``--out``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks import real_models
from benchmarks.harness import Prepared
from benchmarks.real_models import Config, averaged

DEPTH, FILTERS, CHANNELS = 3, 32, 1
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-3  # minidl's UNet: momentum 0.9, the layer's default epsilon
LEARNING_RATE = 0.05

CONFIGS = tuple(
    Config(kind, batch, size)
    for batch, size in ((8, 128), (1, 256))
    for kind in ("train", "predict")
)


def _width(level: int) -> int:
    """Channels of the convolutions at ``level`` (1 at full size, ``DEPTH + 1`` = bottleneck)."""
    return FILTERS * 2 ** (level - 1)


def batch_data(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """One batch of one-channel images and their binary masks (fixed seed)."""
    rng = np.random.default_rng(config.batch * 1000 + config.size)
    x = rng.uniform(-1.0, 1.0, (config.batch, config.size, config.size, CHANNELS))
    y = (x > 0.3).astype("float32")
    return x.astype("float32"), y


def initial_weights() -> dict[str, list[np.ndarray]]:
    """Each weighted layer's arrays in the Keras layout, by layer name (fixed seed).

    Convolution kernels are ``(kh, kw, in, out)``, transposed-convolution kernels
    ``(kh, kw, out, in)``; batch normalisation holds gamma, beta, moving mean and moving
    variance, drawn away from 1 and 0 so that a prediction really uses them.
    """
    rng = np.random.default_rng(0)
    weights: dict[str, list[np.ndarray]] = {}

    def conv_block(prefix: str, channels: int, width: int) -> None:
        for number, fan_in in ((1, channels), (2, width)):
            scale = np.sqrt(2.0 / (9 * fan_in))  # He normal
            weights[f"{prefix}_conv{number}"] = [rng.normal(0, scale, (3, 3, fan_in, width))]
            weights[f"{prefix}_bn{number}"] = [
                rng.uniform(0.8, 1.2, width),
                rng.normal(0.0, 0.1, width),
                rng.normal(0.0, 0.1, width),
                rng.uniform(0.8, 1.2, width),
            ]

    channels = CHANNELS
    for level in range(1, DEPTH + 1):
        conv_block(f"enc{level}", channels, _width(level))
        channels = _width(level)
    conv_block("bottleneck", channels, _width(DEPTH + 1))
    channels = _width(DEPTH + 1)
    for level in range(DEPTH, 0, -1):
        width = _width(level)
        limit = np.sqrt(6.0 / (4 * channels + 4 * width))  # Glorot uniform
        kernel = rng.uniform(-limit, limit, (2, 2, width, channels))
        weights[f"dec{level}_up"] = [kernel, rng.normal(0.0, 0.1, width)]
        conv_block(f"dec{level}", 2 * width, width)  # the upsampled and the skipped features
        channels = width
    limit = np.sqrt(6.0 / (channels + 1))
    weights["mask"] = [rng.uniform(-limit, limit, (1, 1, channels, 1)), np.zeros(1)]
    return {name: [w.astype("float32") for w in arrays] for name, arrays in weights.items()}


def assign_weights(model: Any, weights: dict[str, list[np.ndarray]]) -> None:
    """Set every weighted layer of a minidl or Keras ``model`` from ``weights``, by name."""
    weighted = {layer.name: layer for layer in model.layers if layer.get_weights()}
    if set(weighted) != set(weights):
        raise ValueError(
            "expected the U-Net's weighted layers to be those of `initial_weights()`. "
            f"Received: only in the model {sorted(set(weighted) - set(weights))}, "
            f"only in the weights {sorted(set(weights) - set(weighted))}"
        )
    for name, arrays in weights.items():
        weighted[name].set_weights(arrays)


def minidl_row(backend: str, config: Config) -> Prepared:
    """minidl's ``UNet`` on ``backend``, SGD on binary cross-entropy."""
    from benchmarks.minidl_rows import use_backend

    use_backend(backend, "cpu")
    from minidl.applications import UNet
    from minidl.optimizers import SGD

    model = UNet((config.size, config.size, CHANNELS), depth=DEPTH, filters=FILTERS)
    model.compile(optimizer=SGD(learning_rate=LEARNING_RATE), loss="binary_crossentropy")
    assign_weights(model, initial_weights())
    x, y = batch_data(config)
    return real_models.minidl_prepared(backend, model, config, x, y, averaged)


def keras_unet(keras: Any, size: int) -> Any:
    """The same U-Net built with Keras 3's functional API, with minidl's layer names."""
    layers = keras.layers

    def conv_block(x: Any, prefix: str, width: int) -> Any:
        for number in (1, 2):
            x = layers.Conv2D(
                width, 3, padding="same", use_bias=False, name=f"{prefix}_conv{number}"
            )(x)
            x = layers.BatchNormalization(
                momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{prefix}_bn{number}"
            )(x)
            x = layers.Activation("relu", name=f"{prefix}_relu{number}")(x)
        return x

    image = keras.Input(shape=(size, size, CHANNELS), name="image")
    x, skips = image, []
    for level in range(1, DEPTH + 1):
        x = conv_block(x, f"enc{level}", _width(level))
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, "bottleneck", _width(DEPTH + 1))
    for level in range(DEPTH, 0, -1):
        up = layers.Conv2DTranspose(
            _width(level), 2, strides=2, padding="same", name=f"dec{level}_up"
        )(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([up, skips[level - 1]])
        x = conv_block(x, f"dec{level}", _width(level))
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(x)
    return keras.Model(image, mask, name="unet")


def keras_row(config: Config) -> Prepared:
    """Keras 3's U-Net on TensorFlow with the same weights, loss and optimizer."""
    from benchmarks.peers import require_keras

    keras = require_keras()
    model = keras_unet(keras, config.size)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE), loss="binary_crossentropy"
    )
    assign_weights(model, initial_weights())
    x, y = batch_data(config)
    return real_models.keras_prepared(model, config, x, y, averaged)


def torch_unet(torch: Any, weights: dict[str, list[np.ndarray]]) -> Any:
    """The U-Net as a PyTorch module (NCHW) returning logits, its layers made from ``weights``.

    Kernels ``(kh, kw, in, out)`` become ``Conv2d``'s ``(out, in, kh, kw)`` and transposed
    kernels ``(kh, kw, out, in)`` become ``ConvTranspose2d``'s ``(in, out, kh, kw)``: the same
    axis order ``(3, 2, 0, 1)``; neither flips the taps. ``BatchNorm2d`` takes momentum
    ``1 - 0.9`` (PyTorch weighs the new batch) and the same epsilon; like Keras it normalises
    with the biased batch variance, though it keeps the unbiased one in its moving variance.
    """
    nn = torch.nn
    modules = nn.ModuleDict()
    for name, arrays in weights.items():
        shape = arrays[0].shape
        if "_bn" in name:
            module = nn.BatchNorm2d(shape[0], eps=BN_EPSILON, momentum=1.0 - BN_MOMENTUM)
            params = (module.weight, module.bias, module.running_mean, module.running_var)
        elif name.endswith("_up"):
            module = nn.ConvTranspose2d(shape[3], shape[2], shape[0], stride=shape[0])
            params = (module.weight, module.bias)
        else:
            bias = len(arrays) > 1
            module = nn.Conv2d(shape[2], shape[3], shape[0], padding=shape[0] // 2, bias=bias)
            params = (module.weight, module.bias) if bias else (module.weight,)
        with torch.no_grad():
            for param, array in zip(params, arrays, strict=True):
                value = array.transpose(3, 2, 0, 1) if array.ndim == 4 else array
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        modules[name] = module

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.named = modules

        def conv_block(self, x: Any, prefix: str) -> Any:
            for number in (1, 2):
                x = self.named[f"{prefix}_conv{number}"](x)
                x = torch.relu(self.named[f"{prefix}_bn{number}"](x))
            return x

        def forward(self, x: Any) -> Any:
            skips = []
            for level in range(1, DEPTH + 1):
                x = self.conv_block(x, f"enc{level}")
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.conv_block(x, "bottleneck")
            for level in range(DEPTH, 0, -1):
                x = torch.cat([self.named[f"dec{level}_up"](x), skips[level - 1]], dim=1)
                x = self.conv_block(x, f"dec{level}")
            return self.named["mask"](x)

    return UNet()


def torch_row(config: Config) -> Prepared:
    """The same U-Net in PyTorch: SGD on ``BCEWithLogitsLoss``, sigmoid for predictions."""
    torch = real_models.require_torch()
    model = torch_unet(torch, initial_weights())
    x, y = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in batch_data(config))
    return real_models.torch_prepared(
        model,
        config,
        torch.from_numpy(x),
        torch.from_numpy(y),
        torch.nn.BCEWithLogitsLoss(),
        LEARNING_RATE,
        torch.sigmoid,
        averaged,
    )


BENCHMARK = real_models.ModelBenchmark(
    name="unet",
    title="U-Net benchmark",
    configs=CONFIGS,
    minidl_row=minidl_row,
    keras_row=keras_row,
    torch_row=torch_row,
    summary=(
        f"`UNet((size, size, {CHANNELS}), depth={DEPTH}, filters={FILTERS})`, batch "
        f"normalisation, transposed-convolution upsampling; SGD (learning rate {LEARNING_RATE}) "
        "on binary cross-entropy. Value columns: the loss (train) or the mean mask "
        "probability (predict) at steps 1 and 2. No speed targets: ratios to Keras 3 only."
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write ``unet.json`` / ``unet.md``; print the markdown."""
    return real_models.main(BENCHMARK, argv)


if __name__ == "__main__":
    sys.exit(main())
