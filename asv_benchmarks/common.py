"""Seeded cases for the asv suite: every kernel argument is built here, and only here.

The kernel contract (docs/design.md, section 7) is the same for :mod:`fastnn.kernels` and
:mod:`fastnn.reference`.  When its signatures change (optimiser settings,
sample weights, Adam state, a CSR first-layer input), only :class:`KernelCase`
has to follow; the benchmark modules call ``case.forward()``,
``case.backward()``, ``case.update()`` and ``case.train_epoch()`` and never
spell out an argument list.

As in numpy's ``benchmarks/benchmarks/common.py``, every array comes from a
seeded generator, so two runs (and two commits) time exactly the same work.
"""

import contextlib

import numpy as np

#: the engine parameter, as in pandas' rolling benchmarks (numba vs cython)
BACKENDS = ("numba", "numpy")
#: the 784-200-10 MNIST network, and a wide one where the GEMMs dominate
NETWORKS = {
    "784-200-10": (784, 200, 10),
    "1024-1024-1024-10": (1024, 1024, 1024, 10),
}
NETWORK_NAMES = tuple(NETWORKS)
#: small networks, whose batches split their rows among the threads
#: (fastnn.kernels.row_parallel): scikit-learn's digits and a 40-feature table
SMALL_NETWORKS = {"64-100-10": (64, 100, 10), "40-100-5": (40, 100, 5)}
SMALL_NETWORK_NAMES = tuple(SMALL_NETWORKS)
BATCH_SIZES = (1, 32, 128, 1024)
DTYPES = ("float32", "float64")
THREADS = (1, 2)
#: the update benchmark's rules: (optimizer, hyperparameters of fastnn.optim.step_settings)
UPDATE_SETTINGS = {
    "sgd": ("sgd", {"lr": 0.1}),
    "momentum": ("sgd", {"lr": 0.1, "momentum": 0.9}),
    "adam": ("adam", {"lr": 1e-3}),
}
UPDATE_RULES = tuple(UPDATE_SETTINGS)
#: the training epoch's rules.  Momentum 0.9 at lr 0.01 takes the steps of
#: plain SGD at lr 0.1 (lr / (1 - momentum)); at lr 0.1 it would step ten
#: times as far and may diverge on the random labels
EPOCH_SETTINGS = {
    "sgd": ("sgd", {"lr": 0.1}),
    "momentum": ("sgd", {"lr": 0.01, "momentum": 0.9}),
}
EPOCH_RULES = tuple(EPOCH_SETTINGS)

#: densities (stored entries over d_0) of the CSR rows the sparse benchmarks
#: feed the 784-200-10 network: 8 and 157 pixels a row (MNIST's own density
#: is about 19 %)
DENSITIES = (0.01, 0.2)
#: a text-like shape: a 20,000-word vocabulary, 100 words a row, 20 classes
SPARSE_NETWORKS = {"20000-128-20": (20_000, 128, 20)}
TEXT_NETWORK, TEXT_DENSITY = "20000-128-20", 0.005
SPARSE_BATCH_SIZES = (1, 32, 128)
#: the text shape's batch sizes: predicting one document or a block of them,
#: training in mini-batches (at batch size 1 the Numba epoch runs the loop the
#: 784-wide cases time, and the reference takes seconds)
TEXT_FORWARD_BATCH_SIZES = (1, 128)
TEXT_EPOCH_BATCH_SIZES = (32, 128)

#: rows one ``train_epoch`` benchmark call visits: a fraction of an MNIST epoch
#: (60,000 rows), enough for many mini-batches, small enough for the grid
EPOCH_ROWS = 2048
#: per-sample SGD runs Python-level code per row in the reference, so fewer rows
EPOCH_ROWS_BATCH_1 = 128

SEED = 20240601
LEARNING_RATE = 0.1
#: scale of the synthetic gradient the update benchmark applies; small enough
#: that repeated steps never overflow, large enough to stay clear of denormals
GRADIENT_SCALE = 1e-3


def epoch_rows(batch_size):
    """Rows a ``train_epoch`` benchmark call visits for ``batch_size``."""
    return EPOCH_ROWS_BATCH_1 if batch_size == 1 else EPOCH_ROWS


def backend_module(backend):
    """The module that implements the kernel contract for ``backend``."""
    if backend == "numba":
        # imported on first use, as fastnn.Network does: it loads Numba's compiled code
        from fastnn import kernels
        return kernels
    from fastnn import reference
    return reference


def require_threads(n_threads):
    """Skip (asv's ``NotImplementedError``) when Numba cannot run ``n_threads`` threads."""
    from fastnn.threads import available_threads
    if n_threads > available_threads():
        raise NotImplementedError(f"needs {n_threads} threads; NUMBA_NUM_THREADS is "
                                  f"{available_threads()}")


def synthetic_csr(n_rows, n_features, n_classes, density, seed=SEED):
    """Sparse rows at ``density``: ``round(density * n_features)`` entries a row, and labels.

    Each row holds its entries at distinct random columns (in increasing
    order), with values in (0, 1]: a fixed number a row, as bag-of-words rows
    have roughly, so every batch does the same work.

    Parameters
    ----------
    n_rows, n_features, n_classes : int
    density : float
        In (0, 1].
    seed : int

    Returns
    -------
    X : scipy.sparse.csr_array of float32, shape (n_rows, n_features)
        int32 indices; ``fastnn``'s conversion makes it the kernels' format.
    y : ndarray of int64, shape (n_rows,), in ``0..n_classes-1``
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = max(1, round(density * n_features))
    indices = np.concatenate([np.sort(rng.choice(n_features, per_row, replace=False))
                              for _ in range(n_rows)]).astype(np.int32)
    # 1 - [0, 1): no stored zeros, which would be entries that cost without counting
    data = 1.0 - rng.random(n_rows * per_row, dtype=np.float32)
    indptr = np.arange(0, (n_rows + 1) * per_row, per_row, dtype=np.int32)
    y = rng.integers(0, n_classes, size=n_rows)
    return sp.csr_array((data, indices, indptr), shape=(n_rows, n_features)), y


def synthetic_mnist(n_rows, n_features=784, n_classes=10, seed=SEED):
    """MNIST-shaped data: pixels in [0, 1) (about 80 % zero, like MNIST) and labels.

    Parameters
    ----------
    n_rows, n_features, n_classes : int
    seed : int

    Returns
    -------
    X : ndarray of float32, shape (n_rows, n_features), C-contiguous
    y : ndarray of int64, shape (n_rows,), in ``0..n_classes-1``
    """
    rng = np.random.default_rng(seed)
    X = rng.random((n_rows, n_features), dtype=np.float32)
    # MNIST digits are mostly background: zeros keep relu units as sparse as real data does
    X[X < 0.8] = 0
    y = rng.integers(0, n_classes, size=n_rows)
    return X, y


class KernelCase:
    """One network's kernel buffers, ready to call one backend's kernels.

    Built from a seeded :class:`fastnn.Network` (its initial parameters, its
    layer table and codes, its input conversion) and :mod:`fastnn.optim` (step
    settings, optimizer state), the way ``fit`` and the tests' ``KernelCase``
    build them, so the benchmarks pass exactly what ``fit`` passes.

    Parameters
    ----------
    sizes : tuple of int
        Layer widths ``d_0, ..., d_L``; relu hidden layers, softmax output.
    dtype : {"float32", "float64"}
    batch_size : int
        Rows per forward/backward call and per ``train_epoch`` mini-batch.
    backend : {"numba", "numpy"}
    n_threads : int
    update_rule : str
        A key of :data:`UPDATE_SETTINGS`: what :meth:`update` applies.
    seed : int
    epoch_rule : str
        A key of :data:`EPOCH_SETTINGS`: what :meth:`train_epoch` applies.
    density : float, optional
        Without it the inputs are the dense rows of :func:`synthetic_mnist`;
        with it, the rows of :func:`synthetic_csr` at that density.
    input_format : {"csr", "dense"}
        With ``density``: pass the rows as the kernels' CSR, converted by
        ``Architecture.features`` as ``fit`` converts a scipy.sparse ``X``, or
        the same matrix densified (the dense path on the same numbers).

    Attributes
    ----------
    params : ndarray, shape (n_params,)
        The parameters the kernels read and update; :meth:`reset` restores them.
    X : ndarray or scipy.sparse.csr_array, shape (rows, d_0)
        Converted inputs; ``rows`` is :func:`epoch_rows` of ``batch_size``.
    Y : ndarray, shape (rows, d_L)
        Dense one-hot targets.
    row_weights : ndarray, shape (rows,)
        All ones: the unweighted loss, as ``fit`` passes it without ``sample_weight``.
    """

    def __init__(self, sizes, dtype, batch_size, backend, n_threads, update_rule="sgd",
                 seed=SEED, *, epoch_rule="sgd", density=None, input_format="csr"):
        from fastnn import Network
        from fastnn.optim import new_state, step_settings
        from fastnn.sparse_format import is_sparse
        from fastnn.validation import take_rows

        self.sizes = tuple(sizes)
        self.batch_size = batch_size
        self.backend = backend
        self.n_threads = n_threads
        self.kernels = backend_module(backend)
        net = Network(list(sizes), activation="relu", output="softmax", dtype=dtype, seed=seed,
                      backend=backend, n_threads=n_threads)
        self.dtype = net.dtype
        architecture = net.architecture
        self.table, self.hidden = architecture.table, architecture.hidden
        self.output = architecture.output_code

        rows = epoch_rows(batch_size)
        self.density = density
        if density is None:
            X, y = synthetic_mnist(rows, sizes[0], sizes[-1], seed)
        else:
            X, y = synthetic_csr(rows, sizes[0], sizes[-1], density, seed)
            if input_format == "dense":
                X = X.toarray()
        self.X = architecture.features(X)
        self.sparse = is_sparse(self.X)
        self.Y = architecture.targets(y, rows)
        self.row_weights = np.ones(rows, dtype=self.dtype)
        # dense: a leading slice, C-contiguous; CSR: its rows in the kernels' format
        self.X_batch = take_rows(self.X, slice(0, batch_size))
        self.Y_batch = self.Y[:batch_size]
        self.weights_batch = self.row_weights[:batch_size]
        self.order = np.random.default_rng(seed).permutation(rows)

        self.initial_params = net.params.copy()
        self.params = net.params
        self.grad = (GRADIENT_SCALE * np.random.default_rng(seed + 1)
                     .standard_normal(self.params.shape[0])).astype(self.dtype)
        # the buffers fit allocates, from the same allocator
        # (sparse: no dense x gather buffer, as in a sparse fit)
        self.workspace = architecture.workspace(batch_size, gather=True, sparse=self.sparse)
        self.acts, self.deltas = self.workspace.acts, self.workspace.deltas
        self.xbuf, self.ybuf, self.wbuf = self.workspace.x, self.workspace.y, self.workspace.w
        self.batch_stats = np.empty((-(-rows // batch_size), 3), dtype=np.float64)

        # step settings hold their reals in the array dtype (docs/design.md, rule 4)
        optimizer, hyper = UPDATE_SETTINGS[update_rule]
        self.update_settings = step_settings(self.dtype, optimizer, **hyper)
        self.update_state, self.update_step = new_state(optimizer, self.params.size, self.dtype)
        # train_epoch runs the peers' job by default: plain SGD, lr 0.1
        optimizer, hyper = EPOCH_SETTINGS[epoch_rule]
        self.epoch_settings = step_settings(self.dtype, optimizer, **hyper)
        self.epoch_state, self.epoch_step = new_state(optimizer, self.params.size, self.dtype)
        self.weight_decay = self.dtype.type(0.0)
        self.scale = self.dtype.type(1.0 / batch_size)  # 1 / (sum of the batch's row weights)
        self._scope = None

    # ------------------------------------------------------------ the kernels

    def forward(self):
        """Forward propagation of one batch (``batch_size`` rows)."""
        self.kernels.forward(self.params, self.table, self.hidden, self.X_batch, self.acts)

    def output_delta(self):
        """``δ_L`` of one batch from the logits :meth:`forward` left (softmax/cross-entropy)."""
        n = self.X_batch.shape[0]
        return self.kernels.output_delta(self.output, self.workspace.logits(n), self.Y_batch,
                                         self.weights_batch, self.scale,
                                         self.workspace.output_deltas(n))

    def backward(self):
        """Delta recursion and gradient accumulation of one batch into ``grad``.

        Reads the activations and ``δ_L`` that :meth:`prepare` left; writes only
        the hidden layers' deltas and ``grad``, so repeated calls do the same work.
        """
        self.kernels.backward(self.params, self.table, self.hidden, self.X_batch, self.acts,
                              self.deltas, self.weight_decay, self.grad)

    def update(self):
        """One in-place optimizer step of every parameter from ``grad``."""
        self.kernels.optimizer_step(self.params, self.grad, self.update_state, self.table,
                                    self.update_settings, self.update_step)

    def train_epoch(self):
        """The epoch rule (plain SGD, lr 0.1 by default) over the :func:`epoch_rows` rows
        in a fixed shuffled order."""
        self.kernels.train_epoch(self.params, self.grad, self.epoch_state, self.table,
                                 self.hidden, self.output, self.X, self.Y, self.row_weights,
                                 self.order, self.batch_size, self.epoch_settings,
                                 self.epoch_step, self.xbuf, self.ybuf, self.wbuf, self.acts,
                                 self.deltas, self.batch_stats)

    # ------------------------------------------------------------ state

    def reset(self):
        """Restore the starting parameters and optimizer state: each repeat times the same work."""
        np.copyto(self.params, self.initial_params)
        for buffer in (self.update_state, self.update_step, self.epoch_state, self.epoch_step):
            buffer[...] = 0

    def prepare(self, kernel):
        """Run ``kernel`` once (the JIT compile or cache load), then :meth:`reset`.

        Parameters
        ----------
        kernel : {"forward", "backward", "update", "train_epoch"}

        Raises
        ------
        FloatingPointError
            If the warm-up left non-finite parameters: timing NaN arithmetic
            would not be timing training.
        """
        with self.threads():
            if kernel == "backward":
                # backward reads the activations and δ_L of its batch
                self.forward()
                self.output_delta()
            getattr(self, kernel)()
        if not np.isfinite(self.params).all():
            raise FloatingPointError(f"{kernel} on {self.describe()} left non-finite parameters")
        self.reset()

    def threads(self):
        """The thread scope ``fastnn.Network`` would use (docs/design.md, rule 1)."""
        from fastnn.threads import thread_scope
        return thread_scope(self.n_threads, self.backend)

    def enter_threads(self):
        """Enter :meth:`threads` until :meth:`exit_threads`.

        asv's ``setup``/``teardown`` bracket every sample, so the scope is
        entered there and not inside the timed call: capping both OpenBLAS
        copies costs more than a batch-1 forward pass.
        """
        self._scope = contextlib.ExitStack()
        self._scope.enter_context(self.threads())

    def exit_threads(self):
        """Leave the scope :meth:`enter_threads` entered (no-op if none)."""
        if self._scope is not None:
            self._scope.close()
            self._scope = None

    def describe(self):
        """A short text naming the case, for error messages."""
        inputs = ("" if self.density is None else
                  f" {'CSR' if self.sparse else 'densified'} density {self.density}")
        return (f"{'-'.join(map(str, self.sizes))}{inputs} {self.dtype.name} batch "
                f"{self.batch_size} {self.backend} {self.n_threads} thread(s)")


# One case per process is enough: asv forks a fresh process for every parameter
# combination, then calls setup before every sample.  Keeping the last case
# makes those later setups a reset instead of a rebuild and a warm-up.
_last_case = {}


def kernel_case(kernel, network, dtype, batch_size, backend, n_threads, update_rule="sgd", *,
                epoch_rule="sgd", density=None, input_format="csr"):
    """A :class:`KernelCase`, warmed up for ``kernel`` and reset, built once per process.

    Parameters
    ----------
    kernel : {"forward", "backward", "update", "train_epoch"}
    network : str
        A key of :data:`NETWORKS`, :data:`SMALL_NETWORKS` or :data:`SPARSE_NETWORKS`.
    dtype, batch_size, backend, n_threads, update_rule, epoch_rule, density, input_format
        As for :class:`KernelCase`.

    Raises
    ------
    NotImplementedError
        When the machine has fewer threads than ``n_threads`` (asv skips).
    """
    require_threads(n_threads)
    key = (kernel, network, dtype, batch_size, backend, n_threads, update_rule, epoch_rule,
           density, input_format)
    case = _last_case.get(key)
    if case is None:
        _last_case.clear()  # free the previous case's buffers first
        sizes = {**NETWORKS, **SMALL_NETWORKS, **SPARSE_NETWORKS}[network]
        case = KernelCase(sizes, dtype, batch_size, backend, n_threads, update_rule,
                          epoch_rule=epoch_rule, density=density, input_format=input_format)
        case.prepare(kernel)
        _last_case[key] = case
    else:
        case.reset()
    return case


class KernelTiming:
    """The timing settings every kernel class shares, and its thread scope.

    asv re-runs ``setup``/``teardown`` around every sample, and with ``number
    = 1`` a sample is one call: one call of a kernel whose compile was paid in
    the first setup (``warmup_time = 0``), on state the setup has just reset.
    Subclasses name their kernel (``kernel``) and grid, and their ``setup``
    hands :meth:`enter` the :func:`kernel_case`.
    """

    kernel = None
    number = 1
    warmup_time = 0.0
    # (min samples, max samples, seconds): many samples of the microsecond
    # calls, at least ten of the slow ones
    repeat = (10, 50, 2.0)
    # the first setup may compile every specialisation from a cold Numba cache
    timeout = 300.0

    def enter(self, case):
        """Time ``case`` from now on, inside its thread scope."""
        self.case = case
        case.enter_threads()

    def teardown(self, *params):
        # asv calls teardown even when setup skipped the combination
        case = getattr(self, "case", None)
        if case is not None:
            case.exit_threads()
