"""Per-sample SGD (batch size 1, the notes' algorithm), pipelined across samples.

A plain SGD step ends with the first layer's update and the next step starts
with the first layer's product; :func:`rank1_update_then_dot` does both in one
pass over the first weight matrix, usually the largest.  The arithmetic is
that of the ordinary fused path: the next sample is multiplied by the updated
weights, so nothing about the sequence of updates changes.
"""

import numpy as np
from numba import njit

from fastnn.kernels.backward_pass import backward_sgd_step_above_first, bias_sgd_step
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import gather_rows, gather_values
from fastnn.kernels.forward_pass import forward_after_first_product
from fastnn.kernels.matmul import matmul
from fastnn.kernels.outputs import output_pass
from fastnn.kernels.scalars import cast_like
from fastnn.kernels.small_matmul import rank1_update_then_dot
from fastnn.kernels.views import weight_view, workspace_block


@njit(**COMPILED)
def per_sample_sgd_epoch(params, grad, table, hidden, output, X, Y, weights, order, lr,
                         weight_decay, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """Plain SGD over ``X[order]`` one row at a time; as
    :func:`fastnn.kernels.epoch_loop.fused_sgd_epoch` with ``batch_size == 1``.
    ``xbuf``/``ybuf``/``wbuf`` hold one row."""
    m = order.shape[0]
    L = table.shape[0]
    W0 = weight_view(params, table, 0)
    Z0 = workspace_block(acts, table, 0, 1)
    D0 = workspace_block(deltas, table, 0, 1)
    keep = cast_like(params, 1 - lr * weight_decay)
    current = xbuf
    following = np.empty_like(xbuf)  # once per epoch
    gather_rows(X, order, 0, current, 1)
    first_product_ready = False
    for s in range(m):
        gather_rows(Y, order, s, ybuf, 1)
        if gather_values(weights, order, s, wbuf) == 0:
            # a zero-weight row takes no step
            batch_stats[s, 0] = 0.0
            batch_stats[s, 1] = 0.0
            batch_stats[s, 2] = 0.0
            first_product_ready = False
            if s + 1 < m:
                gather_rows(X, order, s + 1, following, 1)
                current, following = following, current
            continue
        if not first_product_ready:
            matmul(False, True, 1.0, current, W0, 0.0, Z0, 1)
        forward_after_first_product(params, table, hidden, acts, 1, 1)
        loss, errors = output_pass(output, workspace_block(acts, table, L - 1, 1), ybuf, wbuf,
                                   1.0 / wbuf[0], workspace_block(deltas, table, L - 1, 1),
                                   True, 1)
        batch_stats[s, 0] = loss / wbuf[0]
        batch_stats[s, 1] = errors / wbuf[0]
        batch_stats[s, 2] = wbuf[0]
        backward_sgd_step_above_first(params, table, hidden, acts, deltas, lr, weight_decay,
                                      grad, 1, 1)
        if s + 1 < m:
            gather_rows(X, order, s + 1, following, 1)
            # the first layer's step and the next sample's first product, one pass
            rank1_update_then_dot(-lr, D0, current, keep, W0, following, Z0)
            first_product_ready = True
        else:
            matmul(True, False, -lr, D0, current, keep, W0, 1)
        bias_sgd_step(params, table, 0, D0, lr, grad, 1)
        current, following = following, current
