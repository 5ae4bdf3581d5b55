"""Mini-batch training of a small network with the batch's rows split among the threads.

The epoch of :func:`fastnn.kernels.plans.run_plan` shares each layer step of a
batch among the threads, so every step ends with the threads waiting for each
other, and the next step's input is a block half of which another core wrote.
For a small network that is most of the time: a batch of 200 digits through
64-100-10 (float64, plain SGD) took 172 µs in a 2-thread epoch and 191 µs in
a 1-thread one, while its layer steps timed alone add up to 105 µs (2-core
Intel Sapphire Rapids).  Here each thread instead runs the whole pass on its
own rows of the batch: gathers them, forward, the output pass, the backward
pass into a gradient of its own, all on its own workspaces, with its layer
steps on the calling thread; then the gradients are added up, in thread
order, and the optimizer steps the sum (the UPDATE steps of a clipped fit),
both shared among the threads by rows of the weights.  Two waits a batch
instead of one a step; the sum of the weight gradients is the only work the
threads add (``(threads - 1) · n_params`` additions a batch), which is why
:func:`row_parallel` keeps this to small networks.

The sum and the step were first on the calling thread alone, the others
waiting: Adam's step (a square root and two divisions a parameter) took a
fifth of a digits batch (64-100-10, float64, batch 200: 144 µs a batch
with Adam against 115 with plain SGD, 2 threads, Sapphire Rapids), and the
other thread's gradient had to cross to the calling thread's core whole.
A second parallel region costs about 1.3 µs here.

The numbers are those of the reference up to rounding, like every path's: the
weight gradient is summed over the batch's rows in another order (thread by
thread), and the weight decay enters through the gradient (``∂W = δᵀA +
λW``, on the first thread only) rather than plain SGD's fused ``keep · W``.
They depend on the thread count, never on timing.
"""

import numpy as np
from numba import njit, prange

from fastnn.aligned import aligned_zeros
from fastnn.kernels.arrays import vector
from fastnn.kernels.config import COMPILED, INTERNAL, ROW_PARALLEL_MAX_PARAMS
from fastnn.kernels.elementwise import gather_batch_weights, gather_rows, record_batch
from fastnn.kernels.layer_steps import GATHER, UPDATE, run_step
from fastnn.kernels.native_calls import GRADIENT_LEAF, OUTPUT_LEAF, call_output, call_step
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.plans import OUTPUT
from fastnn.kernels.update_rules import (
    StepScalars,
    clip_gradient,
    count_step,
    step_scalars,
    without_decay,
)
from fastnn.kernels.views import bias_span, weight_span, workspace_block


def row_parallel(n_params, batch_size, n_threads):
    """Whether a dense mini-batch fit takes :func:`row_parallel_epoch`: with two threads or
    more, batches of at least two rows a thread, and at most
    ``ROW_PARALLEL_MAX_PARAMS`` parameters (see :mod:`fastnn.kernels.config`)."""
    return (n_threads > 1 and batch_size >= 2 * n_threads
            and n_params <= ROW_PARALLEL_MAX_PARAMS)


@njit(**INTERNAL)
def add_thread_gradients(grad, thread_grads, parts, start, length):
    """Add ``thread_grads[:parts - 1]`` (threads 1, 2, ...) into ``grad[start:start + length]``,
    in thread order (so the sum does not depend on which thread adds it)."""
    total = vector(grad, start, length)
    for t in range(parts - 1):
        part = vector(thread_grads[t], start, length)
        for e in range(length):
            total[e] += part[e]


@njit(inline="always")
def _rebuilt(s):
    # the same scalars, built by StepScalars itself: a prange body receives a named
    # tuple in parts and rebuilds it from the class its definition calls, so one that
    # a compiled function returned fails to compile there (NameError: StepScalars)
    return StepScalars(*s)


@njit(**INTERNAL)
def step_rows(leaves, t, n_blocks, buffers, thread_grads, parts, add, n, s):
    """Thread ``t``'s share of a batch's step: rows ``t · d_out / n_blocks`` up to the next
    thread's of every layer's ``W`` (and, for the thread with a layer's first row, its
    bias); first ``add`` the other threads' gradients of those rows into ``grad``."""
    grad, table = buffers[1], buffers[3]
    for layer in range(table.shape[0]):
        start, rows, cols = weight_span(table, layer)
        r0 = t * rows // n_blocks
        r1 = (t + 1) * rows // n_blocks
        if r1 == r0:
            continue
        if add:
            add_thread_gradients(grad, thread_grads, parts, start + r0 * cols, (r1 - r0) * cols)
            if r0 == 0:
                b_start, length = bias_span(table, layer)
                add_thread_gradients(grad, thread_grads, parts, b_start, length)
        call_step(leaves[GRADIENT_LEAF], (UPDATE, layer, n, buffers, s, r0, r1, 0, cols))


@njit(**COMPILED, parallel=True)
def row_parallel_epoch(leaves, plan, params, grad, state, table, hidden, output, X, Y,
                       weights, order, batch_size, settings, step, ybuf, wbuf, xs, thread_acts,
                       thread_deltas, thread_grads, thread_stats, batch_stats, n_blocks):
    """Every mini-batch of ``X[order]``, each batch's rows split among ``n_blocks`` threads.

    Parameters
    ----------
    leaves : ndarray of int64
        The address table (:mod:`fastnn.kernels.native_calls`).
    plan : ndarray of int64, shape (steps, 2)
        What each thread runs on its rows: GATHER, FORWARD of each layer,
        OUTPUT, then DELTA and GRADIENT down the layers
        (:func:`fastnn.kernels.plans.row_plan`).
    params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
    settings, step, ybuf, wbuf, batch_stats
        As for :func:`fastnn.kernels.plans.run_plan`; ``grad`` also holds the
        first thread's gradient.
    xs : ndarray, shape (n_blocks, rows, d_0)
        Each thread's gathered rows; ``rows`` is at least
        ``ceil(batch_size / n_blocks)``.
    thread_acts, thread_deltas : ndarray, shape (n_blocks, rows * n_units)
        Each thread's workspaces.
    thread_grads : ndarray, shape (n_blocks - 1, n_params)
        The gradients of the threads after the first.
    thread_stats : ndarray of float64, shape (n_blocks, 2)
        Each thread's loss and error totals.
    n_blocks : int
        Threads.
    """
    m = order.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
    last = table.shape[0] - 1
    for b in range(n_batches):
        start = b * batch_size
        n = min(batch_size, m - start)
        # the row weights here (their sum scales every thread's delta), the targets by
        # the thread whose rows they are
        total_weight = gather_batch_weights(weights, order, start, wbuf[:n], batch_stats, b)
        if total_weight == 0:
            continue  # all its sample weights are zero: no step
        s = step_scalars(params, settings, step[0])
        # the decay λW goes into the first thread's gradient only
        s_rest = without_decay(s)
        parts = min(n_blocks, n)
        for t in prange(parts):
            r0 = t * n // parts
            r1 = (t + 1) * n // parts
            rows = r1 - r0
            g = grad if t == 0 else thread_grads[t - 1]
            st = s if t == 0 else s_rest
            acts = thread_acts[t]
            deltas = thread_deltas[t]
            buffers = (params, g, state, table, hidden, xs[t][:rows], acts, deltas, X, order)
            gather_rows(Y, order, start + r0, ybuf[r0:r1])
            for i in range(plan.shape[0]):
                kind = plan[i, 0]
                if kind == OUTPUT:
                    loss, errors = call_output(leaves[OUTPUT_LEAF], (
                        output, workspace_block(acts, table, last, rows), ybuf[r0:r1],
                        wbuf[r0:r1], 1.0 / total_weight,
                        workspace_block(deltas, table, last, rows), OUTPUT_DELTA))
                    thread_stats[t, 0] = loss
                    thread_stats[t, 1] = errors
                else:
                    # GATHER's "layer" is where the thread's rows start in the row order
                    layer = start + r0 if kind == GATHER else plan[i, 1]
                    run_step(leaves, kind, layer, rows, buffers, st, 1)
        clipped = settings.clip_norm != 0
        if clipped:
            # the clip scales by the norm of the whole sum: summed here, before the step
            add_thread_gradients(grad, thread_grads, parts, 0, grad.shape[0])
            clip_gradient(grad, settings.clip_norm)
        s_step = _rebuilt(step_scalars(params, settings, count_step(settings, step)))
        # the sum and the step shared by rows of the weights (each thread owns whole
        # rows of W, ∂W and the optimizer state, as in parallel_step); the thread with
        # a layer's first row also sums and steps its bias
        for t in prange(n_blocks):
            step_rows(leaves, t, n_blocks, (params, grad, state, table, hidden, xs[0],
                                            thread_acts[0], thread_deltas[0], X, order),
                      thread_grads, parts, not clipped, n, s_step)
        loss = 0.0
        errors = 0.0
        for t in range(parts):
            loss += thread_stats[t, 0]
            errors += thread_stats[t, 1]
        record_batch(batch_stats, b, loss, errors, total_weight)


def thread_buffers(dtype, n_threads, batch_size, d0, n_units, n_params):
    """The per-thread arrays of :func:`row_parallel_epoch`: ``(xs, thread_acts,
    thread_deltas, thread_grads, thread_stats)``."""
    rows = -(-batch_size // n_threads)
    return (aligned_zeros((n_threads, rows, d0), dtype),
            aligned_zeros((n_threads, rows * n_units), dtype),
            aligned_zeros((n_threads, rows * n_units), dtype),
            aligned_zeros((n_threads - 1, n_params), dtype),
            np.zeros((n_threads, 2), dtype=np.float64))
