"""The kernel contract compiled with Numba (installed as ``fastnn.kernels``).

Same functions, same signatures as :mod:`fastnn.reference`; see its module
docstring for the buffer conventions.  Kernels compute and never validate:
the :class:`fastnn.Network` API checks every input before it gets here.

Threads (docs/design.md, rule 1): Numba owns them.  Three functions are
compiled with ``parallel=True``: the layer steps' split
(:func:`fastnn.kernels.layer_steps.parallel_step`: each thread computes its
own slab of a matrix product as a single-threaded BLAS call and finishes it),
a small network's epoch with each batch's rows split among the threads
(:mod:`fastnn.kernels.row_parallel`, docs/design.md, rule 11) and the sparse
first layer's phases; so the caller must cap BLAS at one thread
(:func:`fastnn.threads.thread_scope` does).  Steps too small to pay for
waking the threads (batch size 1, narrow layers) run on the calling thread;
the thresholds are in :mod:`fastnn.kernels.config`.

What a fit compiles (docs/design.md, rule 7): each function a Python wrapper
below calls is compiled once per dtype, on first use, with every other
function inlined into it except the two products (serial and parallel) and
the fused-multiply-add dot-product loops; a compiled function that calls
another one makes LLVM optimise the callee again inside the caller, so the
call tree is kept one level deep.
"""

import os
import sys
import threading

import numba
import numpy as np

# Reductions are reproducible at a fixed thread count with the omp and
# workqueue layers, not with tbb (docs/design.md, rule 5); a user's own choice stands.
if not ({"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ)):
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]

from fastnn.kernels import cache_guard as _cache_guard  # noqa: E402
from fastnn.kernels import compiler as _compiler  # noqa: E402
from fastnn.kernels import config as _config  # noqa: E402
from fastnn.kernels import outputs as _outputs  # noqa: E402
from fastnn.kernels import plans as _plans  # noqa: E402
from fastnn.kernels.leaves import address_table, unit_list  # noqa: E402
from fastnn.kernels.native_calls import (  # noqa: E402
    DELTA_LEAF,
    FORWARD_LEAF,
    GATHER_LEAF,
    GRADIENT_LEAF,
    N_LEAVES,
    OUTPUT_LEAF,
    PARALLEL_LEAF,
    SGD_LEAF,
)
from fastnn.kernels.per_sample import per_sample_sgd_epoch  # noqa: E402
from fastnn.kernels.row_parallel import (  # noqa: E402
    row_parallel,
    row_parallel_epoch,
    thread_buffers,
)
from fastnn.layout import layer_table, n_params, n_units, weight_view  # noqa: E402
from fastnn.optim import kernel_path  # noqa: E402
from fastnn.optim import step_settings as _step_settings  # noqa: E402
from fastnn.sparse_format import csr_parts, is_sparse  # noqa: E402

# before any kernel is called, so nothing stale is loaded
if _config.CACHE:
    _cache_guard.guard(_plans.run_plan._cache._cache_path)

__all__ = ["forward", "output_activation", "loss_sum", "error_count", "output_delta",
           "backward", "optimizer_step", "train_epoch", "training_paths", "prepare", "PATHS"]

#: a stand-in for the row weights of a pass that reads none
_NO_WEIGHTS = {np.dtype(t): np.empty(0, dtype=t) for t in (np.float32, np.float64)}
#: no row order: the plan runs on X itself
_WHOLE = np.empty(0, dtype=np.int64)
_NO_STATS = np.empty((0, 3), dtype=np.float64)
#: the address table's place in an entry point's arguments, before it is known
_NO_LEAVES = np.zeros(N_LEAVES, dtype=np.int64)

_prepared = set()  # _key() of each call made ready in this process

_SPARSE_MODULE = "fastnn.kernels.sparse_input"


def _sparse():
    """:mod:`fastnn.kernels.sparse_input`, imported when the first CSR ``X`` (or sparse
    path) comes: 20 ms of every ``import fastnn.kernels`` otherwise."""
    from fastnn.kernels import sparse_input

    return sparse_input


def _slots(slots):
    """``slots`` and the thread count of this call: the parallel split is
    compiled only when there are threads to split among."""
    n_threads = numba.get_num_threads()
    return (slots + (PARALLEL_LEAF,) if n_threads > 1 else slots), n_threads


def _units(entry, args, dtype, slots):
    """The compiled functions one call needs: the layer steps in ``slots``, the
    functions the entry point links in that are worth compiling on their own
    (the sparse first layer's), and the entry point for ``args`` (its
    arguments, with ``_NO_LEAVES`` for the table)."""
    signature = tuple(entry.typeof_pyval(a) for a in args)
    sparse = sys.modules.get(_SPARSE_MODULE)  # not imported: no sparse entry point here
    linked = [] if sparse is None else sparse.linked_units(entry, signature)
    return unit_list(dtype, slots) + linked + [(entry, signature)]


def _key(entry, args, dtype, slots):
    """What tells one compiled call apart: its entry point, dtype and slots, and for
    the sparse entry points the integer type of ``X``'s indices (int32 or int64)."""
    sparse = sys.modules.get(_SPARSE_MODULE)
    csr = None if sparse is None else sparse.CSR_ARGUMENTS.get(entry)
    return (entry, dtype, slots, None if csr is None else args[csr[1]].dtype)


def _prepare(calls, dtype, sharing=None):
    """Compile (or load) everything the ``(entry, args, slots, what)`` calls need, at
    most once per process; returns the seconds spent compiling."""
    dtype = np.dtype(dtype)
    todo = [call for call in calls if _key(call[0], call[1], dtype, call[2]) not in _prepared]
    if not todo:
        if sharing is not None:
            sharing.wait()  # the others wait for this process too
        return 0.0
    seconds = _compiler.prepare([(what, _units(entry, args, dtype, slots))
                                 for entry, args, slots, what in todo], dtype.name, sharing,
                                after=getattr(sys.modules.get(_SPARSE_MODULE), "LINKING", ()))
    _prepared.update(_key(entry, args, dtype, slots) for entry, args, slots, _ in todo)
    return seconds


def _run(entry, args, slots, what, dtype):
    _prepare([(entry, args, slots, what)], dtype)
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


def _forward_call(params, table, hidden, X, acts):
    # the output pass too: whatever runs a forward pass reads its outputs next
    slots, n_threads = _slots((FORWARD_LEAF, OUTPUT_LEAF))
    settings, step = _no_optimizer(params.dtype)
    # the gradient and state buffers are not read: params and X stand in for them
    return (_plans.run_plan, _plan_args(_plans.forward_plan(table.shape[0]), params, params, X,
                                        table, hidden, X, acts, acts, settings, step,
                                        n_threads),
            slots, PATHS["forward"])


def _stand_in(dtype):
    # a matrix where the layer steps' buffers hold a dense batch that a sparse pass lacks
    return _STAND_INS[np.dtype(dtype)]


def _update_scratch(dtype, n_columns, capacity):
    """The scratch of :func:`fastnn.kernels.sparse_input.first_layer_update`: where each
    column's sorted entries end, and room for ``capacity`` entries."""
    return (np.zeros(n_columns, dtype=np.int64),
            np.zeros(capacity, dtype=np.int32), np.zeros(capacity, dtype=dtype))


def _sparse_forward_call(params, table, hidden, X, acts):
    slots, n_threads = _slots((FORWARD_LEAF, OUTPUT_LEAF))
    settings, _ = _no_optimizer(params.dtype)
    # the first layer transposed: a sparse row's product reads rows of W_1^T
    WT = np.ascontiguousarray(weight_view(params, table, 0).T)
    sparse = _sparse()
    return (sparse.sparse_forward,
            (_NO_LEAVES, params, table, hidden, *csr_parts(X), WT, acts, settings, n_threads,
             _stand_in(params.dtype), _WHOLE, _update_scratch(params.dtype, 0, 0),
             sparse.upper_plans(table.shape[0], sparse.PLAIN_SGD)[0]),
            slots, PATHS["sparse-forward"])


def forward(params, table, hidden, X, acts):
    """See :func:`fastnn.reference.forward` (``X`` dense or CSR)."""
    call = (_sparse_forward_call if is_sparse(X) else _forward_call)(params, table, hidden, X,
                                                                     acts)
    _run(*call, params.dtype)


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


def _backward_call(params, table, hidden, X, acts, deltas, weight_decay, grad):
    slots, n_threads = _slots((DELTA_LEAF, GRADIENT_LEAF))
    settings, step = _no_optimizer(params.dtype, weight_decay)
    # GRADIENT reads no optimizer state: X stands in for it
    return (_plans.run_plan, _plan_args(_plans.backward_plan(table.shape[0]), params, grad, X,
                                        table, hidden, X, acts, deltas, settings, step,
                                        n_threads),
            slots, PATHS["backward"])


def _sparse_backward_call(params, table, hidden, X, acts, deltas, weight_decay, grad):
    slots, n_threads = _slots((DELTA_LEAF, GRADIENT_LEAF))
    settings, _ = _no_optimizer(params.dtype, weight_decay)
    # the first weight gradient is made transposed, in its own scratch
    GT = np.empty((table[0, 0], table[0, 1]), dtype=params.dtype)
    data, indices, indptr = csr_parts(X)
    scratch = _update_scratch(params.dtype, table[0, 0], int(indptr[-1] - indptr[0]))
    sparse = _sparse()
    return (sparse.sparse_backward,
            (_NO_LEAVES, params, grad, table, hidden, data, indices, indptr, acts, deltas,
             settings, GT, n_threads, _stand_in(params.dtype), _WHOLE, scratch,
             sparse.upper_plans(table.shape[0], sparse.CLIPPED)[1]),
            slots, PATHS["sparse-backward"])


def backward(params, table, hidden, X, acts, deltas, weight_decay, grad):
    """See :func:`fastnn.reference.backward` (``X`` dense or CSR)."""
    call = _sparse_backward_call if is_sparse(X) else _backward_call
    _run(*call(params, table, hidden, X, acts, deltas, weight_decay, grad), params.dtype)


def _optimizer_step_call(params, grad, state, table, settings, step):
    slots, n_threads = _slots((GRADIENT_LEAF,))
    # UPDATE reads neither a batch nor the workspaces: state and grad stand in
    return (_plans.run_plan, _plan_args(_plans.step_plan(table.shape[0]), params, grad, state,
                                        table, table[0], state, grad, grad, settings, step,
                                        n_threads),
            slots, PATHS["optimizer-step"])


def optimizer_step(params, grad, state, table, settings, step):
    """See :func:`fastnn.reference.optimizer_step`."""
    _run(*_optimizer_step_call(params, grad, state, table, settings, step), params.dtype)


def _sparse_training_call(path, params, grad, state, table, hidden, output, csr, Y, weights,
                          order, batch_size, settings, step, ybuf, wbuf, acts, deltas,
                          batch_stats):
    # one mini-batch loop for every optimizer; per-sample SGD has a loop of its own
    sparse = _sparse()
    # how the epoch steps the layers; per-sample SGD is plain SGD
    mode = {"sgd": sparse.PLAIN_SGD, "per-sample": sparse.PLAIN_SGD, "step": sparse.STEPPED,
            "clipped": sparse.CLIPPED}[path]
    if path == "per-sample":
        entry, slots, n_threads = sparse.sparse_per_sample_epoch, (), 1
    else:
        entry = sparse.sparse_train_epoch
        slots, n_threads = _slots((FORWARD_LEAF, DELTA_LEAF, OUTPUT_LEAF,
                                   SGD_LEAF if mode == sparse.PLAIN_SGD else GRADIENT_LEAF))
    indptr = csr[2]
    # room for the entries of the longest rows, a batch of them (or all there are)
    longest = int(np.diff(indptr).max()) if indptr.shape[0] > 1 else 0
    capacity = min(int(indptr[-1] - indptr[0]), batch_size * longest)
    scratch = _update_scratch(params.dtype, table[0, 0], capacity)
    return (entry,
            (_NO_LEAVES, params, grad, state, table, hidden, output, *csr, Y, weights, order,
             batch_size, settings, step, mode, sparse.upper_plans(table.shape[0], mode), ybuf,
             wbuf, acts, deltas, batch_stats, n_threads, _stand_in(params.dtype), scratch),
            slots, PATHS["sparse-" + path])


#: the per-thread scratch of the last row-split call in each Python thread (fits in
#: two Python threads at once must not share it; a fit of many epochs reuses it)
_row_scratch = threading.local()


def _thread_buffers(dtype, n_threads, batch_size, table, n_params):
    key = (np.dtype(dtype), n_threads, batch_size, table[0, 0], n_units(table), n_params)
    if getattr(_row_scratch, "key", None) != key:
        _row_scratch.key = key
        _row_scratch.buffers = thread_buffers(*key)
    return _row_scratch.buffers


def _row_parallel_call(params, grad, state, table, hidden, output, X, Y, weights, order,
                       batch_size, settings, step, ybuf, wbuf, batch_stats, n_threads):
    # a small network: each thread runs whole batches' passes on its share of the rows,
    # its layer steps on its own thread (no parallel split: the threads are busy)
    slots = (FORWARD_LEAF, DELTA_LEAF, OUTPUT_LEAF, GATHER_LEAF, GRADIENT_LEAF)
    n_layers = table.shape[0]
    buffers = _thread_buffers(params.dtype, n_threads, batch_size, table, params.shape[0])
    args = (_NO_LEAVES, _plans.row_plan(n_layers), params, grad, state, table, hidden, output,
            X, Y, weights, order, batch_size, settings, step, ybuf, wbuf, *buffers, batch_stats,
            n_threads)
    return row_parallel_epoch, args, slots, PATHS["rows"]


def _training_call(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                   settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """``(entry point, arguments, slots, what)`` of one call of :func:`train_epoch`."""
    path = kernel_path(settings, batch_size)
    if is_sparse(X):
        return _sparse_training_call(path, params, grad, state, table, hidden, output,
                                     csr_parts(X), Y, weights, order, batch_size, settings,
                                     step, ybuf, wbuf, acts, deltas, batch_stats)
    if path == "per-sample":
        return (per_sample_sgd_epoch,
                (_NO_LEAVES, params, grad, state, table, hidden, output, X, Y, weights, order,
                 settings, xbuf, ybuf, wbuf, acts, deltas, batch_stats),
                (), PATHS[path])
    slots, n_threads = _slots((FORWARD_LEAF, DELTA_LEAF, OUTPUT_LEAF, GATHER_LEAF,
                               SGD_LEAF if path == "sgd" else GRADIENT_LEAF))
    if row_parallel(params.shape[0], batch_size, n_threads):
        return _row_parallel_call(params, grad, state, table, hidden, output, X, Y, weights,
                                  order, batch_size, settings, step, ybuf, wbuf, batch_stats,
                                  n_threads)
    plan = _plans.training_plan(table.shape[0], path == "sgd", path == "clipped")
    args = (_NO_LEAVES, plan, params, grad, state, table, hidden, output, X, Y, weights, 1.0,
            order, batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats,
            n_threads)
    return _plans.run_plan, args, slots, PATHS[path]


def training_paths(settings, batch_size, n_params):
    """The compiled paths (keys of :data:`PATHS`) that :func:`train_epoch` runs on a dense
    ``X`` with these settings, for a network of ``n_params`` parameters, on the
    threads Numba has now: :func:`fastnn.optim.kernel_path`'s, and ``"rows"`` when
    the network is small enough for its batches' rows to be split among the
    threads (:mod:`fastnn.kernels.row_parallel`)."""
    path = kernel_path(settings, batch_size)
    if path != "per-sample" and row_parallel(n_params, batch_size, numba.get_num_threads()):
        return [path, "rows"]
    return [path]


def train_epoch(params, grad, state, table, hidden, output, X, Y, weights, order, batch_size,
                settings, step, xbuf, ybuf, wbuf, acts, deltas, batch_stats):
    """See :func:`fastnn.reference.train_epoch`.

    Per-sample plain SGD has its own pipelined loop; every other setting runs
    the one mini-batch loop of :mod:`fastnn.kernels.plans`, or, for a small
    network on two threads or more, :mod:`fastnn.kernels.row_parallel`'s
    (:func:`training_paths`).  A CSR ``X`` runs
    :func:`fastnn.kernels.sparse_input.sparse_train_epoch` (``xbuf`` is not
    read).  Only the layer
    steps the settings use are compiled: plain SGD fuses its step into the
    products, the other optimizers step each block of the gradient.
    """
    _run(*_training_call(params, grad, state, table, hidden, output, X, Y, weights, order,
                         batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas,
                         batch_stats),
         params.dtype)


class _CSRStandIn:
    """The arrays of a CSR matrix, without importing scipy.sparse (0.2 s)."""

    def __init__(self, data, indices, indptr):
        self.data, self.indices, self.indptr = data, indices, indptr


def _dummy_calls(dtype, path):
    """The calls of ``path`` on the smallest buffers of ``dtype``: their argument types
    are those of every real call (the entry points take whole buffers, not views)."""
    dtype = np.dtype(dtype)
    sizes = [2, 2, 2]
    table = layer_table(sizes)
    hidden = np.zeros(1, dtype=np.int64)
    params = np.zeros(n_params(table), dtype=dtype)
    grad = np.zeros_like(params)
    state = np.zeros((2, params.size), dtype=dtype)
    X, Y = np.zeros((2, 2), dtype=dtype), np.zeros((2, 2), dtype=dtype)
    weights = np.ones(2, dtype=dtype)
    acts, deltas = np.zeros(2 * n_units(table), dtype=dtype), np.zeros(2 * n_units(table), dtype)
    step = np.zeros(1, dtype=np.int64)
    if path.startswith("sparse-"):
        # a 2 x 2 CSR X with int32 indices, scipy's own for all but huge matrices
        csr = (np.ones(2, dtype=dtype), np.zeros(2, dtype=np.int32),
               np.array([0, 1, 2], dtype=np.int32))
        X = _CSRStandIn(*csr)
    if path == "sparse-forward":
        return [_sparse_forward_call(params, table, hidden, X, acts)]
    if path == "sparse-backward":
        return [_sparse_backward_call(params, table, hidden, X, acts, deltas, dtype.type(0),
                                      grad)]
    if path.startswith("sparse-"):
        training = path[len("sparse-"):]
        settings = _step_settings(dtype, **_PATH_SETTINGS[training])
        batch = 1 if training == "per-sample" else 2
        return [_sparse_training_call(training, params, grad, state, table, hidden, 0, csr, Y,
                                      weights, np.arange(2, dtype=np.int64), batch, settings,
                                      step, Y, weights, acts, deltas, np.zeros((2, 3)))]
    if path == "forward":
        return [_forward_call(params, table, hidden, X, acts)]
    if path == "backward":
        return [_backward_call(params, table, hidden, X, acts, deltas, dtype.type(0), grad)]
    if path == "optimizer-step":
        return [_optimizer_step_call(params, grad, state, table, _step_settings(dtype), step)]
    if path == "rows":
        # a small network's batches, two rows a thread: its rows split among the threads
        n_threads = numba.get_num_threads()
        if n_threads == 1:
            return []  # one thread never splits a batch's rows
        path, batch = "sgd", 2 * n_threads
    else:
        batch = 1 if path == "per-sample" else 2
    settings = _step_settings(dtype, **_PATH_SETTINGS[path])
    return [_training_call(params, grad, state, table, hidden, 0, X, Y, weights,
                           np.arange(2, dtype=np.int64), batch, settings, step, X, Y, weights,
                           acts, deltas, np.zeros((2, 3)))]


#: the paths of the kernels, and what each is called in the compile notice
PATHS = {"sgd": "SGD", "step": "SGD-with-momentum/Adam", "clipped": "clipped-gradient",
         "rows": "small-network", "per-sample": "per-sample SGD", "forward": "forward-pass",
         "backward": "backward-pass",
         "optimizer-step": "optimizer-step", "sparse-sgd": "sparse-input SGD",
         "sparse-per-sample": "sparse-input per-sample SGD",
         "sparse-step": "sparse-input SGD-with-momentum/Adam",
         "sparse-clipped": "sparse-input clipped-gradient",
         "sparse-forward": "sparse-input forward-pass",
         "sparse-backward": "sparse-input backward-pass"}
_STAND_INS = {np.dtype(t): np.zeros((1, 1), dtype=t) for t in (np.float32, np.float64)}
#: settings that take each training path
_PATH_SETTINGS = {"sgd": {}, "step": {"momentum": 0.9}, "clipped": {"clip_norm": 1.0},
                  "per-sample": {}}


def prepare(dtype, paths, sharing=None):
    """Compile (or load from the cache) the kernels of ``paths`` for ``dtype``, now.

    Parameters
    ----------
    dtype : str or numpy.dtype
        float32 or float64.
    paths : iterable of str
        Keys of :data:`PATHS`: a training path (:func:`fastnn.optim.kernel_path`),
        ``"forward"`` (inference and evaluation), ``"backward"``,
        ``"optimizer-step"``; ``"sparse-"`` before ``"sgd"``, ``"step"``,
        ``"per-sample"``, ``"clipped"``, ``"forward"`` or ``"backward"`` for a CSR
        ``X`` with int32 indices.
    sharing : fastnn.kernels.compiler.Sharing, optional
        Other processes (MPI ranks) preparing at the same time, to share the
        compiling with; every one of them must call this.

    Returns
    -------
    float
        Seconds spent compiling (0 when everything was cached or compiled).

    Training calls it before its first epoch, so that compile time is never
    counted as training time (epoch times, a progress bar's rate); ``fastnn
    compile`` calls it to fill the cache ahead of time.  With the threads
    Numba has when it is called (the parallel split is compiled when there
    are two or more).
    """
    return _prepare([call for path in paths for call in _dummy_calls(dtype, path)], dtype,
                    sharing)
