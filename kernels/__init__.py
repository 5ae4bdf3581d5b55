"""The kernel contract compiled with Numba (installed as ``fastnn.kernels``).

Same functions, same signatures as :mod:`fastnn.reference`; see its module
docstring for the buffer conventions.  Kernels compute and never validate:
the :class:`fastnn.Network` API checks every input before it gets here.

Threads (docs/design.md, rule 1): Numba owns them.  One function is compiled
with ``parallel=True``, :func:`fastnn.kernels.matmul.parallel_product`: each
thread computes its own slab of a matrix product as a single-threaded BLAS
call and finishes it (bias and activation, the activation derivative, the
optimizer step), so the caller must cap BLAS at one thread
(:func:`fastnn.threads.thread_scope` does).  Everything else is serial code;
steps too small to pay for waking the threads (batch size 1, narrow layers)
run on the calling thread; the thresholds are in :mod:`fastnn.kernels.config`.

What a fit compiles (docs/design.md, rule 7): each function a Python wrapper
below calls is compiled once per dtype, on first use, with every other
function inlined into it except the two products (serial and parallel) and
the fused-multiply-add dot-product loops; a compiled function that calls
another one makes LLVM optimise the callee again inside the caller, so the
call tree is kept one level deep.
"""

import os

import numba
import numpy as np

# Reductions are reproducible at a fixed thread count with the omp and
# workqueue layers, not with tbb (docs/design.md, rule 5); a user's own choice stands.
if not ({"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ)):
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]

from fastnn import codes as _codes  # noqa: E402
from fastnn.kernels import cache_guard as _cache_guard  # noqa: E402
from fastnn.kernels import compiler as _compiler  # noqa: E402
from fastnn.kernels import outputs as _outputs  # noqa: E402
from fastnn.kernels import plans as _plans  # noqa: E402
from fastnn.kernels.leaves import address_table, unit_list  # noqa: E402
from fastnn.kernels.native_calls import (  # noqa: E402
    DELTA_LEAF,
    FORWARD_LEAF,
    GRADIENT_LEAF,
    N_LEAVES,
    OUTPUT_LEAF,
    PARALLEL_LEAF,
    SGD_LEAF,
)
from fastnn.kernels.per_sample import per_sample_sgd_epoch  # noqa: E402
from fastnn.optim import step_settings as _step_settings  # noqa: E402

# before any kernel is called, so nothing stale is loaded
_cache_guard.guard(_plans.run_plan._cache._cache_path)

__all__ = ["forward", "output_activation", "loss_sum", "error_count", "output_delta",
           "backward", "optimizer_step", "train_epoch", "prepare_train_epoch"]

#: a stand-in for the row weights of a pass that reads none
_NO_WEIGHTS = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}
#: no row order: the plan runs on X itself
_WHOLE = np.empty(0, dtype=np.int64)
_NO_STATS = np.empty((0, 3), dtype=np.float64)
#: the address table's place in an entry point's arguments, before it is known
_NO_LEAVES = np.zeros(N_LEAVES, dtype=np.int64)

_prepared = set()  # (entry point, dtype, slots) made ready in this process


def _slots(slots):
    """``slots`` and the thread count of this call: the parallel split is
    compiled only when there are threads to split among."""
    n_threads = numba.get_num_threads()
    return (slots + (PARALLEL_LEAF,) if n_threads > 1 else slots), n_threads


def _prepare(entry, args, dtype, slots, what):
    """Compile (or load) ``entry`` for ``args`` and the layer steps in ``slots``, once.

    ``args`` are the entry point's arguments with ``_NO_LEAVES`` for the
    address table.  Returns the seconds spent compiling.
    """
    key = (entry, np.dtype(dtype), slots)
    if key in _prepared:
        return 0.0
    units = unit_list(dtype, slots) + [(entry, tuple(entry.typeof_pyval(a) for a in args))]
    seconds = _compiler.prepare(units, f"the {np.dtype(dtype).name} {what}")
    _prepared.add(key)
    return seconds


def _run(entry, args, dtype, slots, what):
    _prepare(entry, args, dtype, slots, what)
    return entry(address_table(dtype, slots), *args[1:])


def _plan_args(plan, params, grad, state, table, hidden, X, acts, deltas, settings, step,
               n_threads):
    # one batch, X itself, and no OUTPUT row: the output pass's arguments and
    # the gather buffers are not read (arrays of the right types stand in)
    weights = _NO_WEIGHTS[params.dtype]
    return (_NO_LEAVES, plan, params, grad, state, table, hidden, 0, X, X, weights, 1.0, _WHOLE,
            1, settings, step, X, X, weights, acts, deltas, _NO_STATS, n_threads)


def _no_optimizer(dtype, weight_decay=0.0):
    return _step_settings(dtype, weight_decay=weight_decay), np.zeros(1, dtype=np.int64)


def forward(params, table, hidden, X, acts):
    """See :func:`fastnn.reference.forward`."""
    # the output pass too: whatever runs a forward pass reads its outputs next
    slots, n_threads = _slots((FORWARD_LEAF, OUTPUT_LEAF))
    settings, step = _no_optimizer(params.dtype)
    # the gradient and state buffers are not read: params and X stand in for them
    _run(_plans.run_plan, _plan_args(_plans.forward_plan(table.shape[0]), params, params, X,
                                     table, hidden, X, acts, acts, settings, step, n_threads),
         params.dtype, slots, "forward-pass kernels")


def _output_pass(output, Z, Y, weights, scale, out, mode):
    # float(): the compiled pass takes its scale as float64 whatever the dtype
    return _outputs.output_pass(output, Z, Y, weights, float(scale), out, mode)


def output_activation(output, Z, A):
    """See :func:`fastnn.reference.output_activation`."""
    _output_pass(output, Z, Z, _NO_WEIGHTS[Z.dtype], 1.0, A, _outputs.ACTIVATION)


def loss_sum(output, Z, Y, weights):
    """See :func:`fastnn.reference.loss_sum`."""
    return _output_pass(output, Z, Y, weights, 1.0, Z, _outputs.LOSS)[0]


def error_count(output, Z, Y, weights):
    """See :func:`fastnn.reference.error_count`."""
    return _output_pass(output, Z, Y, weights, 1.0, Z, _outputs.LOSS)[1]


def output_delta(output, Z, Y, weights, scale, delta):
    """See :func:`fastnn.reference.output_delta`."""
    return _output_pass(output, Z, Y, weights, scale, delta, _outputs.DELTA)[0]


def backward(params, table, hidden, X, acts, deltas, weight_decay, grad):
    """See :func:`fastnn.reference.backward`."""
    slots, n_threads = _slots((DELTA_LEAF, GRADIENT_LEAF))
    settings, step = _no_optimizer(params.dtype, weight_decay)
    # GRADIENT reads no optimizer state: X stands in for it
    _run(_plans.run_plan, _plan_args(_plans.backward_plan(table.shape[0]), params, grad, X,
                                     table, hidden, X, acts, deltas, settings, step, n_threads),
         params.dtype, slots, "backward-pass kernels")


def optimizer_step(params, grad, state, table, settings, step):
    """See :func:`fastnn.reference.optimizer_step`."""
    slots, n_threads = _slots((GRADIENT_LEAF,))
    # UPDATE reads neither a batch nor the workspaces: state and grad stand in
    _run(_plans.run_plan, _plan_args(_plans.step_plan(table.shape[0]), params, grad, state,
                                     table, table[0], state, grad, grad, settings, step,
                                     n_threads),
         params.dtype, slots, "optimizer-step kernels")


def _training_call(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                   settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """``(entry point, arguments, slots, what)`` of one call of :func:`train_epoch`."""
    plain_sgd = (settings.code == _codes.SGD and settings.momentum == 0
                 and settings.clip_norm == 0)
    if plain_sgd and batch_size == 1:
        return (per_sample_sgd_epoch,
                (_NO_LEAVES, params, grad, state, table, hidden, output, X, Y, weights, order,
                 settings, xbuf, ybuf, wbuf, acts, deltas, batch_stats),
                (FORWARD_LEAF, DELTA_LEAF, SGD_LEAF, OUTPUT_LEAF), "per-sample SGD kernels")
    clipped = bool(settings.clip_norm != 0)
    slots, n_threads = _slots((FORWARD_LEAF, DELTA_LEAF, OUTPUT_LEAF,
                               SGD_LEAF if plain_sgd else GRADIENT_LEAF))
    plan = _plans.training_plan(table.shape[0], plain_sgd, clipped)
    args = (_NO_LEAVES, plan, params, grad, state, table, hidden, output, X, Y, weights, 1.0,
            order, batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats,
            n_threads)
    what = ("SGD kernels" if plain_sgd else "clipped-gradient kernels" if clipped else
            "SGD-with-momentum and Adam kernels")
    return _plans.run_plan, args, slots, what


def prepare_train_epoch(*args):
    """Compile (or load from the cache) what :func:`train_epoch` with these
    arguments runs, without running it; returns the seconds spent compiling.

    Training calls it before its first epoch, so that compile time is never
    counted as training time (a progress bar's rate, an epoch's time).
    """
    entry, call_args, slots, what = _training_call(*args)
    return _prepare(entry, call_args, args[0].dtype, slots, what)


def train_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """See :func:`fastnn.reference.train_epoch`.

    Per-sample plain SGD has its own pipelined loop; every other setting runs
    the one mini-batch loop of :mod:`fastnn.kernels.plans`.  Only the layer
    steps the settings use are compiled: plain SGD fuses its step into the
    products, the other optimizers step each block of the gradient.
    """
    entry, call_args, slots, what = _training_call(
        params, grad, state, table, hidden, output, X, Y, weights, order, batch_size, settings,
        step, xbuf, ybuf, wbuf, acts, deltas, batch_stats)
    _run(entry, call_args, params.dtype, slots, what)
