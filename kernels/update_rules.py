"""The optimizer's arithmetic: SGD (momentum, Nesterov), Adam, AdamW, clipping.

PyTorch's formulas (docs/design.md, section 4); see
:func:`fastnn.reference.optimizer_step`.  :func:`update` applies one step to
a block of a parameter matrix.  During training it runs on each thread's slab
of a weight gradient as soon as that slab is computed
(:mod:`fastnn.kernels.layer_steps`), so a step needs no pass of its own over
the parameters.
"""

from collections import namedtuple

import numpy as np
from numba import njit

from fastnn import codes
from fastnn.kernels.arrays import row_segment
from fastnn.kernels.config import INTERNAL
from fastnn.kernels.scalars import cast_like

#: One step's numbers, every real in the parameters' dtype.  ``code``,
#: ``nesterov``, ``lr``, ``momentum``, ``beta1``, ``beta2`` and ``eps`` are those
#: of :class:`fastnn.optim.StepSettings`; ``step_size`` and ``root_correction``
#: are Adam's bias corrections for this step; ``weight_factor`` is AdamW's
#: decoupled decay ``1 - αλ`` (1 for everything else); ``decay`` is the ``λ``
#: that goes into the weight gradient (0 for AdamW); ``keep`` is plain SGD's
#: ``1 - αλ``, the factor of the fused step ``W ← keep · W - α δᵀA``; ``zero``
#: and ``one`` are 0 and 1 in the dtype (a literal 1 would make Numba compute
#: float32 arithmetic in float64).
StepScalars = namedtuple("StepScalars", ["code", "nesterov", "lr", "momentum", "beta1",
                                         "beta2", "eps", "step_size", "root_correction",
                                         "weight_factor", "decay", "keep", "zero", "one"])


# compiled on its own (not inlined): its callers call it more than once
@njit(**INTERNAL)
def step_scalars(params, settings, t):
    """The :class:`StepScalars` of step number ``t`` (Adam's, counted from 1).

    The bias corrections are computed in float64 and rounded once to the
    dtype, as the reference does.
    """
    lr = settings.lr
    step_size = lr
    root_correction = cast_like(params, 1.0)
    if settings.code != codes.SGD and t > 0:
        # a float exponent: C's pow, as the reference's Python float ** int
        power = np.float64(t)
        step_size = cast_like(params, np.float64(lr) / (1 - np.float64(settings.beta1) ** power))
        root_correction = cast_like(params, np.sqrt(1 - np.float64(settings.beta2) ** power))
    weight_factor = cast_like(params, 1.0)
    decay = settings.weight_decay
    if settings.code == codes.ADAMW:
        decay = cast_like(params, 0.0)
        if settings.weight_decay != 0:
            weight_factor = cast_like(params,
                                      1 - np.float64(lr) * np.float64(settings.weight_decay))
    # 1 - lr·λ in float64 from the dtype's product, rounded once (as always before)
    keep = cast_like(params, 1 - lr * settings.weight_decay)
    return StepScalars(settings.code, bool(settings.nesterov), lr, settings.momentum,
                       settings.beta1, settings.beta2, settings.eps, step_size, root_correction,
                       weight_factor, decay, keep, cast_like(params, 0.0),
                       cast_like(params, 1.0))


@njit(inline="always")
def without_decay(s):
    """``s`` with no weight decay in the gradient (``decay`` 0)."""
    return StepScalars(s.code, s.nesterov, s.lr, s.momentum, s.beta1, s.beta2, s.eps,
                       s.step_size, s.root_correction, s.weight_factor, s.zero, s.keep, s.zero,
                       s.one)


@njit(inline="always")
def count_step(settings, step):
    """Count one more optimizer step (Adam's bias correction uses the count); returns it."""
    if settings.code != codes.SGD:
        step[0] += 1
    return step[0]


@njit(inline="always")
def update(P, G, S0, S1, s, weight_factor, r0, r1, c0, c1):
    """One optimizer step on the block ``r0:r1, c0:c1`` of same-shaped matrices.

    The loops run over row segments (:func:`fastnn.kernels.arrays.row_segment`)
    so that LLVM vectorises them.

    Parameters
    ----------
    P : ndarray, shape (m, n)
        Parameters, updated in place.
    G : ndarray, shape (m, n)
        Their gradient ``D``.
    S0, S1 : ndarray, shape (m, n)
        Optimizer state: SGD's velocity in ``S0`` (momentum only), Adam's
        moments ``m`` and ``v``.
    s : StepScalars
    weight_factor : scalar of the dtype
        AdamW's decay of these parameters (``s.weight_factor`` for weights, 1
        for biases).
    """
    keep1 = s.one - s.beta1
    keep2 = s.one - s.beta2
    for i in range(r0, r1):
        p = row_segment(P, i, c0, c1)
        g = row_segment(G, i, c0, c1)
        velocity = row_segment(S0, i, c0, c1)  # Adam's m
        second = row_segment(S1, i, c0, c1)  # Adam's v
        width = p.shape[0]
        if s.code == codes.SGD:
            if s.momentum == 0:
                for j in range(width):
                    p[j] -= s.lr * g[j]
            elif s.nesterov:
                for j in range(width):
                    v = s.momentum * velocity[j] + g[j]
                    velocity[j] = v
                    p[j] -= s.lr * (g[j] + s.momentum * v)
            else:
                for j in range(width):
                    v = s.momentum * velocity[j] + g[j]
                    velocity[j] = v
                    p[j] -= s.lr * v
        else:
            if weight_factor != 1:
                # AdamW's decoupled decay, before the step (as PyTorch does)
                for j in range(width):
                    p[j] *= weight_factor
            for j in range(width):
                gj = g[j]
                m_j = s.beta1 * velocity[j] + keep1 * gj
                v_j = s.beta2 * second[j] + keep2 * gj * gj
                velocity[j] = m_j
                second[j] = v_j
                p[j] -= s.step_size * m_j / (np.sqrt(v_j) / s.root_correction + s.eps)


@njit(inline="always")
def clip_gradient(grad, clip_norm):
    """Scale ``grad`` so its global L2 norm is at most ``clip_norm`` (0: off).

    PyTorch's ``clip_grad_norm_``: factor ``clip_norm / (norm + 1e-6)``,
    applied only when below 1, rounded once to the dtype (as the reference
    does).  Serial: one memory-bound pass, summed in float64 in a fixed order.
    """
    if clip_norm == 0:
        return
    squared = 0.0
    for i in range(grad.shape[0]):
        squared += np.float64(grad[i]) * np.float64(grad[i])
    factor = clip_norm / (np.sqrt(squared) + 1e-6)
    if factor < 1:
        scale = cast_like(grad, factor)
        for i in range(grad.shape[0]):
            grad[i] *= scale
