"""Lowering pass: convolution and pooling steps split their blocks over threads.

Without it every kernel runs on the calling thread (BLAS keeps its own threads). With it,
ops that take ``workers`` get ``im2col.worker_count()`` threads: ``MINIDL_NUMPY_THREADS``,
else one per usable CPU; the kernels still run small ops on one thread. Element-wise ops and
``sum_to`` (``spec.SPLITS``) get them too, but only in a step that has such a convolution or
pooling: that step holds BLAS to one thread for the whole call, which a step of dense layers
alone should not.
"""

from __future__ import annotations

from .. import im2col
from .plan import Plan
from .spec import SPEC, SPLITS, WORKERS


def assign(plan: Plan) -> None:
    """Give every step whose kernel takes ``workers`` (or whose fused conv does) the threads."""
    count = im2col.worker_count()
    blocked, splitting = [], []
    for step in plan.steps:
        op = step.epilogue.conv.op if step.epilogue is not None else step.node.op
        spec = SPEC.get(op)
        if spec is not None and WORKERS in spec.options and step.into < 0:
            (splitting if SPLITS in spec.options else blocked).append(step)
    for step in blocked + (splitting if blocked else []):
        step.workers = count
