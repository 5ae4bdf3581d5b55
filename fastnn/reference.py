"""The kernel contract in plain NumPy: the correctness oracle and the speed baseline.

Every function here has the same name and signature as its twin in
:mod:`fastnn.kernels`; the parity tests call both on the same buffers.  This
module is written to be obviously right, not fast: each line is one formula of
SPEC sections 1-4.

Shared conventions (both backends)
----------------------------------
params : ndarray, shape (n_params,)
    All ``W_l`` (row-major, ``(d_l, d_{l-1})``) and ``b_l`` in one flat buffer,
    placed by ``table`` (see :mod:`fastnn.layout`).
table : ndarray of int64, shape (L, 5)
    :func:`fastnn.layout.layer_table`.
hidden : ndarray of int64, shape (L - 1,)
    Activation code of each hidden layer (:mod:`fastnn.codes`).
output : int
    Output code; each output is paired with its loss.
acts, deltas : ndarray, shape (capacity * n_units,)
    Workspaces; layer ``l``'s rows live in a block placed by the table.  After
    :func:`forward` the last block holds the logits ``Z_L``, not ``A_L``.
"""

import numpy as np
from scipy.special import expit

from fastnn import codes
from fastnn.layout import parameter_views, workspace_block


# ---------------------------------------------------------------- activations

def activate(code, Z):
    """Hidden activation ``g(Z)`` for one activation code (new array)."""
    if code == codes.RELU:
        return np.maximum(Z, 0)
    if code == codes.SIGMOID:
        return expit(Z)
    if code == codes.TANH:
        return np.tanh(Z)
    if code == codes.LEAKY_RELU:
        return np.where(Z > 0, Z, codes.LEAKY_SLOPE * Z)
    return Z.copy()


def derivative_from_activation(code, A):
    """``g'(Z)`` written in terms of the stored activation ``A = g(Z)``."""
    if code == codes.RELU:
        return (A > 0).astype(A.dtype)
    if code == codes.SIGMOID:
        return A * (1 - A)
    if code == codes.TANH:
        return 1 - A * A
    if code == codes.LEAKY_RELU:
        return np.where(A > 0, 1, codes.LEAKY_SLOPE).astype(A.dtype)
    return np.ones_like(A)


# --------------------------------------------------------- outputs and losses

def _softmax(Z):
    shifted = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(shifted)
    return E / E.sum(axis=1, keepdims=True)


def _row_losses(output, Z, Y):
    """Loss of each row, from the logits, in float64 (SPEC section 2)."""
    Z = Z.astype(np.float64)
    Y = Y.astype(np.float64)
    if output == codes.OUT_SOFTMAX:
        m = Z.max(axis=1, keepdims=True)
        log_sum_exp = m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
        return (Y * (log_sum_exp - Z)).sum(axis=1)          # -sum y log p
    if output == codes.OUT_SIGMOID:
        return (np.logaddexp(0, Z) - Y * Z).sum(axis=1)     # softplus(z) - y z
    return 0.5 * ((Z - Y) ** 2).sum(axis=1)


def _row_errors(output, Z, Y):
    """1.0 where a row is misclassified, 0.0 where right, NaN for regression."""
    if output == codes.OUT_SOFTMAX:
        return (Z.argmax(axis=1) != Y.argmax(axis=1)).astype(np.float64)
    if output == codes.OUT_SIGMOID:
        return ((Z > 0) != (Y > 0.5)).any(axis=1).astype(np.float64)
    return np.full(Z.shape[0], np.nan)


def output_activation(output, Z, A):
    """Write ``A = o(Z)``; ``A`` may be ``Z`` itself.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    A : ndarray, shape (n, d_L)
    """
    if output == codes.OUT_SOFTMAX:
        A[...] = _softmax(Z)
    elif output == codes.OUT_SIGMOID:
        A[...] = expit(Z)
    else:
        A[...] = Z


def loss_sum(output, Z, Y):
    """Sum over the rows of the data loss.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
        Dense targets (one-hot or probabilities, 0/1, or values).

    Returns
    -------
    float
        In float64 whatever the dtype.
    """
    return float(_row_losses(output, Z, Y).sum())


def error_count(output, Z, Y):
    """Misclassified rows (softmax: arg-max; sigmoid: any label wrong); NaN for regression."""
    return float(_row_errors(output, Z, Y).sum())


def output_delta(output, Z, Y, scale, delta):
    """Output delta ``δ_L = (o(Z) - Y) * scale`` of a matched output/loss pair.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
    scale : scalar of the array dtype
        ``1 / n`` for the mean loss.
    delta : ndarray, shape (n, d_L)
        Written.

    Returns
    -------
    float
        Sum over the rows of the loss (float64).
    """
    A = np.empty_like(Z)
    output_activation(output, Z, A)
    delta[...] = (A - Y) * scale
    return loss_sum(output, Z, Y)


# ------------------------------------------------------------------ the passes

def forward(params, table, hidden, X, acts):
    """Forward propagation of the rows of ``X``.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : ndarray of int64, shape (L - 1,)
    X : ndarray, shape (n, d_0)
        C-contiguous, ``n`` at most the workspace capacity.
    acts : ndarray, shape (capacity * n_units,)
        Written: ``A_l = g_l(A_{l-1} W_l^T + b_l)`` for the hidden layers and
        the logits ``Z_L = A_{L-1} W_L^T + b_L`` in the last block.
    """
    weights, biases = parameter_views(params, table)
    n = X.shape[0]
    A = X
    for l, (W, b) in enumerate(zip(weights, biases)):
        Z = A @ W.T + b
        A = activate(hidden[l], Z) if l < len(weights) - 1 else Z
        workspace_block(acts, table, l, n)[...] = A


def backward(params, table, hidden, X, acts, deltas, weight_decay, grad):
    """Delta recursion and gradient accumulation over the rows of ``X``.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : ndarray of int64, shape (L - 1,)
    X : ndarray, shape (n, d_0)
        The rows :func:`forward` was run on.
    acts : ndarray
        As :func:`forward` left it.
    deltas : ndarray, shape (capacity * n_units,)
        The last block must hold ``δ_L`` (see :func:`output_delta`); the
        others are written: ``δ_l = (δ_{l+1} W_{l+1}) ⊙ g'(A_l)``.
    weight_decay : scalar of the array dtype
        ``λ``; added to the weight gradients only.
    grad : ndarray, shape (n_params,)
        Written: ``∂W_l = δ_l^T A_{l-1} + λ W_l`` and ``∂b_l = Σ_rows δ_l``.
    """
    weights, biases = parameter_views(params, table)
    grad_weights, grad_biases = parameter_views(grad, table)
    n = X.shape[0]
    for l in range(len(weights) - 1, -1, -1):
        delta = workspace_block(deltas, table, l, n)
        A_prev = X if l == 0 else workspace_block(acts, table, l - 1, n)
        grad_weights[l][...] = delta.T @ A_prev + weight_decay * weights[l]
        grad_biases[l][...] = delta.sum(axis=0)
        if l > 0:
            workspace_block(deltas, table, l - 1, n)[...] = (
                (delta @ weights[l]) * derivative_from_activation(hidden[l - 1], A_prev))


def sgd_update(params, grad, velocity, lr, momentum, nesterov):
    """In-place SGD step (SPEC section 4), PyTorch's conventions.

    Parameters
    ----------
    params, grad, velocity : ndarray, shape (n_params,)
        ``velocity`` is read and written only when ``momentum > 0``.
    lr, momentum : scalars of the array dtype
    nesterov : bool

    Notes
    -----
    plain: ``θ ← θ - α D``; momentum: ``V ← μV + D, θ ← θ - α V``;
    Nesterov: ``V ← μV + D, θ ← θ - α (D + μV)``.
    """
    if momentum == 0:
        params -= lr * grad
        return
    velocity *= momentum
    velocity += grad
    if nesterov:
        params -= lr * (grad + momentum * velocity)
    else:
        params -= lr * velocity


def train_epoch(params, grad, velocity, table, hidden, output, X, Y, order, batch_size,
                lr, momentum, nesterov, weight_decay, xbuf, ybuf, acts, deltas, batch_stats):
    """One pass of mini-batch SGD over the rows ``X[order]``.

    Parameters
    ----------
    params, grad, velocity : ndarray, shape (n_params,)
        ``params`` and ``velocity`` are updated in place.
    table, hidden, output
        As for :func:`forward` and :func:`output_delta`.
    X : ndarray, shape (n, d_0)
    Y : ndarray, shape (n, d_L)
        Dense targets.
    order : ndarray of int64, shape (m,)
        Rows to visit, in this order; consecutive runs of ``batch_size`` form
        the mini-batches, the last one may be smaller.
    batch_size : int
    lr, momentum, weight_decay : scalars of the array dtype
    nesterov : bool
    xbuf : ndarray, shape (batch_size, d_0)
    ybuf : ndarray, shape (batch_size, d_L)
        Gather buffers.
    acts, deltas : ndarray, shape (batch_size * n_units,)
    batch_stats : ndarray of float64, shape (ceil(m / batch_size), 2)
        Written: mean loss and error rate of each mini-batch, measured on the
        forward pass before its update (error NaN for regression).
    """
    L = table.shape[0]
    for b, start in enumerate(range(0, order.shape[0], batch_size)):
        rows = order[start:start + batch_size]
        n = rows.shape[0]
        xb, yb = xbuf[:n], ybuf[:n]
        xb[...] = X[rows]
        yb[...] = Y[rows]
        forward(params, table, hidden, xb, acts)
        Z = workspace_block(acts, table, L - 1, n)
        loss = output_delta(output, Z, yb, xb.dtype.type(1.0 / n),
                            workspace_block(deltas, table, L - 1, n))
        batch_stats[b, 0] = loss / n
        batch_stats[b, 1] = error_count(output, Z, yb) / n
        backward(params, table, hidden, xb, acts, deltas, weight_decay, grad)
        sgd_update(params, grad, velocity, lr, momentum, nesterov)
