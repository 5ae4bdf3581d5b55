"""The in-place SGD step over the flat parameter buffer (SPEC section 4)."""

from numba import njit, prange

from fastnn.kernels.config import MIN_PARALLEL_ELEMENTS


@njit(inline="always")
def _sgd_update(params, grad, velocity, lr, momentum, nesterov):
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


@njit(cache=True, nogil=True)
def _sgd_update_serial(params, grad, velocity, lr, momentum, nesterov):
    _sgd_update(params, grad, velocity, lr, momentum, nesterov)


@njit(cache=True, nogil=True, parallel=True)
def _sgd_update_parallel(params, grad, velocity, lr, momentum, nesterov):
    _sgd_update(params, grad, velocity, lr, momentum, nesterov)


@njit(cache=True, nogil=True)
def sgd_update(params, grad, velocity, lr, momentum, nesterov, n_blocks):
    """plain ``θ ← θ - αD``; momentum ``V ← μV + D, θ ← θ - αV``;
    Nesterov ``V ← μV + D, θ ← θ - α(D + μV)``.

    ``params``, ``grad``, ``velocity`` are (n_params,); ``velocity`` is only
    touched when ``momentum > 0``.  ``lr``, ``momentum`` have the array dtype.
    """
    if n_blocks > 1 and params.shape[0] >= MIN_PARALLEL_ELEMENTS:
        _sgd_update_parallel(params, grad, velocity, lr, momentum, nesterov)
    else:
        _sgd_update_serial(params, grad, velocity, lr, momentum, nesterov)
