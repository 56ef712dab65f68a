"""The theano backend: minidl's contract on PyTensor 3 (Theano's maintained successor).

A step traced by ``function`` becomes one ``pytensor.function`` whose updates advance shared
variables (weights, optimizer slots, random states), so a training step is one call into
compiled code. ``MINIDL_THEANO_MODE`` picks the PyTensor mode (``C`` by default when a BLAS
could be linked, ``NUMBA``, ``JAX`` for a GPU through JAX, ``FAST_COMPILE`` for quick tests);
see :mod:`minidl.backends.theano.settings`. Selected with ``MINIDL_BACKEND=theano`` (or its
alias ``pytensor``).
"""

from minidl.backends.interface import CONTRACT
from minidl.backends.theano import settings

settings.configure()

from minidl.backends.theano import fusion  # noqa: E402, F401 (registers its graph rewrite)
from minidl.backends.theano.compile import (  # noqa: E402
    CompiledStep,
    function,
    gradients,
    stop_gradient,
)
from minidl.backends.theano.conv import conv2d, pool2d  # noqa: E402
from minidl.backends.theano.host import numpy_function  # noqa: E402
from minidl.backends.theano.math import (  # noqa: E402
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
from minidl.backends.theano.nn import (  # noqa: E402
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
from minidl.backends.theano.random import dropout, random_normal, random_uniform  # noqa: E402
from minidl.backends.theano.spatial import conv2d_transpose, slice  # noqa: E402
from minidl.backends.theano.variables import (  # noqa: E402
    backend_device,
    cast,
    constant,
    dtype,
    epsilon,
    eval,
    floatx,
    get_value,
    image_data_format,
    int_shape,
    is_variable,
    ndim,
    set_value,
    variable,
)

__all__ = list(CONTRACT)  # every contract name, nothing else
