"""The numpy backend: pure NumPy, its own reverse-mode autodiff and a static compiled plan.

Ops build a graph while ``function`` traces a step (``graph.py``); ``gradients.py`` holds every
derivative rule; ``compile.py`` turns the needed nodes into a flat plan of prepared callables.
Convolution and pooling use strided im2col views and matrix products (``conv.py``).

>>> import numpy as np
>>> from minidl.backends import numpy as B
>>> w = B.variable(np.ones((3, 2)))
>>> def step(x):
...     loss = B.mean(B.square(B.dot(x, w)))
...     (g,) = B.gradients(loss, [w])
...     return [loss], [(w, w - 0.1 * g)]
>>> f = B.function(step, [((None, 3), "float32")])
>>> [float(v) for v in f(np.ones((2, 3)))]
[9.0]
>>> B.get_value(w)[0]
array([0.7, 0.7], dtype=float32)
"""

from minidl.backends.interface import CONTRACT

from .compile import function
from .conv import conv2d, pool2d
from .gradients import gradients
from .host import numpy_function
from .ops_math import (
    abs,
    argmax,
    batch_flatten,
    cast,
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
    stop_gradient,
    sum,
    transpose,
    where,
)
from .ops_nn import (
    binary_crossentropy,
    categorical_crossentropy,
    dropout,
    elu,
    hard_sigmoid,
    random_normal,
    random_uniform,
    relu,
    sigmoid,
    softmax,
    softplus,
    softsign,
    sparse_categorical_crossentropy,
    tanh,
)
from .variables import (
    backend_device,
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
