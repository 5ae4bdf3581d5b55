"""A whole training epoch inside compiled code: gather, forward, loss, backward, update."""

from numba import njit

from fastnn.kernels.backward_pass import backward_pass
from fastnn.kernels.elementwise import gather_rows
from fastnn.kernels.forward_pass import forward_pass
from fastnn.kernels.outputs import output_pass
from fastnn.kernels.sgd_step import sgd_update
from fastnn.kernels.views import workspace_block


@njit(cache=True, nogil=True)
def train_epoch_loop(params, grad, velocity, table, hidden, output, X, Y, order, batch_size,
                     lr, momentum, nesterov, weight_decay, xbuf, ybuf, acts, deltas,
                     batch_stats, n_blocks):
    """Mini-batch SGD over ``X[order]``; see :func:`fastnn.reference.train_epoch`.

    Nothing is allocated: every batch reuses the gather buffers and workspaces.
    ``n_blocks`` is the number of threads to share each step among.
    """
    m = order.shape[0]
    L = table.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
    for b in range(n_batches):
        start = b * batch_size
        n = min(batch_size, m - start)
        xb = xbuf[:n]
        yb = ybuf[:n]
        gather_rows(X, order, start, xb, n_blocks)
        gather_rows(Y, order, start, yb, n_blocks)
        forward_pass(params, table, hidden, xb, acts, n_blocks)
        loss, errors = output_pass(output, workspace_block(acts, table, L - 1, n), yb, 1.0 / n,
                                   workspace_block(deltas, table, L - 1, n), True, n_blocks)
        batch_stats[b, 0] = loss / n
        batch_stats[b, 1] = errors / n
        backward_pass(params, table, hidden, xb, acts, deltas, weight_decay, grad, n_blocks)
        sgd_update(params, grad, velocity, lr, momentum, nesterov, n_blocks)
