"""Per-sample SGD (batch size 1, the notes' algorithm), pipelined across samples.

A plain SGD step ends with the first layer's update and the next step starts
with the first layer's product; :func:`rank1_update_then_dot` does both in one
pass over the first weight matrix, usually the largest.  The arithmetic is
that of the ordinary fused path: the next sample is multiplied by the updated
weights, so nothing about the sequence of updates changes.

One row is never worth waking a thread for, and it is too little work for a
call per layer step: a row of 784-200-10 is about 25 µs, and calling the
layer steps through their addresses (:mod:`fastnn.kernels.layer_steps`) cost
3-4 µs of it.  So this loop does the small products itself, with the loops of
:mod:`fastnn.kernels.small_matmul` and :mod:`fastnn.kernels.elementwise`; it
is compiled only for per-sample fits.
"""

import numpy as np
from numba import njit

from fastnn import codes
from fastnn.kernels.config import COMPILED, INTERNAL
from fastnn.kernels.elementwise import (
    bias_activate,
    gather_rows,
    gather_values,
    multiply_derivative,
)
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.outputs import output_pass
from fastnn.kernels.small_matmul import (
    low_rank_update,
    rank1_update_then_dot,
    rows_times,
    rows_times_transposed,
)
from fastnn.kernels.update_rules import step_scalars
from fastnn.kernels.views import bias_view, weight_view, workspace_block


@njit(**INTERNAL, fastmath={"reassoc", "contract"})
def _dot_rows(alpha, A, B, beta, C):
    # the dot products of one row's forward product, with the flags that let
    # LLVM vectorise their sums (docs/design.md, rule 6)
    rows_times_transposed(alpha, A, B, beta, C)


@njit(inline="always")
def row_forward(params, table, hidden, acts, s, A0, first_product_done):
    """One row's forward pass from ``A0`` (1, d_0), the logits in the last block of
    ``acts``; when ``first_product_done``, the first layer's block already holds its
    product (``A0`` is not read) and gets only its bias and activation.

    One loop over every layer, one call site of each element-wise loop (each
    inlined call site is compiled again; the first layer peeled off the loop cost
    the per-sample loop 2 s of compiling, 10.4-11.2 against 12.2-13.9).
    """
    L = table.shape[0]
    one = np.int64(1)
    for l in range(L):
        Z = workspace_block(acts, table, l, one)
        if l > 0 or not first_product_done:
            A = A0 if l == 0 else workspace_block(acts, table, l - 1, one)
            _dot_rows(s.one, A, weight_view(params, table, l), s.zero, Z)
        code = hidden[l] if l < L - 1 else codes.IDENTITY
        bias_activate(Z, bias_view(params, table, l), code, 0, 1, 0, Z.shape[1])


@njit(inline="always")
def row_output(output, acts, deltas, table, ybuf, wbuf, batch_stats, r):
    """The output pass of row ``r`` (its loss, error and ``δ_L``), recorded in
    ``batch_stats[r]``.  Called, not through its address: linked into the loop,
    LLVM inlines it."""
    last = table.shape[0] - 1
    one = np.int64(1)
    loss, errors = output_pass(output, workspace_block(acts, table, last, one), ybuf, wbuf,
                               1.0 / wbuf[0], workspace_block(deltas, table, last, one),
                               np.int64(OUTPUT_DELTA))
    batch_stats[r, 0] = loss / wbuf[0]
    batch_stats[r, 1] = errors / wbuf[0]
    batch_stats[r, 2] = wbuf[0]


@njit(inline="always")
def bias_step(b, D, lr):
    """``b ← b - lr δ`` for one row's delta ``D`` (1, d)."""
    for j in range(b.shape[0]):
        b[j] -= lr * D[0, j]  # Σ_rows δ of one row


@njit(inline="always")
def upper_backward_sgd(params, table, hidden, acts, deltas, s):
    """One row's backward pass down to the first layer's delta ``δ_1`` (in its block of
    ``deltas``, from ``δ_L`` in the last), with the plain SGD step of every layer above
    the first: each ``δ_{l-1}`` is made from ``W_l`` before ``W_l`` changes."""
    L = table.shape[0]
    one = np.int64(1)
    for l in range(L - 1, 0, -1):
        D = workspace_block(deltas, table, l, one)
        W = weight_view(params, table, l)
        A_prev = workspace_block(acts, table, l - 1, one)
        D_prev = workspace_block(deltas, table, l - 1, one)
        rows_times(s.one, D, W, s.zero, D_prev)
        multiply_derivative(D_prev, A_prev, hidden[l - 1], s.one, 0, 1, 0, D_prev.shape[1])
        low_rank_update(-s.lr, D, A_prev, s.keep, W)
        bias_step(bias_view(params, table, l), D, s.lr)


@njit(**COMPILED)
def per_sample_sgd_epoch(leaves, params, grad, state, table, hidden, output, X, Y, weights,
                         order, settings, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """Plain SGD over ``X[order]`` one row at a time; as
    :func:`fastnn.kernels.plans.run_plan` training with ``batch_size == 1``.
    ``xbuf``/``ybuf``/``wbuf`` hold one row; ``leaves``, ``grad`` and ``state``
    are not read (the arguments are those of every training entry point)."""
    m = order.shape[0]
    s = step_scalars(params, settings, np.int64(0))
    # np.int64: a literal argument would compile another specialisation
    first, one = np.int64(0), np.int64(1)
    W0 = weight_view(params, table, first)
    Z0 = workspace_block(acts, table, first, one)
    D0 = workspace_block(deltas, table, first, one)
    current = xbuf
    following = np.empty_like(xbuf)  # once per epoch
    gather_rows(X, order, first, current)
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
        # after the previous step's update made this row's first product, only
        # its bias and activation are left
        row_forward(params, table, hidden, acts, s, current, first_product_ready)
        row_output(output, acts, deltas, table, ybuf, wbuf, batch_stats, r)
        if r + 1 < m:
            gather_rows(X, order, r + 1, following)
        first_product_ready = r + 1 < m
        upper_backward_sgd(params, table, hidden, acts, deltas, s)
        if first_product_ready:
            # the first layer's step and the next row's first product, one pass
            rank1_update_then_dot(-s.lr, D0, current, s.keep, W0, following, Z0)
        else:
            low_rank_update(-s.lr, D0, current, s.keep, W0)
        bias_step(bias_view(params, table, first), D0, s.lr)
        current, following = following, current
