"""Per-sample SGD (batch size 1, the notes' algorithm), pipelined across samples.

A plain SGD step ends with the first layer's update and the next step starts
with the first layer's product; :func:`rank1_update_then_dot` does both in one
pass over the first weight matrix, usually the largest.  The arithmetic is
that of the ordinary fused path: the next sample is multiplied by the updated
weights, so nothing about the sequence of updates changes.  One row is never
worth waking a thread for: every step runs on the calling thread.
"""

import numpy as np
from numba import njit

from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import column_sums, gather_rows, gather_values
from fastnn.kernels.layer_steps import ACTIVATE, DELTA, FORWARD, SGD, leaf_of, step_shape
from fastnn.kernels.native_calls import OUTPUT_LEAF, call_output, call_step
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.small_matmul import rank1_update_then_dot
from fastnn.kernels.update_rules import step_scalars
from fastnn.kernels.views import bias_view, weight_view, workspace_block


@njit(inline="always")
def _one(leaves, kind, layer, buffers, s):
    # a layer step of one row, on this thread: its block is the whole result
    kind = np.int64(kind)  # a literal would compile another specialisation
    layer = np.int64(layer)
    m, n_cols, _, _ = step_shape(kind, layer, np.int64(1), buffers[3])
    call_step(leaves[leaf_of(kind)], (kind, layer, 1, buffers, s, 0, m, 0, n_cols))


@njit(**COMPILED)
def per_sample_sgd_epoch(leaves, params, grad, state, table, hidden, output, X, Y, weights,
                         order, settings, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """Plain SGD over ``X[order]`` one row at a time; as
    :func:`fastnn.kernels.plans.run_plan` training with ``batch_size == 1``.
    ``xbuf``/``ybuf``/``wbuf`` hold one row; ``leaves`` is the address table
    (the forward, delta, SGD and output slots are used)."""
    m = order.shape[0]
    L = table.shape[0]
    s = step_scalars(params, settings, np.int64(0))
    # np.int64: a literal argument would compile another specialisation
    first, one = np.int64(0), np.int64(1)
    W0 = weight_view(params, table, first)
    b0 = bias_view(params, table, first)
    bias_grad0 = bias_view(grad, table, first)
    Z0 = workspace_block(acts, table, first, one)
    D0 = workspace_block(deltas, table, first, one)
    current = xbuf
    following = np.empty_like(xbuf)  # once per epoch
    gather_rows(X, order, np.int64(0), current)
    first_product_ready = False
    for r in range(m):
        gather_rows(Y, order, r, ybuf)
        if gather_values(weights, order, r, wbuf) == 0:
            # a zero-weight row takes no step
            batch_stats[r, 0] = 0.0
            batch_stats[r, 1] = 0.0
            batch_stats[r, 2] = 0.0
            first_product_ready = False
            if r + 1 < m:
                gather_rows(X, order, r + 1, following)
                current, following = following, current
            continue
        buffers = (params, grad, state, table, hidden, current, acts, deltas)
        # after the previous step's update made this row's first product, only
        # its bias and activation are left
        for l in range(L):
            kind = ACTIVATE if l == 0 and first_product_ready else FORWARD
            _one(leaves, kind, l, buffers, s)
        loss, errors = call_output(leaves[OUTPUT_LEAF], (
            output, workspace_block(acts, table, L - 1, one), ybuf, wbuf, 1.0 / wbuf[0],
            workspace_block(deltas, table, L - 1, one), OUTPUT_DELTA))
        batch_stats[r, 0] = loss / wbuf[0]
        batch_stats[r, 1] = errors / wbuf[0]
        batch_stats[r, 2] = wbuf[0]
        for l in range(L - 1, 0, -1):
            # one call site: each step is lowered once
            for kind in (DELTA, SGD):
                _one(leaves, kind, l, buffers, s)
        if r + 1 < m:
            gather_rows(X, order, r + 1, following)
            # the first layer's step and the next row's first product, one pass
            rank1_update_then_dot(-s.lr, D0, current, s.keep, W0, following, Z0)
            column_sums(D0, bias_grad0)
            for j in range(b0.shape[0]):
                b0[j] -= s.lr * bias_grad0[j]
            first_product_ready = True
        else:
            _one(leaves, SGD, 0, buffers, s)
        current, following = following, current
