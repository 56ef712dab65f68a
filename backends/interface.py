"""The backend contract: every function a minidl backend provides, documented once.

Layers, losses, optimizers, metrics and models call only these functions (through
``from minidl import backend as K``). A backend is a package that defines every name in
``CONTRACT`` with the same parameters as the stubs below; ``minidl.backend`` checks this when
the backend is loaded.

Fixed semantics, the same on every backend:

* Data is channels-last: images are ``(batch, height, width, channels)``.
* Convolution kernels are ``(kh, kw, in_channels, out_channels)`` and the operation is
  cross-correlation (no kernel flip). ``padding`` is ``"valid"`` or ``"same"``; ``"same"``
  pads ``total = max((out - 1) * stride + k - size, 0)`` with ``total // 2`` before and the
  rest after (TensorFlow's split), where ``out = ceil(size / stride)``.
* Float tensors are float32 unless a caller asks for float64 (``floatx()`` is ``"float32"``).
  Python scalars mixed with a tensor take the tensor's dtype.
* Tensors support ``+ - * / **``, unary ``-`` and comparison-free broadcasting with each other
  and with Python scalars, following NumPy's broadcasting rules.
* No silent dtype promotion: the ``+ - * / **`` operators, ``maximum``, ``minimum``,
  ``equal``, ``greater``, ``less``, ``where`` (its two branches), ``concatenate`` and ``dot``
  need their *tensor* operands to share one dtype; Python and NumPy scalars (and other
  non-tensor constants) are exempt and take the tensor's dtype. Two tensors of different
  dtypes raise ``TypeError`` from ``backends.errors.mixed_dtypes_error`` while the step is
  traced (never per call), e.g. "`add` needs operands of one dtype; cast one with K.cast
  first. Received: float32 and float64." Use ``cast`` to mix dtypes on purpose.
* A user mistake raises the same exception with the same message on every backend; the
  messages are built in ``backends.errors`` (wrong input rank or fixed size of a compiled
  step, wrong number of inputs, ``set_value`` with the wrong shape, mixed dtypes).

Two kinds of objects exist:

* **Variables** (``variable``) hold state that persists between calls (weights, optimizer
  slots, moving averages). ``get_value`` / ``set_value`` move NumPy arrays in and out.
* **Tensors** are the symbolic values that ops produce while a step function is being traced
  by ``function``. Every op below takes tensors or variables (and constants) and returns a
  tensor. Ops are only meaningful inside a function traced by ``function`` (or through
  ``eval`` on an expression built from constants and variables).

A *step* is a plain Python function over tensors; ``function`` traces it once and returns a
callable that runs the compiled step on NumPy arrays. Updates returned by the step are applied
after all outputs are computed, all at once (every update reads the values from before the
step), exactly like Theano's ``function(..., updates=...)``.

NaN and inf, values and gradients, are the same on every backend (tests/test_nan_propagation.py,
tests/test_nan_gradients.py):

* Values are what NumPy computes: a NaN in ``relu``, ``maximum``, ``max``, a max-pooling
  window, ``clip``, ``softmax`` and so on gives NaN, never a number; ``argmax`` picks the
  first NaN. ``softsign`` is ``x / (1 + |x|)``, so it is NaN at +-inf.
* Gradients are the chain rule in IEEE arithmetic (``inf * 0`` is NaN), with one rule for the
  ops that pick a piece or an operand by comparing values (``relu`` and its leaky and capped
  forms, ``elu``, ``hard_sigmoid``, ``clip``, ``maximum``, ``minimum``, ``max``, ``min``,
  max-pooling): the incoming gradient goes to what the forward picked (times the piece's
  slope); whatever was not picked gets an exact 0, even where the incoming gradient is inf
  or NaN, as with ``where``. A NaN outranks every number, as in NumPy: ``maximum(NaN, 1)``
  picks the NaN, and a slice or window holding NaN gives its gradient to its NaN cells only
  (0 to the rest). The derivative at a NaN is NaN: every NaN input cell of these ops gets a
  NaN gradient, never the incoming gradient passed on and never a silent 0. At +-inf the
  comparison picks as usual (``relu``'s slope is 1 at inf, ``clip``'s is 0; max-pooling
  gives a tie to the window's first maximum in row-major order, ``max`` and ``min`` split it).
  Max-pooling's two edge cases: an input cell that no window covers gets 0, or NaN when it is
  NaN and some window holds a NaN; "same" padding counts as ``-inf`` cells, so a window of
  ``-inf`` whose first cell is padding sends its gradient nowhere.
* The cross-entropies from logits (``from_logits=True``, or after ``sigmoid``/``softmax``)
  differentiate in closed form, ``g * (sigmoid(z) - t)`` and ``g * (softmax(z) * sum(t) -
  t)``, so an infinite logit gives an infinite gradient where its loss is inf, not NaN.
  ``sparse_categorical_crossentropy`` picks the target class's log-probability, so an
  ``-inf`` logit of another class adds 0 (``categorical_crossentropy`` computes
  ``sum(t * log_p)``, where a zero target at an ``-inf`` logit gives ``0 * -inf``, NaN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Shape = tuple  # a tuple of ints; ``None`` is allowed for a dimension known only at run time
Axis = int | tuple[int, ...] | None

# --------------------------------------------------------------------------- config


def floatx() -> str:
    """Return the default float dtype name, ``"float32"``."""


def epsilon() -> float:
    """Return the fuzz factor used to keep logs and divisions finite, ``1e-7``."""


def image_data_format() -> str:
    """Return ``"channels_last"``, the only image layout minidl uses."""


def backend_device() -> str:
    """Return where compiled steps run, e.g. ``"cpu"`` or ``"gpu"`` (informational)."""


# --------------------------------------------------------------- variables and constants


def variable(value: Any, dtype: str | None = None, name: str | None = None) -> Any:
    """Create a variable holding a copy of ``value`` (array-like).

    Args:
        value: initial value; its shape is the variable's fixed shape.
        dtype: dtype name; defaults to ``floatx()`` for float input and keeps integer dtypes.
        name: a readable name (used in errors and by the backend's graph).

    Returns:
        A backend variable usable in any op and in the ``updates`` of ``function``.
    """


def constant(value: Any, dtype: str | None = None) -> Any:
    """Return a constant tensor holding ``value`` (dtype defaults as in ``variable``)."""


def is_variable(x: Any) -> bool:
    """Return True when ``x`` is a variable created by this backend's ``variable``."""


def get_value(x: Any) -> Any:
    """Return a variable's current value as a new NumPy array (a copy, never a view)."""


def set_value(x: Any, value: Any) -> None:
    """Assign a NumPy array to a variable; ``value`` must have the variable's shape.

    Raises:
        ValueError: when the shape differs (``errors.set_value_shape_error``: it names the
            variable and both shapes).
    """


def int_shape(x: Any) -> tuple[int, ...]:
    """Return the static shape of a variable or constant as a tuple of ints."""


def dtype(x: Any) -> str:
    """Return the dtype name (``"float32"``, ``"int64"``, ...) of a tensor or variable."""


def ndim(x: Any) -> int:
    """Return the rank of a tensor or variable (static on every backend)."""


def cast(x: Any, dtype: str) -> Any:
    """Return ``x`` converted to ``dtype``; float->int truncates toward zero."""


def eval(x: Any) -> Any:  # noqa: A001 - the Keras name
    """Evaluate a tensor built only from constants and variables; return a NumPy array."""


# ------------------------------------------------------------------- element-wise math


def abs(x: Any) -> Any:  # noqa: A001
    """Element-wise absolute value (gradient ``sign(x)``)."""


def sign(x: Any) -> Any:
    """Element-wise sign: -1, 0 or 1 (gradient zero)."""


def square(x: Any) -> Any:
    """Element-wise ``x ** 2``."""


def sqrt(x: Any) -> Any:
    """Element-wise square root."""


def exp(x: Any) -> Any:
    """Element-wise natural exponential."""


def log(x: Any) -> Any:
    """Element-wise natural logarithm."""


def pow(x: Any, exponent: float) -> Any:  # noqa: A001
    """Element-wise ``x ** exponent`` for a Python scalar ``exponent``."""


def maximum(x: Any, y: Any) -> Any:
    """Element-wise maximum with broadcasting (gradient goes to ``x`` on ties)."""


def minimum(x: Any, y: Any) -> Any:
    """Element-wise minimum with broadcasting (gradient goes to ``x`` on ties)."""


def clip(x: Any, min_value: float, max_value: float) -> Any:
    """Clip values to ``[min_value, max_value]``; gradient is zero outside the interval."""


def round(x: Any) -> Any:  # noqa: A001
    """Round half to even, element-wise (gradient zero)."""


def equal(x: Any, y: Any) -> Any:
    """Element-wise ``x == y`` as a boolean tensor (no gradient)."""


def greater(x: Any, y: Any) -> Any:
    """Element-wise ``x > y`` as a boolean tensor (no gradient)."""


def less(x: Any, y: Any) -> Any:
    """Element-wise ``x < y`` as a boolean tensor (no gradient)."""


def where(condition: Any, x: Any, y: Any) -> Any:
    """Pick ``x`` where ``condition`` is true and ``y`` elsewhere, with broadcasting."""


# ------------------------------------------------------------------------- reductions


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:
    """Arithmetic mean over ``axis``; the result keeps ``x``'s float dtype."""


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis``; the gradient is split evenly between tied maxima."""


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis``; the gradient is split evenly between tied minima."""


def argmax(x: Any, axis: int = -1) -> Any:
    """Index of the largest value along ``axis`` as int64 (first one on ties; no gradient)."""


# ------------------------------------------------------------------------- shape ops


def reshape(x: Any, shape: Shape) -> Any:
    """Reshape to ``shape``, a tuple of ints where one entry may be -1."""


def batch_flatten(x: Any) -> Any:
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1 * d2 * ...)``."""


def transpose(x: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute axes like ``numpy.transpose`` (reverse them when ``axes`` is None)."""


def expand_dims(x: Any, axis: int = -1) -> Any:
    """Insert a length-1 axis at ``axis``."""


def squeeze(x: Any, axis: int) -> Any:
    """Remove the length-1 axis ``axis``."""


def concatenate(tensors: Sequence[Any], axis: int = -1) -> Any:
    """Join tensors along an existing axis."""


def spatial_2d_padding(x: Any, padding: tuple[tuple[int, int], tuple[int, int]]) -> Any:
    """Zero-pad an NHWC tensor: ``((top, bottom), (left, right))``."""


def slice(x: Any, start: Sequence[int], size: Sequence[int]) -> Any:  # noqa: A001 - Keras name
    """Return the static block ``x[start[0] : start[0] + size[0], ...]`` (``tf.slice``).

    Args:
        x: a tensor of rank ``len(start)``.
        start: one int ``>= 0`` per axis.
        size: one int per axis; ``-1`` takes every cell from ``start`` to the end (the only
            way to slice an axis whose size is known only at run time, such as the batch).

    Returns:
        A tensor of ``x``'s dtype; the gradient is zero outside the block.

    Raises:
        ValueError: when ``start``/``size`` have the wrong length or leave ``x``'s static shape.
    """


def one_hot(indices: Any, num_classes: int) -> Any:
    """Integer tensor of shape ``s`` -> ``floatx()`` tensor of shape ``s + (num_classes,)``."""


# -------------------------------------------------------------------- linear algebra


def dot(x: Any, y: Any) -> Any:
    """Matrix product over the last axis of ``x`` and the first axis of a 2-D ``y``.

    ``x`` has shape ``(..., n)`` and ``y`` shape ``(n, m)``; the result has shape ``(..., m)``.
    """


# --------------------------------------------------------------------------- nn ops


def relu(x: Any, alpha: float = 0.0, max_value: float | None = None) -> Any:
    """Rectified linear unit: ``x`` for ``x > 0``, ``alpha * x`` otherwise, capped at max_value."""


def sigmoid(x: Any) -> Any:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow."""


def hard_sigmoid(x: Any) -> Any:
    """Piece-wise linear sigmoid ``clip(0.2 * x + 0.5, 0, 1)``."""


def tanh(x: Any) -> Any:
    """Hyperbolic tangent."""


def softmax(x: Any, axis: int = -1) -> Any:
    """Softmax along ``axis``, computed after subtracting the maximum."""


def elu(x: Any, alpha: float = 1.0) -> Any:
    """Exponential linear unit: ``x`` for ``x > 0``, ``alpha * (exp(x) - 1)`` otherwise."""


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))`` computed without overflow."""


def softsign(x: Any) -> Any:
    """``x / (1 + |x|)``."""


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Element-wise binary cross-entropy (same shape as ``output``, no reduction).

    With ``from_logits=False`` ``output`` holds probabilities; they are clipped to
    ``[epsilon(), 1 - epsilon()]``. When ``output`` was produced by ``sigmoid`` in the same
    trace, every backend uses the logits it came from instead (stable, and the same value
    within float32 tolerance). With ``from_logits=True`` the stable form
    ``max(z, 0) - z * t + log(1 + exp(-|z|))`` is used.
    """


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    """Cross-entropy between one-hot (or soft) ``target`` and ``output`` along ``axis``.

    Returns a tensor with ``axis`` removed. With ``from_logits=False`` ``output`` holds
    probabilities: they are renormalised to sum to one and clipped to
    ``[epsilon(), 1 - epsilon()]`` before the log, unless ``output`` came from ``softmax`` in
    the same trace, in which case every backend computes ``log_softmax`` of its logits.
    """


def sparse_categorical_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    """Like ``categorical_crossentropy`` over the last axis, with integer class ``target``.

    ``target`` has the shape of ``output`` without its last axis (a trailing axis of length 1
    is also accepted) and any integer or float dtype holding whole numbers.
    """


def dropout(x: Any, rate: float, seed: int | None = None) -> Any:
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    A compiled step draws a fresh mask on every call; the sequence of masks is fixed by
    ``seed``.
    """


def conv2d(
    x: Any,
    kernel: Any,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
    dilation_rate: tuple[int, int] = (1, 1),
) -> Any:
    """2-D cross-correlation of NHWC ``x`` with an HWIO ``kernel``.

    Args:
        x: ``(batch, height, width, in_channels)``.
        kernel: ``(kh, kw, in_channels, out_channels)``.
        strides: ``(sh, sw)``.
        padding: ``"valid"`` or ``"same"`` (see the module docstring for the split).
        dilation_rate: ``(dh, dw)``; the kernel taps are ``dh`` rows and ``dw`` columns apart
            (atrous convolution): ``out[n, i, j, o] = sum x_padded[n, i * sh + a * dh,
            j * sw + b * dw, c] * kernel[a, b, c, o]``. Padding and output sizes use the
            effective kernel size ``(k - 1) * d + 1``. A rate above 1 needs ``strides ==
            (1, 1)`` (as in Keras 2 and TensorFlow) and a static height and width.

    Returns:
        ``(batch, out_height, out_width, out_channels)``, same dtype as ``x``; sizes from
        ``minidl.backends.shapes.conv_output_length`` with the effective kernel size.

    Raises:
        ValueError: a rate below 1, or a rate above 1 with strides other than 1.
    """


def conv2d_transpose(
    x: Any,
    kernel: Any,
    output_shape: Shape,
    strides: tuple[int, int] = (1, 1),
    padding: str = "valid",
) -> Any:
    """Transposed 2-D convolution (the gradient of ``conv2d`` w.r.t. its input).

    ``conv2d_transpose(x, kernel, output_shape, strides, padding)`` is the adjoint of
    ``z -> conv2d(z, kernel, strides, padding)`` for ``z`` of ``output_shape``:
    ``out[n, p, q, o] = sum x[n, i, j, c] * kernel[p + top - i * sh, q + left - j * sw, o, c]``
    over the ``i, j, c`` where the kernel index is in range, with ``top, left`` the cells
    ``"same"`` padding adds before an input of ``output_shape`` (TensorFlow's split; 0 for
    ``"valid"``). No kernel flip happens anywhere.

    Args:
        x: ``(batch, height, width, in_channels)``.
        kernel: ``(kh, kw, out_channels, in_channels)`` (Keras 2's Conv2DTranspose layout).
        output_shape: ``(batch, out_height, out_width, out_channels)``; the batch entry is
            ignored (it may be None). ``conv_output_length(out_height, kh, sh, padding)``
            must equal ``height`` (and likewise for the width).
        strides: ``(sh, sw)``.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        ``(batch, out_height, out_width, out_channels)``, same dtype as ``x``.

    Raises:
        ValueError: when ``output_shape`` does not map back onto ``x``'s height and width, or
            its channels differ from ``kernel``'s.
    """


def pool2d(
    x: Any,
    pool_size: tuple[int, int],
    strides: tuple[int, int] | None = None,
    padding: str = "valid",
    pool_mode: str = "max",
) -> Any:
    """Max or average pooling of an NHWC tensor.

    Args:
        x: ``(batch, height, width, channels)``.
        pool_size: ``(ph, pw)``.
        strides: ``(sh, sw)``; defaults to ``pool_size``.
        padding: ``"valid"`` or ``"same"``. With ``"same"``, padded cells are ignored: they
            never win a max and are not counted in an average (TensorFlow's semantics).
        pool_mode: ``"max"`` or ``"avg"``. Max-pool gradients go to the first maximum in
            each window (ties are measure-zero in tests).
    """


# ------------------------------------------------------------------------ randomness


def random_uniform(
    shape: Shape,
    minval: float = 0.0,
    maxval: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of uniform samples with static ``shape``, fresh on every call of a step."""


def random_normal(
    shape: Shape,
    mean: float = 0.0,
    stddev: float = 1.0,
    dtype: str | None = None,
    seed: int | None = None,
) -> Any:
    """A tensor of normal samples with static ``shape``, fresh on every call of a step."""


# ------------------------------------------------------------------ gradients, compiling


def gradients(loss: Any, variables: Sequence[Any]) -> list[Any]:
    """Return d(loss)/d(v) for each ``v`` (a variable or a traced input).

    ``loss`` must be a scalar. A ``v`` the loss does not depend on gets zeros of its shape.
    An op without a gradient rule raises ``NotImplementedError`` naming the op.
    """


def stop_gradient(x: Any) -> Any:
    """Return ``x`` unchanged, treated as a constant by ``gradients``."""


def numpy_function(fn: Callable[..., Any], inputs: Sequence[Any], shape: Shape, dtype: str) -> Any:
    """Run the NumPy function ``fn`` on the values of ``inputs`` each time a compiled step runs.

    A host callback inside a step (minidl.distribute averages gradients across workers with
    it). Calls run in data-dependency order; make one call take another's output to order
    them. ``gradients`` treats the result as a constant.

    Args:
        fn: called with one NumPy array per input, which it must not modify or keep;
            returns a new array of ``shape`` (``None`` sizes may vary) and ``dtype`` (not a
            view of an input).
        inputs: tensors or variables.
        shape: the static shape of the result.
        dtype: the dtype name of the result.

    Returns:
        A tensor holding ``fn``'s result.
    """


def function(
    fn: Callable[..., tuple[Sequence[Any], Sequence[tuple[Any, Any]]]],
    input_specs: Sequence[tuple[Shape, str]],
    name: str | None = None,
) -> Callable[..., list[Any]]:
    """Trace ``fn`` once and compile it into a reusable step.

    Args:
        fn: called once with one symbolic tensor per entry of ``input_specs``; returns
            ``(outputs, updates)``: a list of tensors, and a list of ``(variable, new_value)``
            pairs.
        input_specs: ``(shape, dtype)`` per input; ``None`` dimensions (typically the batch)
            may vary between calls without recompiling.
        name: a name for logs and the backend's graph.

    Returns:
        A callable ``step(*arrays)`` taking NumPy arrays (cast to the spec's dtype; a rank
        or a fixed size different from the spec raises ``ValueError`` from
        ``errors.input_shape_error``, a wrong number of arrays ``TypeError`` from
        ``errors.input_count_error``) and returning a list of NumPy arrays, one per output,
        after applying all updates simultaneously.
    """


CONTRACT: tuple[str, ...] = tuple(
    name
    for name, obj in list(globals().items())
    if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", None) == __name__
)
