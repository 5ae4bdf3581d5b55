"""A whole training epoch inside compiled code: gather, forward, loss, backward, step.

Four entry points, chosen in Python by :func:`fastnn.kernels.train_epoch`, so
that a fit compiles only the path it runs (compiling every path on the first
fit took 40 s): plain SGD with the step fused into the backward pass, the same
one row at a time (:mod:`fastnn.kernels.per_sample`), SGD with momentum or
clipping through a gradient buffer, and Adam/AdamW.
"""

from numba import njit

from fastnn import codes
from fastnn.kernels.backward_pass import backward_pass, backward_sgd_step
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import gather_rows, gather_values
from fastnn.kernels.forward_pass import forward_pass
from fastnn.kernels.optimizer_step import adam_step, sgd_step
from fastnn.kernels.outputs import output_pass
from fastnn.kernels.scalars import cast_like
from fastnn.kernels.views import workspace_block


@njit(**COMPILED)
def _fused_sgd_step(params, grad, state, table, hidden, X, acts, deltas, settings, step, decay,
                    n_blocks):
    # plain SGD: the step happens inside the backward pass, no gradient buffer
    backward_sgd_step(params, table, hidden, X, acts, deltas, settings.lr, decay, grad, n_blocks)


@njit(**COMPILED)
def _gradient_then_sgd(params, grad, state, table, hidden, X, acts, deltas, settings, step,
                       decay, n_blocks):
    backward_pass(params, table, hidden, X, acts, deltas, decay, grad, n_blocks)
    sgd_step(params, grad, state, settings, n_blocks)


@njit(**COMPILED)
def _gradient_then_adam(params, grad, state, table, hidden, X, acts, deltas, settings, step,
                        decay, n_blocks):
    backward_pass(params, table, hidden, X, acts, deltas, decay, grad, n_blocks)
    adam_step(params, grad, state, table, settings, step, n_blocks)


@njit(inline="always")
def _epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
           settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks, step_function):
    # Mini-batches over X[order]; nothing is allocated, every batch reuses the
    # gather buffers and workspaces.  step_function takes the backward pass and
    # the update (a compile-time constant: each entry point compiles only its own).
    m = order.shape[0]
    L = table.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
    # AdamW decays the weights in its step; the others put λW into the gradient
    decay = cast_like(params, 0.0) if settings.code == codes.ADAMW else settings.weight_decay
    for b in range(n_batches):
        start = b * batch_size
        n = min(batch_size, m - start)
        xb = xbuf[:n]
        yb = ybuf[:n]
        wb = wbuf[:n]
        gather_rows(X, order, start, xb, n_blocks)
        gather_rows(Y, order, start, yb, n_blocks)
        total_weight = gather_values(weights, order, start, wb)
        if total_weight == 0:
            # nothing to learn from (all its sample weights are zero): no step
            batch_stats[b, 0] = 0.0
            batch_stats[b, 1] = 0.0
            batch_stats[b, 2] = 0.0
            continue
        forward_pass(params, table, hidden, xb, acts, n_blocks)
        loss, errors = output_pass(output, workspace_block(acts, table, L - 1, n), yb, wb,
                                   1.0 / total_weight, workspace_block(deltas, table, L - 1, n),
                                   True, n_blocks)
        batch_stats[b, 0] = loss / total_weight
        batch_stats[b, 1] = errors / total_weight
        batch_stats[b, 2] = total_weight
        step_function(params, grad, state, table, hidden, xb, acts, deltas, settings, step, decay,
                      n_blocks)


@njit(**COMPILED)
def fused_sgd_epoch(params, grad, state, table, hidden, output, X, Y, weights, order,
                    batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats,
                    n_blocks):
    """Plain SGD (no momentum, no clipping) over ``X[order]``; see
    :func:`fastnn.reference.train_epoch`."""
    _epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
           settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks,
           _fused_sgd_step)


@njit(**COMPILED)
def sgd_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
              settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks):
    """SGD with momentum, Nesterov or clipping over ``X[order]``, through the
    gradient buffer; see :func:`fastnn.reference.train_epoch`."""
    _epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
           settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks,
           _gradient_then_sgd)


@njit(**COMPILED)
def adam_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
               settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks):
    """Adam or AdamW over ``X[order]``; see :func:`fastnn.reference.train_epoch`."""
    _epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
           settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, n_blocks,
           _gradient_then_adam)
