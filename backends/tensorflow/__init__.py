"""The TensorFlow backend: minidl's contract on ``tf.Variable``s and one ``tf.function`` per step.

Importing this package imports TensorFlow (quietly, see ``_runtime``); ``import minidl`` alone
never does. Parameters are ``tf.Variable``s; ``function`` traces a step once with
``tf.function`` (``tf.gradients`` works inside it) and ``MINIDL_TF_XLA=1`` turns on XLA.
TensorFlow places work on a GPU by itself when it sees one; ``backend_device`` reports it.
"""

from minidl.backends.interface import CONTRACT

from ._runtime import backend_device, epsilon, floatx, image_data_format
from .compile import function, gradients, stop_gradient
from .conv import conv2d, pool2d
from .host import numpy_function
from .math import (
    abs,
    argmax,
    batch_flatten,
    clip,
    concatenate,
    dot,
    equal,
    exp,
    expand_dims,
    greater,
    less,
    log,
    max,
    maximum,
    mean,
    min,
    minimum,
    one_hot,
    pow,
    reshape,
    round,
    sign,
    spatial_2d_padding,
    sqrt,
    square,
    squeeze,
    sum,
    transpose,
    where,
)
from .nn import (
    binary_crossentropy,
    categorical_crossentropy,
    elu,
    hard_sigmoid,
    relu,
    sigmoid,
    softmax,
    softplus,
    softsign,
    sparse_categorical_crossentropy,
    tanh,
)
from .random import dropout, random_normal, random_uniform
from .spatial import conv2d_transpose, slice
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
