"""The kernel contract in plain NumPy: the correctness oracle and the speed baseline.

Every function here has the same name and signature as its twin in
:mod:`fastnn.kernels`; the parity tests call both on the same buffers.  This
module is written to be obviously right, not fast: each line is one formula of
docs/design.md, sections 1-4.

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
X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
    The first layer's input, dense or CSR (:mod:`fastnn.sparse_format`: data
    of the parameters' dtype, int32 or int64 indices, unsorted and duplicate
    column indices and stored zeros allowed).  Only the first layer reads it.
"""

import numpy as np

from fastnn import codes
from fastnn.layout import parameter_views, workspace_block
from fastnn.optim import kernel_path
from fastnn.sparse_format import is_sparse

# ---------------------------------------------------------------- activations

def expit(Z):
    """The logistic function, SciPy's (imported on first use: ``scipy.special``
    takes 0.3 s to import, which every ``import fastnn`` paid before)."""
    from scipy.special import expit as logistic

    return logistic(Z)


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
    """Loss of each row, from the logits, in float64 (docs/design.md, section 2)."""
    Z = Z.astype(np.float64)
    Y = Y.astype(np.float64)
    if output == codes.OUT_SOFTMAX:
        m = Z.max(axis=1, keepdims=True)
        log_sum_exp = m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True))
        return (Y * (log_sum_exp - Z)).sum(axis=1)          # -sum y log p
    if output == codes.OUT_SIGMOID:
        return (np.logaddexp(0, Z) - Y * Z).sum(axis=1)     # softplus(z) - y z
    if output == codes.OUT_EXP:
        from scipy.special import xlogy
        # scikit-learn's poisson_loss, xlogy(y, y/ŷ) - y + ŷ with ŷ = exp(z); an
        # overflowing exp is an infinite loss, not a warning
        with np.errstate(over="ignore"):
            return (xlogy(Y, Y) - Y - Y * Z + np.exp(Z)).sum(axis=1)
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
    elif output == codes.OUT_EXP:
        with np.errstate(over="ignore"):
            A[...] = np.exp(Z)
    else:
        A[...] = Z


def loss_sum(output, Z, Y, weights):
    """Weighted sum over the rows of the data loss, ``Σ_i w_i L_i``.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
        Dense targets (one-hot or probabilities, 0/1, or values).
    weights : ndarray, shape (n,)
        Row weights (ones for the plain mean).

    Returns
    -------
    float
        In float64 whatever the dtype.
    """
    return float(weights.astype(np.float64) @ _row_losses(output, Z, Y))


def error_count(output, Z, Y, weights):
    """Weighted count of misclassified rows (softmax: arg-max; sigmoid: any label
    wrong), ``Σ_i w_i [row i wrong]``; NaN for regression."""
    return float(weights.astype(np.float64) @ _row_errors(output, Z, Y))


def output_delta(output, Z, Y, weights, scale, delta):
    """Output delta ``δ_L = (o(Z) - Y) * w * scale`` of a matched output/loss pair.

    Parameters
    ----------
    output : int
    Z : ndarray, shape (n, d_L)
        Logits.
    Y : ndarray, shape (n, d_L)
    weights : ndarray, shape (n,)
        Row weights.
    scale : scalar of the array dtype
        ``1 / Σ w`` for the weighted mean loss (``1 / n`` with unit weights).
    delta : ndarray, shape (n, d_L)
        Written.

    Returns
    -------
    float
        ``Σ_i w_i L_i`` (float64).
    """
    A = np.empty_like(Z)
    output_activation(output, Z, A)
    delta[...] = (A - Y) * (weights * scale)[:, None]
    return loss_sum(output, Z, Y, weights)


# ------------------------------------------------------------------ the passes

def forward(params, table, hidden, X, acts):
    """Forward propagation of the rows of ``X``.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : ndarray of int64, shape (L - 1,)
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
        C-contiguous, ``n`` at most the workspace capacity.
    acts : ndarray, shape (capacity * n_units,)
        Written: ``A_l = g_l(A_{l-1} W_l^T + b_l)`` for the hidden layers and
        the logits ``Z_L = A_{L-1} W_L^T + b_L`` in the last block.
    """
    weights, biases = parameter_views(params, table)
    n = X.shape[0]
    A = X
    for l, (W, b) in enumerate(zip(weights, biases)):
        # a CSR X times a dense matrix is a dense ndarray (scipy sums duplicates)
        Z = np.asarray(A @ W.T) + b
        A = activate(hidden[l], Z) if l < len(weights) - 1 else Z
        workspace_block(acts, table, l, n)[...] = A


def backward(params, table, hidden, X, acts, deltas, weight_decay, grad):
    """Delta recursion and gradient accumulation over the rows of ``X``.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : ndarray of int64, shape (L - 1,)
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
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
        # δᵀX of a CSR X as (Xᵀδ)ᵀ: a sparse matrix times a dense one
        product = (A_prev.T @ delta).T if is_sparse(A_prev) else delta.T @ A_prev
        grad_weights[l][...] = product + weight_decay * weights[l]
        grad_biases[l][...] = delta.sum(axis=0)
        if l > 0:
            workspace_block(deltas, table, l - 1, n)[...] = (
                (delta @ weights[l]) * derivative_from_activation(hidden[l - 1], A_prev))


def clip_gradient(grad, clip_norm):
    """Scale ``grad`` in place so its global L2 norm is at most ``clip_norm``.

    PyTorch's ``clip_grad_norm_``: the factor is ``clip_norm / (norm + 1e-6)``,
    applied only when below 1.  ``clip_norm == 0`` disables clipping.
    """
    if clip_norm == 0:
        return
    norm = np.sqrt(np.sum(grad.astype(np.float64) ** 2))
    factor = clip_norm / (norm + 1e-6)
    if factor < 1:
        grad *= grad.dtype.type(factor)


def optimizer_step(params, grad, state, table, settings, step):
    """One in-place optimizer step (docs/design.md, section 4), PyTorch's formulas.

    Parameters
    ----------
    params, grad : ndarray, shape (n_params,)
        ``grad`` is the gradient ``D`` (with L2 already in it, except for
        AdamW); it is clipped in place when ``settings.clip_norm > 0``.
    state : ndarray, shape (rows, n_params)
        SGD: velocity ``V`` in row 0 (used only with momentum); Adam/AdamW:
        moments ``m``, ``v`` in rows 0 and 1.
    table : ndarray of int64, shape (L, 5)
        Locates the weights, which AdamW decays and biases it does not.
    settings : fastnn.optim.StepSettings
    step : ndarray of int64, shape (1,)
        Steps taken; Adam increments it before its bias correction.

    Notes
    -----
    SGD: plain ``θ ← θ - αD``; momentum ``V ← μV + D, θ ← θ - αV``; Nesterov
    ``V ← μV + D, θ ← θ - α(D + μV)``.  Adam: ``m ← β1 m + (1-β1) D``,
    ``v ← β2 v + (1-β2) D²``, ``θ ← θ - (α / (1-β1^t)) m / (√v / √(1-β2^t) + ε)``;
    AdamW first decays the weights, ``W ← W (1 - αλ)``.
    """
    clip_gradient(grad, settings.clip_norm)
    lr = settings.lr
    if settings.code == codes.SGD:
        if settings.momentum == 0:
            params -= lr * grad
            return
        velocity = state[0]
        velocity *= settings.momentum
        velocity += grad
        if settings.nesterov:
            params -= lr * (grad + settings.momentum * velocity)
        else:
            params -= lr * velocity
        return
    step[0] += 1
    t = int(step[0])
    cast = params.dtype.type
    if settings.code == codes.ADAMW and settings.weight_decay != 0:
        for W in parameter_views(params, table)[0]:
            W *= cast(1 - float(lr) * float(settings.weight_decay))
    beta1, beta2 = settings.beta1, settings.beta2
    m, v = state[0], state[1]
    m[...] = beta1 * m + (1 - beta1) * grad
    v[...] = beta2 * v + (1 - beta2) * grad * grad
    # the bias corrections in float64, rounded once to the dtype (as the kernel does)
    step_size = cast(float(lr) / (1 - float(beta1) ** t))
    root_correction = cast(np.sqrt(1 - float(beta2) ** t))
    params -= step_size * m / (np.sqrt(v) / root_correction + settings.eps)


def _gradient_decay(settings):
    """The L2 strength the backward pass adds to the weight gradients.

    SGD and Adam put ``λW`` into the gradient; AdamW decays the weights in
    the step instead.
    """
    if settings.code == codes.ADAMW:
        return type(settings.weight_decay)(0)
    return settings.weight_decay


def train_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """One pass of mini-batch training over the rows ``X[order]``.

    Parameters
    ----------
    params, grad : ndarray, shape (n_params,)
        ``params`` is updated in place.
    state, step
        Optimizer state, see :func:`optimizer_step`; updated in place.
    table, hidden, output
        As for :func:`forward` and :func:`output_delta`.
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
    Y : ndarray, shape (n, d_L)
        Dense targets.
    weights : ndarray, shape (n,)
        Row weights; each batch's loss is ``Σ w_i L_i / Σ w_i`` over its rows.
    order : ndarray of int64, shape (m,)
        Rows to visit, in this order; consecutive runs of ``batch_size`` form
        the mini-batches, the last one may be smaller.
    batch_size : int
    settings : fastnn.optim.StepSettings
    xbuf : ndarray, shape (batch_size, d_0)
        Not read when ``X`` is sparse (its batches are CSR rows of ``X``).
    ybuf : ndarray, shape (batch_size, d_L)
    wbuf : ndarray, shape (batch_size,)
        Gather buffers.
    acts, deltas : ndarray, shape (batch_size * n_units,)
    batch_stats : ndarray of float64, shape (ceil(m / batch_size), 3)
        Written per mini-batch, measured on its forward pass before its
        update: the weighted mean loss, the weighted error rate (NaN for
        regression) and the sum of its row weights.  A batch whose weights are
        all zero takes no step and records zeros.
    """
    L = table.shape[0]
    decay = _gradient_decay(settings)
    for b, start in enumerate(range(0, order.shape[0], batch_size)):
        rows = order[start:start + batch_size]
        n = rows.shape[0]
        yb, wb = ybuf[:n], wbuf[:n]
        if is_sparse(X):
            xb = X[rows]
        else:
            xb = xbuf[:n]
            xb[...] = X[rows]
        yb[...] = Y[rows]
        wb[...] = weights[rows]
        total_weight = float(wb.astype(np.float64).sum())
        if total_weight == 0:
            batch_stats[b] = (0.0, 0.0, 0.0)  # all its sample weights are zero: no step
            continue
        forward(params, table, hidden, xb, acts)
        Z = workspace_block(acts, table, L - 1, n)
        loss = output_delta(output, Z, yb, wb, xb.dtype.type(1.0 / total_weight),
                            workspace_block(deltas, table, L - 1, n))
        batch_stats[b] = (loss / total_weight, error_count(output, Z, yb, wb) / total_weight,
                          total_weight)
        backward(params, table, hidden, xb, acts, deltas, decay, grad)
        optimizer_step(params, grad, state, table, settings, step)


def training_paths(settings, batch_size, n_params):
    """The compiled paths a fit would prepare (see :func:`fastnn.kernels.training_paths`);
    the reference compiles nothing, and runs one loop for every network."""
    return [kernel_path(settings, batch_size)]


def prepare(dtype, paths, sharing=None):
    """Nothing to prepare: the reference is plain NumPy (see :func:`fastnn.kernels.prepare`).

    Processes that share the preparing (``sharing``) still meet at its ``wait``.

    Returns
    -------
    float
        0.0, the seconds spent compiling.
    """
    if sharing is not None:
        sharing.wait()
    return 0.0
