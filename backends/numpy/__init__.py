"""The numpy backend: pure NumPy, its own reverse-mode autodiff and a static compiled plan.

Two halves. The *spec*: ops build a graph while ``function`` traces a step (``graph``), and
each op's entry (``spec``) holds its forward beside its derivative rule, by topic in
``math``, ``nn``, ``conv`` and ``random``; ``gradients`` is the reverse sweep. The
*lowering*: ``compile`` schedules the needed nodes into a plan and runs the passes of
``lowering`` (``ordering``, ``pooled_slopes``, ``inplace``, ``fusion``, ``buffers``,
``threads``; the element-wise slabs it hands threads are in ``parallel``), each switchable
with ``MINIDL_NUMPY_PASSES``, then runs the plan as straight-line code.

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
from .math import (
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
