"""The backward pass: delta recursion and gradient accumulation.

``δ_l = (δ_{l+1} W_{l+1}) ⊙ g'(A_l)``, ``∂W_l = δ_l^T A_{l-1} + λ W_l``,
``∂b_l = Σ_rows δ_l``.
"""

from numba import njit

from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import column_sums, multiply_derivative, scaled_copy
from fastnn.kernels.matmul import matmul
from fastnn.kernels.views import bias_view, weight_view, workspace_block


@njit(inline="always")
def _layer_gradient(params, table, layer, D, A_prev, weight_decay, grad, n_blocks):
    # ∂W and ∂b of one layer; D is its delta (n, d_out), A_prev its input (n, d_in)
    grad_W = weight_view(grad, table, layer)
    if weight_decay != 0:
        # λW first, then BLAS adds δ^T A on top (beta = 1)
        scaled_copy(weight_view(params, table, layer), weight_decay, grad_W, n_blocks)
        matmul(True, False, 1.0, D, A_prev, 1.0, grad_W, n_blocks)
    else:
        matmul(True, False, 1.0, D, A_prev, 0.0, grad_W, n_blocks)
    column_sums(D, bias_view(grad, table, layer))


@njit(inline="always")
def _delta_below(params, table, hidden, acts, deltas, layer, n, n_blocks):
    # δ_{l-1} = (δ_l W_l) ⊙ g'(A_{l-1}); computed before anything changes W_l.
    # Returns the layer's delta and input, which its gradient or step needs.
    A_prev = workspace_block(acts, table, layer - 1, n)
    D = workspace_block(deltas, table, layer, n)
    D_prev = workspace_block(deltas, table, layer - 1, n)
    matmul(False, False, 1.0, D, weight_view(params, table, layer), 0.0, D_prev, n_blocks)
    multiply_derivative(D_prev, A_prev, hidden[layer - 1], n_blocks)
    return D, A_prev


@njit(**COMPILED)
def backward_pass(params, table, hidden, X, acts, deltas, weight_decay, grad, n_blocks):
    """Gradient of the loss over the rows of ``X``; ``δ_L`` must be in ``deltas``.

    Parameters are those of :func:`fastnn.reference.backward`, plus
    ``n_blocks``, the threads to share each step among.
    """
    n = X.shape[0]
    L = table.shape[0]
    for l in range(L - 1, 0, -1):
        D, A_prev = _delta_below(params, table, hidden, acts, deltas, l, n, n_blocks)
        _layer_gradient(params, table, l, D, A_prev, weight_decay, grad, n_blocks)
    # the first layer reads X (its own array type), outside the loop
    _layer_gradient(params, table, 0, workspace_block(deltas, table, 0, n), X,
                    weight_decay, grad, n_blocks)


@njit(inline="always")
def bias_sgd_step(params, table, layer, D, lr, grad, n_blocks):
    """``b ← b - lr Σ_rows δ``, the sums made in ``grad``'s bias slot (a fixed order)."""
    bias_grad = bias_view(grad, table, layer)
    column_sums(D, bias_grad)
    bias = bias_view(params, table, layer)
    for j in range(bias.shape[0]):
        bias[j] -= lr * bias_grad[j]


@njit(inline="always")
def _layer_sgd_step(params, table, layer, D, A_prev, lr, weight_decay, grad, n_blocks):
    # W ← (1 - lr λ) W - lr δ^T A in one product: no gradient buffer, no update pass
    matmul(True, False, -lr, D, A_prev, 1 - lr * weight_decay,
           weight_view(params, table, layer), n_blocks)
    bias_sgd_step(params, table, layer, D, lr, grad, n_blocks)


@njit(inline="always")
def backward_sgd_step_above_first(params, table, hidden, acts, deltas, lr, weight_decay, grad,
                                  n, n_blocks):
    """The fused backward SGD step for layers L..2; leaves ``δ_1`` in ``deltas``.

    Each ``δ_{l-1}`` is computed from ``W_l`` before ``W_l`` is updated in place.
    """
    L = table.shape[0]
    for l in range(L - 1, 0, -1):
        D, A_prev = _delta_below(params, table, hidden, acts, deltas, l, n, n_blocks)
        _layer_sgd_step(params, table, l, D, A_prev, lr, weight_decay, grad, n_blocks)


@njit(**COMPILED)
def backward_sgd_step(params, table, hidden, X, acts, deltas, lr, weight_decay, grad, n_blocks):
    """The backward pass and a plain SGD step fused: ``θ ← θ - lr (∂J + λW)``.

    Equal to :func:`backward_pass` followed by the plain SGD step up to
    rounding, without writing the weight gradient anywhere.  ``grad`` only
    lends its bias slots.
    """
    n = X.shape[0]
    backward_sgd_step_above_first(params, table, hidden, acts, deltas, lr, weight_decay, grad,
                                  n, n_blocks)
    _layer_sgd_step(params, table, 0, workspace_block(deltas, table, 0, n), X, lr, weight_decay,
                    grad, n_blocks)
