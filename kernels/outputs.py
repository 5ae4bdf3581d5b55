"""Output activations and their matched losses, in one pass over the rows.

For each row the pass reads the logits ``z`` and yields the loss (from
the logits: log-sum-exp for softmax, softplus for sigmoid, ``exp(z) - y z``
plus a constant for the Poisson loss of exp) and whether the
row is misclassified, and writes what ``mode`` asks for: nothing (``LOSS``),
the output delta ``(o(z) - y) · w · scale`` (``DELTA``), or the outputs
``o(z)`` themselves (``ACTIVATION``).  Loss arithmetic is float64 whatever the
array dtype.  One compiled function serves training (the delta), evaluation
(the loss) and prediction (the outputs).  The softmax's delta and outputs
sweep the rows three times instead, so that its exponentials are one
vectorised loop (:func:`_softmax_rows`).
"""

import numpy as np
from numba import njit

from fastnn import codes
from fastnn.kernels.arrays import vector
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import sigmoid
from fastnn.kernels.exponential import exp_nonpositive

LOSS = 0
DELTA = 1
ACTIVATION = 2


@njit(inline="always")
def _softmax_rows(Z, Y, weights, scale, out, mode):
    """The softmax's loss and error totals, and its delta or outputs into ``out``.

    ``LOSS`` is one sweep of the rows.  ``DELTA`` and ``ACTIVATION`` take
    three, so that the exponentials are one flat loop that LLVM vectorises
    (:mod:`fastnn.kernels.exponential`; a row of 10 classes is too short a
    loop): each row's logits shifted by their maximum, ``s = z - max z``, into
    ``out`` (in the dtype, as the reference does); every entry of ``out``
    exponentiated; then each row's total and its delta or probabilities.
    ``out`` may be ``Z`` with ``ACTIVATION`` (a row's logits are read before
    they are overwritten, and not read again).

    The loss of a row is ``Σ y (log Σ e^s - s)``, summed as
    ``log(Σ e^s) · Σ y - Σ y s``: the second sum in the first sweep (with
    ``s`` in float64), the first when the total is known.
    """
    n, k = Z.shape
    loss_total = 0.0
    error_total = 0.0
    for i in range(n):
        z = Z[i]
        y = Y[i]
        shifted = out[i]
        z_max = np.float64(z[0])
        z_arg = 0
        y_max = y[0]
        y_arg = 0
        for j in range(1, k):
            if z[j] > z_max:
                z_max = np.float64(z[j])
                z_arg = j
            if mode != ACTIVATION and y[j] > y_max:
                y_max = y[j]
                y_arg = j
        total = 0.0
        y_sum = 0.0
        y_shifted = 0.0
        for j in range(k):
            s = z[j] - z_max
            if mode == LOSS:
                total += exp_nonpositive(s)
                y_sum += y[j]
            else:
                shifted[j] = s  # z[j] is not read again (out may be Z)
            if mode != ACTIVATION:
                y_shifted += y[j] * s
        if mode == ACTIVATION:
            continue
        w = np.float64(weights[i])
        loss_total -= w * y_shifted
        error_total += w if z_arg != y_arg else 0.0
        if mode == LOSS:
            loss_total += w * np.log(total) * y_sum
    if mode == LOSS:
        return loss_total, error_total
    flat = vector(out, 0, n * k)  # the whole of out, as one loop
    for t in range(n * k):
        flat[t] = exp_nonpositive(np.float64(flat[t]))
    for i in range(n):
        e = out[i]
        total = 0.0
        for j in range(k):
            total += e[j]
        if mode == ACTIVATION:
            for j in range(k):
                e[j] /= total
            continue
        y = Y[i]
        w = np.float64(weights[i])
        row_scale = w * scale
        y_sum = 0.0
        for j in range(k):
            e[j] = (e[j] / total - y[j]) * row_scale
            y_sum += y[j]
        loss_total += w * np.log(total) * y_sum
    return loss_total, error_total


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
        (softmax parks its shifted logits and exponentials there); ``ACTIVATION``: written
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
    if output == codes.OUT_SOFTMAX:
        return _softmax_rows(Z, Y, weights, scale, out, mode)  # (0, 0) with ACTIVATION
    loss_total = 0.0
    error_total = 0.0
    for i in range(Z.shape[0]):
        w = 1.0 if mode == ACTIVATION else np.float64(weights[i])
        row_scale = w * scale
        if output == codes.OUT_SIGMOID:
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
