"""A whole training epoch inside compiled code: gather, forward, loss, backward, step."""

from numba import njit

from fastnn import codes
from fastnn.kernels.backward_pass import backward_pass, backward_sgd_step
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import gather_rows, gather_values
from fastnn.kernels.forward_pass import forward_pass
from fastnn.kernels.optimizer_step import optimizer_step
from fastnn.kernels.outputs import output_pass
from fastnn.kernels.per_sample import per_sample_sgd_epoch
from fastnn.kernels.scalars import cast_like
from fastnn.kernels.views import workspace_block


@njit(**COMPILED)
def train_epoch_loop(params, grad, state, table, hidden, output, X, Y, weights, order,
                     batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats,
                     n_blocks):
    """Mini-batch training over ``X[order]``; see :func:`fastnn.reference.train_epoch`.

    Nothing is allocated: every batch reuses the gather buffers and workspaces.
    ``n_blocks`` is the number of threads to share each step among.
    """
    # AdamW decays the weights in its step; the others put λW into the gradient
    decay = cast_like(params, 0.0) if settings.code == codes.ADAMW else settings.weight_decay
    # plain SGD steps inside the backward pass, with no gradient buffer in between
    plain_sgd = (settings.code == codes.SGD and settings.momentum == 0
                 and settings.clip_norm == 0)
    if plain_sgd and batch_size == 1:
        per_sample_sgd_epoch(params, grad, table, hidden, output, X, Y, weights, order,
                             settings.lr, decay, xbuf, ybuf, wbuf, acts, deltas, batch_stats)
        return
    m = order.shape[0]
    L = table.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
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
        if plain_sgd:
            backward_sgd_step(params, table, hidden, xb, acts, deltas, settings.lr, decay, grad,
                              n_blocks)
        else:
            backward_pass(params, table, hidden, xb, acts, deltas, decay, grad, n_blocks)
            optimizer_step(params, grad, state, table, settings, step, n_blocks)
