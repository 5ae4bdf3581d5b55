"""The passes of training as plans: the layer steps of one batch, as data.

A plan is an int64 array of ``(kind, layer)`` rows, run in order by one
compiled loop, :func:`run_plan`.  Forward propagation is the FORWARD step of
each layer, first to last; the backward pass (``δ_l = (δ_{l+1} W_{l+1}) ⊙
g'(A_l)``, ``∂W_l = δ_l^T A_{l-1} + λ W_l``, ``∂b_l = Σ_rows δ_l``) visits the
layers from the output down, each a DELTA step (the delta below it, made from
``W_l`` before anything changes ``W_l``) and then a step on its own gradient
(:mod:`fastnn.kernels.layer_steps`).  A training plan starts with GATHER,
the batch's rows of the data.  Three kinds of row are the plan's own:

- ``OUTPUT``: the output pass, the batch's loss and error count, and ``δ_L``;
- ``SCALARS``: count one more optimizer step (Adam's bias correction uses the
  count) and compute its scalars;
- ``CLIP``: clip the whole gradient to ``settings.clip_norm``.

One training batch is then, by the optimizer: plain SGD ``F… OUTPUT
(DELTA, SGD)…``, the step fused into each product; momentum, Adam, AdamW
``F… OUTPUT SCALARS (DELTA, STEP)…``, each block of the gradient stepped as
soon as it is computed (bit for bit the step of the whole gradient after the
pass); with clipping ``F… OUTPUT (DELTA, GRADIENT)… CLIP SCALARS UPDATE…``.

Why plans: every pass of every optimizer is the same compiled loop with one
call of a layer step in it, so it is compiled once per dtype (docs/design.md,
rule 7: compile time grows with the code Numba lowers).
"""

from functools import cache

import numpy as np
from numba import njit

from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import gather_batch, record_batch
from fastnn.kernels.layer_steps import (
    DELTA,
    FORWARD,
    GATHER,
    GRADIENT,
    SGD,
    STEP,
    UPDATE,
    run_step,
)
from fastnn.kernels.native_calls import OUTPUT_LEAF, call_output
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.update_rules import clip_gradient, count_step, step_scalars
from fastnn.kernels.views import workspace_block

OUTPUT = 10
SCALARS = 11
CLIP = 12


def as_plan(rows):
    """``(kind, layer)`` rows as a plan: a read-only int64 array of shape (steps, 2)."""
    plan = np.array(rows, dtype=np.int64).reshape(-1, 2)
    plan.flags.writeable = False  # shared by every call (functools.cache)
    return plan


@cache
def forward_plan(n_layers):
    """FORWARD of every layer, first to last."""
    return as_plan([(FORWARD, l) for l in range(n_layers)])


def backward_rows(n_layers, kind):
    """The backward pass from the output layer down: ``(DELTA, l)`` then ``(kind, l)`` for
    each layer ``l``, the first layer without a DELTA (it has no delta below it)."""
    rows = []
    for l in range(n_layers - 1, -1, -1):
        if l > 0:
            rows.append((DELTA, l))
        rows.append((kind, l))
    return rows


@cache
def backward_plan(n_layers):
    """The backward pass into the gradient buffer (``δ_L`` must be in place)."""
    return as_plan(backward_rows(n_layers, GRADIENT))


@cache
def step_plan(n_layers):
    """Clip the gradient, count the step, step every layer (UPDATE)."""
    return as_plan([(CLIP, 0), (SCALARS, 0)] + [(UPDATE, l) for l in range(n_layers)])


def _batch_forward_rows(n_layers):
    # a training batch up to its output delta: its rows gathered, forward, output
    return [(GATHER, 0)] + [(FORWARD, l) for l in range(n_layers)] + [(OUTPUT, 0)]


@cache
def row_plan(n_layers):
    """One thread's share of a batch in :mod:`fastnn.kernels.row_parallel`: its rows
    gathered, forward, output, and the backward pass into its gradient."""
    return as_plan(_batch_forward_rows(n_layers) + backward_rows(n_layers, GRADIENT))


@cache
def training_plan(n_layers, plain_sgd, clipped):
    """One training batch: its rows gathered, forward, output, backward and the step
    (see the module)."""
    rows = _batch_forward_rows(n_layers)
    if clipped:
        rows += backward_rows(n_layers, GRADIENT) + [(CLIP, 0), (SCALARS, 0)]
        rows += [(UPDATE, l) for l in range(n_layers)]
    elif plain_sgd:
        rows += backward_rows(n_layers, SGD)
    else:
        rows += [(SCALARS, 0)] + backward_rows(n_layers, STEP)
    return as_plan(rows)


@njit(**COMPILED)
def run_plan(leaves, plan, params, grad, state, table, hidden, output, X, Y, weights, scale,
             order, batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats,
             n_blocks):
    """Run ``plan`` on the batch ``X``, or on every mini-batch of ``X[order]``.

    Parameters
    ----------
    leaves : ndarray of int64
        The address table (:mod:`fastnn.kernels.native_calls`).
    plan : ndarray of int64, shape (steps, 2)
    params, grad : ndarray, shape (n_params,)
    state : ndarray, shape (rows, n_params)
    table, hidden, output
        See :mod:`fastnn.reference`.
    X : ndarray, shape (m, d_0)
    Y : ndarray, shape (m, d_L)
    weights : ndarray, shape (m,)
        Targets and row weights (not read without an OUTPUT row).
    scale : float
        ``1 / Σ w`` of ``X``'s rows when ``order`` is empty.
    order : ndarray of int64, shape (m',)
        Empty: ``X`` itself is the one batch (its rows fit the workspaces).
        Otherwise the rows to visit; consecutive runs of ``batch_size`` are
        the mini-batches, gathered into ``xbuf``, ``ybuf``, ``wbuf``.
    settings : fastnn.optim.StepSettings
    step : ndarray of int64, shape (1,)
        Optimizer steps taken; each SCALARS row counts one more.
    acts, deltas : ndarray, shape (capacity * n_units,)
    batch_stats : ndarray of float64, shape (batches, 3)
        Written per mini-batch (see :func:`fastnn.reference.train_epoch`).
    n_blocks : int
        Threads to share each step among.

    Returns
    -------
    loss_total, error_total : float
        The OUTPUT row's ``Σ w_i L_i`` and ``Σ w_i [row i wrong]`` for the
        one batch (0 without OUTPUT, or with ``order``).

    Nothing is allocated.  A mini-batch whose weights are all zero takes no
    step and records zeros.
    """
    whole = order.shape[0] == 0
    m = order.shape[0]
    start = 0
    n_batches = 1 if whole else (m + batch_size - 1) // batch_size
    last = table.shape[0] - 1
    loss = 0.0
    errors = 0.0
    for b in range(n_batches):
        if whole:
            n = X.shape[0]
            xb = X
            yb = Y
            wb = weights
            total_weight = 1.0 / scale
        else:
            start = b * batch_size
            n = min(batch_size, m - start)
            xb = xbuf[:n]
            yb = ybuf[:n]
            wb = wbuf[:n]
            total_weight = gather_batch(Y, weights, order, start, yb, wb, batch_stats, b)
            if total_weight == 0:
                continue  # all its sample weights are zero: no step
        buffers = (params, grad, state, table, hidden, xb, acts, deltas, X, order)
        s = step_scalars(params, settings, step[0])
        for i in range(plan.shape[0]):
            kind = plan[i, 0]
            if kind == OUTPUT:
                loss, errors = call_output(leaves[OUTPUT_LEAF], (
                    output, workspace_block(acts, table, last, n), yb, wb, 1.0 / total_weight,
                    workspace_block(deltas, table, last, n), OUTPUT_DELTA))
            elif kind == SCALARS:
                s = step_scalars(params, settings, count_step(settings, step))
            elif kind == CLIP:
                clip_gradient(grad, settings.clip_norm)
            else:
                # GATHER's "layer" is where the batch starts in the row order
                layer = start if kind == GATHER else plan[i, 1]
                run_step(leaves, kind, layer, n, buffers, s, n_blocks)
        if not whole:
            record_batch(batch_stats, b, loss, errors, total_weight)
    return loss, errors
