"""The in-place optimizer step over the flat buffers: clipping, SGD, Adam, AdamW.

SPEC section 4, PyTorch's formulas; see :func:`fastnn.reference.optimizer_step`.
Each loop runs once per parameter, so each has a serial and a parallel variant
(DESIGN rule 3), chosen by size.
"""

import numpy as np
from numba import njit, prange

from fastnn import codes
from fastnn.kernels.config import COMPILED, MIN_PARALLEL_ELEMENTS
from fastnn.kernels.scalars import cast_like
from fastnn.kernels.views import weight_view


@njit(inline="always")
def _threaded(n_blocks, n):
    return n_blocks > 1 and n >= MIN_PARALLEL_ELEMENTS


# ------------------------------------------------------------ clipping

@njit(inline="always")
def _squared_norm(x):
    total = 0.0
    for i in prange(x.shape[0]):
        total += np.float64(x[i]) * np.float64(x[i])
    return total


@njit(**COMPILED)
def _squared_norm_serial(x):
    return _squared_norm(x)


@njit(**COMPILED, parallel=True)
def _squared_norm_parallel(x):
    return _squared_norm(x)


@njit(inline="always")
def _scale(x, factor):
    for i in prange(x.shape[0]):
        x[i] *= factor


@njit(**COMPILED)
def _scale_serial(x, factor):
    _scale(x, factor)


@njit(**COMPILED, parallel=True)
def _scale_parallel(x, factor):
    _scale(x, factor)


@njit(inline="always")
def clip_gradient(grad, clip_norm, n_blocks):
    """Scale ``grad`` so its global L2 norm is at most ``clip_norm`` (0: off).

    PyTorch's ``clip_grad_norm_``: factor ``clip_norm / (norm + 1e-6)``,
    applied only when below 1.
    """
    if clip_norm == 0:
        return
    if _threaded(n_blocks, grad.shape[0]):
        squared = _squared_norm_parallel(grad)
    else:
        squared = _squared_norm_serial(grad)
    factor = clip_norm / (np.sqrt(squared) + 1e-6)
    if factor < 1:
        # rounded once to the dtype, as the reference does
        if _threaded(n_blocks, grad.shape[0]):
            _scale_parallel(grad, cast_like(grad, factor))
        else:
            _scale_serial(grad, cast_like(grad, factor))


# ------------------------------------------------------------ SGD

@njit(inline="always")
def _sgd(params, grad, velocity, lr, momentum, nesterov):
    n = params.shape[0]
    if momentum == 0:
        for i in prange(n):
            params[i] -= lr * grad[i]
    elif nesterov:
        for i in prange(n):
            v = momentum * velocity[i] + grad[i]
            velocity[i] = v
            params[i] -= lr * (grad[i] + momentum * v)
    else:
        for i in prange(n):
            v = momentum * velocity[i] + grad[i]
            velocity[i] = v
            params[i] -= lr * v


@njit(**COMPILED)
def _sgd_serial(params, grad, velocity, lr, momentum, nesterov):
    _sgd(params, grad, velocity, lr, momentum, nesterov)


@njit(**COMPILED, parallel=True)
def _sgd_parallel(params, grad, velocity, lr, momentum, nesterov):
    _sgd(params, grad, velocity, lr, momentum, nesterov)


# ------------------------------------------------------------ Adam

@njit(inline="always")
def _adam(params, grad, m, v, beta1, beta2, eps, step_size, root_correction):
    # 1 - beta in the dtype: with a literal 1 Numba would compute in float64
    keep1 = cast_like(params, 1.0) - beta1
    keep2 = cast_like(params, 1.0) - beta2
    for i in prange(params.shape[0]):
        g = grad[i]
        m_i = beta1 * m[i] + keep1 * g
        v_i = beta2 * v[i] + keep2 * g * g
        m[i] = m_i
        v[i] = v_i
        params[i] -= step_size * m_i / (np.sqrt(v_i) / root_correction + eps)


@njit(**COMPILED)
def _adam_serial(params, grad, m, v, beta1, beta2, eps, step_size, root_correction):
    _adam(params, grad, m, v, beta1, beta2, eps, step_size, root_correction)


@njit(**COMPILED, parallel=True)
def _adam_parallel(params, grad, m, v, beta1, beta2, eps, step_size, root_correction):
    _adam(params, grad, m, v, beta1, beta2, eps, step_size, root_correction)


@njit(inline="always")
def _decay_weights(params, table, factor):
    # AdamW's decoupled decay touches the weights only, never the biases
    for layer in range(table.shape[0]):
        W = weight_view(params, table, layer)
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                W[i, j] *= factor


@njit(**COMPILED)
def sgd_step(params, grad, state, settings, n_blocks):
    """SGD with momentum/Nesterov (clipping first); see :func:`optimizer_step`."""
    clip_gradient(grad, settings.clip_norm, n_blocks)
    if _threaded(n_blocks, params.shape[0]):
        _sgd_parallel(params, grad, state[0], settings.lr, settings.momentum, settings.nesterov)
    else:
        _sgd_serial(params, grad, state[0], settings.lr, settings.momentum, settings.nesterov)


@njit(**COMPILED)
def adam_step(params, grad, state, table, settings, step, n_blocks):
    """Adam/AdamW (clipping first); see :func:`optimizer_step`."""
    clip_gradient(grad, settings.clip_norm, n_blocks)
    step[0] += 1
    t = step[0]
    lr = settings.lr
    if settings.code == codes.ADAMW and settings.weight_decay != 0:
        _decay_weights(params, table,
                       cast_like(params, 1 - np.float64(lr) * np.float64(settings.weight_decay)))
    # bias corrections in float64, rounded once to the dtype (as the reference does)
    step_size = cast_like(params, np.float64(lr) / (1 - np.float64(settings.beta1) ** t))
    root_correction = cast_like(params, np.sqrt(1 - np.float64(settings.beta2) ** t))
    if _threaded(n_blocks, params.shape[0]):
        _adam_parallel(params, grad, state[0], state[1], settings.beta1, settings.beta2,
                       settings.eps, step_size, root_correction)
    else:
        _adam_serial(params, grad, state[0], state[1], settings.beta1, settings.beta2,
                     settings.eps, step_size, root_correction)


@njit(**COMPILED)
def optimizer_step(params, grad, state, table, settings, step, n_blocks):
    """One in-place optimizer step; see :func:`fastnn.reference.optimizer_step`.

    Parameters
    ----------
    params, grad : ndarray, shape (n_params,)
    state : ndarray, shape (rows, n_params)
    table : ndarray of int64, shape (L, 5)
    settings : fastnn.optim.StepSettings
    step : ndarray of int64, shape (1,)
    n_blocks : int
        Threads available (1: serial).
    """
    if settings.code == codes.SGD:
        sgd_step(params, grad, state, settings, n_blocks)
    else:
        adam_step(params, grad, state, table, settings, step, n_blocks)
