"""Forward propagation: ``Z_l = A_{l-1} W_l^T + b_l``, ``A_l = g_l(Z_l)``."""

from numba import njit

from fastnn import codes
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import add_bias_activate
from fastnn.kernels.matmul import matmul
from fastnn.kernels.views import bias_view, weight_view, workspace_block


@njit(inline="always")
def forward_after_first_product(params, table, hidden, acts, n, n_blocks):
    """Everything after ``X W_1^T``: the first layer's bias and activation, then
    layers 2..L.  The first block of ``acts`` must hold ``X W_1^T`` for ``n`` rows."""
    L = table.shape[0]
    Z = workspace_block(acts, table, 0, n)
    add_bias_activate(Z, bias_view(params, table, 0), hidden[0] if L > 1 else codes.IDENTITY,
                      n_blocks)
    for l in range(1, L):
        A_prev = workspace_block(acts, table, l - 1, n)
        Z = workspace_block(acts, table, l, n)
        matmul(False, True, 1.0, A_prev, weight_view(params, table, l), 0.0, Z, n_blocks)
        add_bias_activate(Z, bias_view(params, table, l),
                          hidden[l] if l < L - 1 else codes.IDENTITY, n_blocks)


@njit(**COMPILED)
def forward_pass(params, table, hidden, X, acts, n_blocks):
    """Fill the activation workspace for the rows of ``X``; the last block gets the logits.

    Parameters
    ----------
    params : ndarray, shape (n_params,)
    table : ndarray of int64, shape (L, 5)
    hidden : ndarray of int64, shape (L - 1,)
    X : ndarray, shape (n, d_0), C-contiguous
    acts : ndarray, shape (capacity * n_units,)
    n_blocks : int
        Threads to share each step among (1: everything on this thread).
    """
    n = X.shape[0]
    matmul(False, True, 1.0, X, weight_view(params, table, 0), 0.0,
           workspace_block(acts, table, 0, n), n_blocks)
    forward_after_first_product(params, table, hidden, acts, n, n_blocks)
