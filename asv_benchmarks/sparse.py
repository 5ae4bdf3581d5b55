"""Time the kernels on a CSR first-layer input: Numba against the NumPy reference.

The inputs are :func:`common.synthetic_csr` rows, converted by
``Architecture.features`` as ``fit`` converts a scipy.sparse ``X``, so the
kernels get exactly what ``fit`` and ``predict`` pass them:

- the 784-200-10 network at densities 1 % and 20 % (:data:`common.DENSITIES`;
  MNIST's own is about 19 %), backend x density x batch size, float32 on one
  thread: :class:`SparseForward`, :class:`SparseBackward`,
  :class:`SparseTrainEpochSlice` (plain SGD);
- a text-like 20,000-128-20 network at 0.5 % (100 words a row), backend x
  batch size (1 and 128 for the forward pass, 32 and 128 for the epoch), and
  for the epoch x rule (plain SGD, momentum):
  :class:`SparseTextForward`, :class:`SparseTextTrainEpochSlice`;
- dtype x threads of the Numba epoch at one point (784-200-10, 20 %, batch
  128): :class:`SparseTrainEpochSettings`;
- the dense Numba epoch on the same rows densified, at 20 %:
  :class:`SparseDensifiedTrainEpochSlice`.  The dense path's time does not
  depend on the density (BLAS and the per-sample loop multiply the zeros
  too), so it is the dense twin of every density; the forward and backward
  passes' dense twins are ``kernels.Forward`` and ``kernels.Backward`` at
  784-200-10, float32, one thread.

The grid is smaller than the dense suite's on purpose: asv runs every
parameter combination in a new process, about 2.4 s each here with fastnn's
imports and kernel loads (a skipped one still costs 0.5 s), so the product of
every axis (4 kernels x 2 backends x 3 densities x 3 batch sizes x 2 dtypes
x 2 thread counts, 288 combinations) would take more than 10 minutes even
with ``--quick``.  The fixed settings are the constants below.

Timing method: as in :mod:`kernels` (one call a sample, set up and reset by
:func:`common.kernel_case`, the thread scope entered in setup).  A sample
times the kernel entry point as ``fit`` and ``predict`` call it, so a CSR
forward or backward pass includes the transposed copy of ``W_1`` (and the
backward pass its transposed gradient scratch) it makes on every call
(``kernels/sparse_input.py``); a training epoch transposes ``W_1`` in place
at its start and back at its end.
"""

from .common import (
    BACKENDS,
    DENSITIES,
    DTYPES,
    EPOCH_RULES,
    SPARSE_BATCH_SIZES,
    TEXT_DENSITY,
    TEXT_EPOCH_BATCH_SIZES,
    TEXT_FORWARD_BATCH_SIZES,
    TEXT_NETWORK,
    THREADS,
    KernelTiming,
    kernel_case,
)

NETWORK = "784-200-10"
#: the fixed settings of the density grid: the peers' dtype, and one thread
#: (the least noisy; :class:`SparseTrainEpochSettings` has the others)
DTYPE = "float32"
N_THREADS = 1
#: the point of the dtype x threads grid: MNIST's density, a large batch
SETTINGS_DENSITY = 0.2
SETTINGS_BATCH_SIZE = 128
#: the density of the densified comparison (any would do: see above)
DENSE_TWIN_DENSITY = 0.2


class _SparseKernel(KernelTiming):
    """Shared set-up; subclasses name their kernel and grid."""

    def _setup(self, network, density, backend, batch_size, dtype=DTYPE, n_threads=N_THREADS,
               epoch_rule="sgd", input_format="csr"):
        self.enter(kernel_case(self.kernel, network, dtype, batch_size, backend, n_threads,
                               epoch_rule=epoch_rule, density=density,
                               input_format=input_format))


class _DensityGrid(_SparseKernel):
    """784-200-10 CSR rows: backend x density x batch size (float32, one thread)."""

    params = [BACKENDS, DENSITIES, SPARSE_BATCH_SIZES]
    param_names = ["backend", "density", "batch_size"]

    def setup(self, backend, density, batch_size):
        self._setup(NETWORK, density, backend, batch_size)


class SparseForward(_DensityGrid):
    """``forward`` of one batch of CSR rows (ends with the logits)."""

    kernel = "forward"

    def time_forward(self, backend, density, batch_size):
        """Seconds per forward pass of ``batch_size`` rows."""
        self.case.forward()


class SparseBackward(_DensityGrid):
    """``backward`` of one batch: the delta recursion and the first layer's weight
    gradient from the CSR rows (``δ_1ᵀ X``).

    The activations and output delta come from a forward pass in setup, as in
    ``kernels.Backward``; every sample does the same work.
    """

    kernel = "backward"

    def time_backward(self, backend, density, batch_size):
        """Seconds per backward pass of ``batch_size`` rows (weight decay 0)."""
        self.case.backward()


class SparseTrainEpochSlice(_DensityGrid):
    """``train_epoch`` (plain SGD, lr 0.1) over 2,048 CSR rows (128 at batch size 1).

    Plain SGD steps only the columns of ``W_1`` a batch uses.  The
    parameters are restored before each sample.
    """

    kernel = "train_epoch"
    repeat = (3, 10, 10.0)

    def time_train_epoch_slice(self, backend, density, batch_size):
        """Seconds per ``train_epoch`` call over ``epoch_rows(batch_size)`` rows."""
        self.case.train_epoch()


class SparseTextForward(_SparseKernel):
    """``forward`` of text-like CSR rows through 20,000-128-20 (100 words a row)."""

    kernel = "forward"
    params = [BACKENDS, TEXT_FORWARD_BATCH_SIZES]
    param_names = ["backend", "batch_size"]

    def setup(self, backend, batch_size):
        self._setup(TEXT_NETWORK, TEXT_DENSITY, backend, batch_size)

    def time_text_forward(self, backend, batch_size):
        """Seconds per forward pass of ``batch_size`` rows."""
        self.case.forward()


class SparseTextTrainEpochSlice(_SparseKernel):
    """``train_epoch`` over 2,048 text-like CSR rows, 20,000-128-20.

    Rules (``common.EPOCH_SETTINGS``): plain SGD (lr 0.1) steps the columns
    of ``W_1`` a batch uses (about 3,000 of the 20,000 at batch 32, 9,500 at
    batch 128); momentum
    (0.9, lr 0.01: the same step size) steps all of ``W_1`` at every batch,
    as the dense path does (``kernels/sparse_input.py``), so the two rules
    bracket what a sparse ``X`` saves.
    """

    kernel = "train_epoch"
    params = [BACKENDS, TEXT_EPOCH_BATCH_SIZES, EPOCH_RULES]
    param_names = ["backend", "batch_size", "rule"]
    repeat = (3, 10, 10.0)

    def setup(self, backend, batch_size, rule):
        self._setup(TEXT_NETWORK, TEXT_DENSITY, backend, batch_size, epoch_rule=rule)

    def time_text_train_epoch_slice(self, backend, batch_size, rule):
        """Seconds per ``train_epoch`` call over ``epoch_rows(batch_size)`` rows."""
        self.case.train_epoch()


class SparseTrainEpochSettings(_SparseKernel):
    """The Numba ``train_epoch`` on CSR rows: dtype x threads at one point.

    784-200-10 at density 20 %, batch size 128, 2,048 rows, plain SGD (lr 0.1).
    """

    kernel = "train_epoch"
    params = [DTYPES, THREADS]
    param_names = ["dtype", "n_threads"]
    repeat = (3, 10, 10.0)

    def setup(self, dtype, n_threads):
        self._setup(NETWORK, SETTINGS_DENSITY, "numba", SETTINGS_BATCH_SIZE, dtype, n_threads)

    def time_train_epoch_slice(self, dtype, n_threads):
        """Seconds per ``train_epoch`` call over 2,048 rows."""
        self.case.train_epoch()


class SparseDensifiedTrainEpochSlice(_SparseKernel):
    """The dense Numba ``train_epoch`` on the rows of :class:`SparseTrainEpochSlice`
    at density 20 %, densified.

    The same matrix, made dense (``toarray``) before the conversion, so the
    ratio of the two classes at one batch size is what the CSR path saves
    (at any density: the dense time does not depend on it); float32, one
    thread, plain SGD (lr 0.1).
    """

    kernel = "train_epoch"
    params = [SPARSE_BATCH_SIZES]
    param_names = ["batch_size"]
    repeat = (3, 10, 10.0)

    def setup(self, batch_size):
        self._setup(NETWORK, DENSE_TWIN_DENSITY, "numba", batch_size, input_format="dense")

    def time_train_epoch_slice(self, batch_size):
        """Seconds per ``train_epoch`` call over ``epoch_rows(batch_size)`` rows."""
        self.case.train_epoch()
