"""The kernel contract compiled with Numba (installed as ``fastnn.kernels``).

Same functions, same signatures as :mod:`fastnn.reference`; see its module
docstring for the buffer conventions.  Kernels compute and never validate:
the :class:`fastnn.Network` API checks every input before it gets here.

Threads (DESIGN rule 1): Numba owns them.  Every step is compiled serially and
with ``parallel=True``; the parallel matrix products give each thread its own
slab of the result as a single-threaded BLAS call, so the caller must cap BLAS
at one thread (:func:`fastnn.threads.thread_scope` does).  Steps too small to
pay for waking the threads (batch size 1, narrow layers) run serially; the
thresholds are in :mod:`fastnn.kernels.config`.
"""

import os

import numba

# Reductions are reproducible at a fixed thread count with the omp and
# workqueue layers, not with tbb (DESIGN rule 5); a user's own choice stands.
if not ({"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ)):
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]

from fastnn import codes as _codes  # noqa: E402
from fastnn.kernels import cache_guard as _cache_guard  # noqa: E402
from fastnn.kernels import outputs as _outputs  # noqa: E402
from fastnn.kernels.backward_pass import backward_pass  # noqa: E402
from fastnn.kernels.epoch_loop import adam_epoch, fused_sgd_epoch, sgd_epoch  # noqa: E402
from fastnn.kernels.forward_pass import forward_pass  # noqa: E402
from fastnn.kernels.optimizer_step import optimizer_step as _optimizer_step  # noqa: E402
from fastnn.kernels.per_sample import per_sample_sgd_epoch  # noqa: E402

# before any kernel is called, so nothing stale is loaded
_cache_guard.guard(forward_pass._cache._cache_path)

__all__ = ["forward", "output_activation", "loss_sum", "error_count", "output_delta",
           "backward", "optimizer_step", "train_epoch"]


def forward(params, table, hidden, X, acts):
    """See :func:`fastnn.reference.forward`."""
    forward_pass(params, table, hidden, X, acts, numba.get_num_threads())


def output_activation(output, Z, A):
    """See :func:`fastnn.reference.output_activation`."""
    _outputs.output_activation(output, Z, A, numba.get_num_threads())


def _output_pass(output, Z, Y, weights, scale, delta, write_delta):
    return _outputs.output_pass_dispatch(output, Z, Y, weights, scale, delta, write_delta,
                                         numba.get_num_threads())


def loss_sum(output, Z, Y, weights):
    """See :func:`fastnn.reference.loss_sum`."""
    return _output_pass(output, Z, Y, weights, 1.0, Z, False)[0]


def error_count(output, Z, Y, weights):
    """See :func:`fastnn.reference.error_count`."""
    return _output_pass(output, Z, Y, weights, 1.0, Z, False)[1]


def output_delta(output, Z, Y, weights, scale, delta):
    """See :func:`fastnn.reference.output_delta`."""
    return _output_pass(output, Z, Y, weights, scale, delta, True)[0]


def backward(params, table, hidden, X, acts, deltas, weight_decay, grad):
    """See :func:`fastnn.reference.backward`."""
    backward_pass(params, table, hidden, X, acts, deltas, weight_decay, grad,
                  numba.get_num_threads())


def optimizer_step(params, grad, state, table, settings, step):
    """See :func:`fastnn.reference.optimizer_step`."""
    _optimizer_step(params, grad, state, table, settings, step, numba.get_num_threads())


def train_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """See :func:`fastnn.reference.train_epoch`.

    The path is chosen here, in Python, so that a fit compiles only the one it
    runs: plain SGD steps inside the backward pass (per-sample SGD in its own
    pipelined loop); SGD with momentum or clipping, and Adam, go through the
    gradient buffer.
    """
    plain_sgd = (settings.code == _codes.SGD and settings.momentum == 0
                 and settings.clip_norm == 0)
    if plain_sgd and batch_size == 1:
        decay = settings.weight_decay
        per_sample_sgd_epoch(params, grad, table, hidden, output, X, Y, weights, order,
                             settings.lr, decay, xbuf, ybuf, wbuf, acts, deltas, batch_stats)
        return
    if plain_sgd:
        epoch = fused_sgd_epoch
    else:
        epoch = sgd_epoch if settings.code == _codes.SGD else adam_epoch
    epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
          settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats, numba.get_num_threads())
