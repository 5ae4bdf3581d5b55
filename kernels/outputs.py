"""Output activations and their matched losses, one fused pass over the rows.

For each row the pass reads the logits ``z`` once and yields the loss (from
the logits: log-sum-exp for softmax, softplus for sigmoid), whether the row is
misclassified, and, when asked, the output delta ``(o(z) - y) · scale``.  Loss
arithmetic is float64 whatever the array dtype.
"""

import numpy as np
from numba import njit, prange

from fastnn import codes
from fastnn.kernels.config import COMPILED, MIN_PARALLEL_ELEMENTS
from fastnn.kernels.elementwise import sigmoid


@njit(inline="always")
def _softmax_row(z, y, scale, delta, write_delta):
    k = z.shape[0]
    z_max = np.float64(z[0])
    z_arg = 0
    y_max = y[0]
    y_arg = 0
    for j in range(1, k):
        if z[j] > z_max:
            z_max = np.float64(z[j])
            z_arg = j
        if y[j] > y_max:
            y_max = y[j]
            y_arg = j
    total = 0.0
    if write_delta:
        # each exp once (they were most of the pass): parked in delta until
        # the total is known
        for j in range(k):
            e = np.exp(z[j] - z_max)
            delta[j] = e
            total += e
    else:
        for j in range(k):
            total += np.exp(z[j] - z_max)
    log_sum_exp = z_max + np.log(total)
    loss = 0.0
    for j in range(k):
        loss += y[j] * (log_sum_exp - z[j])
    if write_delta:
        for j in range(k):
            delta[j] = (delta[j] / total - y[j]) * scale
    return loss, 1.0 if z_arg != y_arg else 0.0


@njit(inline="always")
def _sigmoid_row(z, y, scale, delta, write_delta):
    loss = 0.0
    wrong = 0.0
    for j in range(z.shape[0]):
        zj = np.float64(z[j])
        loss += max(zj, 0.0) + np.log1p(np.exp(-abs(zj))) - y[j] * zj
        if (zj > 0) != (y[j] > 0.5):
            wrong = 1.0
        if write_delta:
            delta[j] = (sigmoid(zj) - y[j]) * scale
    return loss, wrong


@njit(inline="always")
def _identity_row(z, y, scale, delta, write_delta):
    loss = 0.0
    for j in range(z.shape[0]):
        diff = np.float64(z[j]) - y[j]
        loss += 0.5 * diff * diff
        if write_delta:
            delta[j] = diff * scale
    return loss, np.nan


@njit(inline="always")
def _output_pass(output, Z, Y, weights, scale, delta, write_delta):
    loss_total = 0.0
    error_total = 0.0
    for i in prange(Z.shape[0]):
        w = np.float64(weights[i])
        row_scale = w * scale
        if output == codes.OUT_SOFTMAX:
            loss, wrong = _softmax_row(Z[i], Y[i], row_scale, delta[i], write_delta)
        elif output == codes.OUT_SIGMOID:
            loss, wrong = _sigmoid_row(Z[i], Y[i], row_scale, delta[i], write_delta)
        else:
            loss, wrong = _identity_row(Z[i], Y[i], row_scale, delta[i], write_delta)
        loss_total += w * loss
        error_total += w * wrong
    return loss_total, error_total


@njit(**COMPILED)
def _output_pass_serial(output, Z, Y, weights, scale, delta, write_delta):
    return _output_pass(output, Z, Y, weights, scale, delta, write_delta)


@njit(**COMPILED, parallel=True)
def _output_pass_parallel(output, Z, Y, weights, scale, delta, write_delta):
    return _output_pass(output, Z, Y, weights, scale, delta, write_delta)


@njit(inline="always")
def output_pass(output, Z, Y, weights, scale, delta, write_delta, n_blocks):
    """Weighted loss and error totals over the rows, and optionally the output delta.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
    weights : ndarray, shape (n,)
        Row weights ``w_i``.
    scale : float
    delta : ndarray, shape (n, d_L)
        Written ``(o(Z) - Y) · w · scale`` when ``write_delta``; must not
        overlap ``Z`` then (softmax parks its exponentials there).
    write_delta : bool
    n_blocks : int
        Threads available (1: serial).

    Returns
    -------
    loss_total, error_total : float
        ``Σ w_i L_i`` and ``Σ w_i [row i wrong]``; the latter is NaN for the
        identity output.
        Per-row terms are summed in a fixed order for a fixed thread count.
    """
    # exp/log per element: worth threads at an eighth of the usual size
    write_delta = bool(write_delta)  # drop the literal type: one compile for both values
    if n_blocks > 1 and Z.size * 8 >= MIN_PARALLEL_ELEMENTS:
        return _output_pass_parallel(output, Z, Y, weights, scale, delta, write_delta)
    return _output_pass_serial(output, Z, Y, weights, scale, delta, write_delta)


@njit(inline="always")
def _output_activation(output, Z, A):
    n, k = Z.shape
    for i in prange(n):
        z = Z[i]
        a = A[i]
        if output == codes.OUT_SOFTMAX:
            z_max = z[0]
            for j in range(1, k):
                z_max = max(z_max, z[j])
            total = 0.0
            for j in range(k):
                a[j] = np.exp(z[j] - z_max)
                total += a[j]
            for j in range(k):
                a[j] /= total
        elif output == codes.OUT_SIGMOID:
            for j in range(k):
                a[j] = sigmoid(z[j])
        else:
            for j in range(k):
                a[j] = z[j]


@njit(**COMPILED)
def _output_activation_serial(output, Z, A):
    _output_activation(output, Z, A)


@njit(**COMPILED, parallel=True)
def _output_activation_parallel(output, Z, A):
    _output_activation(output, Z, A)


@njit(**COMPILED)
def output_activation(output, Z, A, n_blocks):
    """``A ← o(Z)`` row by row; ``A`` may be ``Z``.  Both (n, d_L)."""
    if n_blocks > 1 and Z.size * 8 >= MIN_PARALLEL_ELEMENTS:
        _output_activation_parallel(output, Z, A)
    else:
        _output_activation_serial(output, Z, A)


@njit(**COMPILED)
def output_pass_dispatch(output, Z, Y, weights, scale, delta, write_delta, n_blocks):
    """:func:`output_pass` callable from Python (an inline function is not)."""
    return output_pass(output, Z, Y, weights, scale, delta, write_delta, n_blocks)
