"""Output activations and their matched losses, one fused pass over the rows.

For each row the pass reads the logits ``z`` once and yields the loss (from
the logits: log-sum-exp for softmax, softplus for sigmoid, ``exp(z) - y z``
plus a constant for the Poisson loss of exp) and whether the
row is misclassified, and writes what ``mode`` asks for: nothing (``LOSS``),
the output delta ``(o(z) - y) · w · scale`` (``DELTA``), or the outputs
``o(z)`` themselves (``ACTIVATION``).  Loss arithmetic is float64 whatever the
array dtype.  One compiled function serves training (the delta), evaluation
(the loss) and prediction (the outputs).
"""

import numpy as np
from numba import njit

from fastnn import codes
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import sigmoid

LOSS = 0
DELTA = 1
ACTIVATION = 2


@njit(inline="always")
def _softmax_row(z, y, scale, out, mode):
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
    wrong = 1.0 if z_arg != y_arg else 0.0
    total = 0.0
    if mode == LOSS:
        for j in range(k):
            total += np.exp(z[j] - z_max)
    else:
        # each exp once (they were most of the pass): parked in out until the
        # total is known (out may be z itself: z[j] is read before it is written)
        for j in range(k):
            e = np.exp(z[j] - z_max)
            out[j] = e
            total += e
        if mode == ACTIVATION:
            for j in range(k):
                out[j] /= total
            return 0.0, wrong
    log_sum_exp = z_max + np.log(total)
    loss = 0.0
    for j in range(k):
        loss += y[j] * (log_sum_exp - z[j])
    if mode == DELTA:
        for j in range(k):
            out[j] = (out[j] / total - y[j]) * scale
    return loss, wrong


@njit(inline="always")
def _sigmoid_row(z, y, scale, out, mode):
    loss = 0.0
    wrong = 0.0
    for j in range(z.shape[0]):
        zj = np.float64(z[j])
        if mode == ACTIVATION:
            out[j] = sigmoid(zj)
            continue
        loss += max(zj, 0.0) + np.log1p(np.exp(-abs(zj))) - y[j] * zj
        if (zj > 0) != (y[j] > 0.5):
            wrong = 1.0
        if mode == DELTA:
            out[j] = (sigmoid(zj) - y[j]) * scale
    return loss, wrong


@njit(inline="always")
def _identity_row(z, y, scale, out, mode):
    loss = 0.0
    for j in range(z.shape[0]):
        if mode == ACTIVATION:
            out[j] = z[j]
            continue
        diff = np.float64(z[j]) - y[j]
        loss += 0.5 * diff * diff
        if mode == DELTA:
            out[j] = diff * scale
    return loss, np.nan


@njit(inline="always")
def _exp_row(z, y, scale, out, mode):
    # Poisson loss with the log link (scikit-learn's poisson_loss):
    # xlogy(y, y) - y - y z + exp(z).  An exp that overflows gives inf in the
    # loss and the delta, which the training's divergence check reports; the
    # arithmetic raises nothing.
    loss = 0.0
    for j in range(z.shape[0]):
        e = np.exp(np.float64(z[j]))
        if mode == ACTIVATION:
            out[j] = e  # rounded once to the dtype
            continue
        yj = np.float64(y[j])
        # the constant xlogy(y, y) - y, so the values are scikit-learn's;
        # 0 log 0 = 0, and it is -0 = 0 too at y = 0
        if yj > 0:
            loss += yj * np.log(yj) - yj
        loss += e - yj * np.float64(z[j])
        if mode == DELTA:
            out[j] = (e - yj) * scale
    return loss, np.nan


@njit(**COMPILED)
def output_pass(output, Z, Y, weights, scale, out, mode):
    """Weighted loss and error totals over the rows; the delta or the outputs into ``out``.

    Parameters
    ----------
    output : int
        Output code.
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
        Targets (not read with ``mode == ACTIVATION``: any array of Z's shape).
    weights : ndarray, shape (n,)
        Row weights ``w_i`` (not read with ``mode == ACTIVATION``).
    scale : float
    out : ndarray, shape (n, d_L)
        ``DELTA``: written ``(o(Z) - Y) · w · scale``, must not overlap ``Z``
        (softmax parks its exponentials there); ``ACTIVATION``: written
        ``o(Z)``, may be ``Z``; ``LOSS``: not written.
    mode : int

    Returns
    -------
    loss_total, error_total : float
        ``Σ w_i L_i`` and ``Σ w_i [row i wrong]``, summed in row order; the
        latter is NaN for the regression outputs (identity, exp); both 0 with ``ACTIVATION``.

    Serial: the output layer is narrow (a batch of 256 rows and 10 classes is
    2,560 exponentials, a few microseconds), and a parallel reduction was the
    costliest loop of all to compile (6 s of a cold first fit).
    """
    loss_total = 0.0
    error_total = 0.0
    for i in range(Z.shape[0]):
        w = 1.0 if mode == ACTIVATION else np.float64(weights[i])
        row_scale = w * scale
        if output == codes.OUT_SOFTMAX:
            loss, wrong = _softmax_row(Z[i], Y[i], row_scale, out[i], mode)
        elif output == codes.OUT_SIGMOID:
            loss, wrong = _sigmoid_row(Z[i], Y[i], row_scale, out[i], mode)
        elif output == codes.OUT_EXP:
            loss, wrong = _exp_row(Z[i], Y[i], row_scale, out[i], mode)
        else:
            loss, wrong = _identity_row(Z[i], Y[i], row_scale, out[i], mode)
        loss_total += w * loss
        error_total += w * wrong
    if mode == ACTIVATION:
        return 0.0, 0.0
    return loss_total, error_total
