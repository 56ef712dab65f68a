"""The TensorFlow backend: minidl's contract on ``tf.Variable``s and one ``tf.function`` per step.

Importing this package imports TensorFlow (quietly, see ``_runtime``); ``import minidl`` alone
never does. Parameters are ``tf.Variable``s; ``function`` traces a step once with
``tf.function`` (``tf.gradients`` works inside it) and ``MINIDL_TF_XLA=1`` turns on XLA.
TensorFlow places work on a GPU by itself when it sees one; ``backend_device`` reports it.
"""

from minidl.backends.interface import CONTRACT

from ._runtime import backend_device, epsilon, floatx, image_data_format
from .compile import function, gradients, stop_gradient
from .host import numpy_function
from .math_ops import (
    abs,
    argmax,
    clip,
    dot,
    equal,
    exp,
    greater,
    less,
    log,
    max,
    maximum,
    mean,
    min,
    minimum,
    pow,
    round,
    sign,
    sqrt,
    square,
    sum,
    where,
)
from .nn import (
    binary_crossentropy,
    categorical_crossentropy,
    conv2d,
    elu,
    hard_sigmoid,
    pool2d,
    relu,
    sigmoid,
    softmax,
    softplus,
    softsign,
    sparse_categorical_crossentropy,
    tanh,
)
from .random_ops import dropout, random_normal, random_uniform
from .shape_ops import (
    batch_flatten,
    concatenate,
    expand_dims,
    one_hot,
    reshape,
    spatial_2d_padding,
    squeeze,
    transpose,
)
from .spatial_ops import conv2d_transpose, slice
from .variables import (
    cast,
    constant,
    dtype,
    eval,
    get_value,
    int_shape,
    is_variable,
    ndim,
    set_value,
    variable,
)

__all__ = list(CONTRACT)  # every contract name, nothing else
