"""Time each kernel of the contract: the Numba kernels against the NumPy reference.

Every class times one kernel over the same grid, with the engine as the first
parameter (pandas' ``asv_bench/benchmarks/rolling.py`` does the same for
numba vs cython): backend x network x batch size x dtype x threads.  The
buffers come from :func:`common.kernel_case`; nothing here knows the kernels'
argument lists.

Timing method: asv re-runs ``setup``/``teardown`` around every sample, and
with ``number = 1`` a sample is one call.  So each sample times one call of a
kernel whose compile was paid in the first setup (``warmup_time = 0``), on
state that setup has just reset.  The thread scope
(Numba threads; both OpenBLAS copies capped, docs/design.md, rule 1) is entered in
setup too, outside the timed call.  Combinations needing more threads than
the machine has are skipped.
"""

from .common import (
    BACKENDS,
    BATCH_SIZES,
    DTYPES,
    EPOCH_RULES,
    NETWORK_NAMES,
    SMALL_NETWORK_NAMES,
    THREADS,
    UPDATE_RULES,
    KernelTiming,
    kernel_case,
)


class _Kernel(KernelTiming):
    """Shared parameters and set-up; subclasses name their kernel."""

    params = [BACKENDS, NETWORK_NAMES, BATCH_SIZES, DTYPES, THREADS]
    param_names = ["backend", "network", "batch_size", "dtype", "n_threads"]

    def setup(self, backend, network, batch_size, dtype, n_threads):
        self.enter(kernel_case(self.kernel, network, dtype, batch_size, backend, n_threads))


class Forward(_Kernel):
    """``forward``: propagate one batch through the network (ends with the logits)."""

    kernel = "forward"

    def time_forward(self, backend, network, batch_size, dtype, n_threads):
        """Seconds per forward pass of ``batch_size`` rows."""
        self.case.forward()


class Backward(_Kernel):
    """``backward``: delta recursion and gradient accumulation of one batch.

    The activations and output delta come from a forward pass in setup; the
    call rewrites only the hidden deltas and the gradient, so every sample
    does the same work.
    """

    kernel = "backward"

    def time_backward(self, backend, network, batch_size, dtype, n_threads):
        """Seconds per backward pass of ``batch_size`` rows (weight decay 0)."""
        self.case.backward()


class Update(_Kernel):
    """``optimizer_step``: the in-place update of every parameter.

    Rules (``common.UPDATE_SETTINGS``): plain SGD (lr 0.1), SGD with momentum
    0.9, Adam (lr 1e-3); no clipping, no weight decay.  The update does not
    depend on the batch size, so the grid has the rule in its place.
    Parameters, optimizer state and step counter are restored before each
    sample.
    """

    kernel = "update"
    params = [BACKENDS, NETWORK_NAMES, DTYPES, THREADS, UPDATE_RULES]
    param_names = ["backend", "network", "dtype", "n_threads", "rule"]

    def setup(self, backend, network, dtype, n_threads, rule):
        self.enter(kernel_case(self.kernel, network, dtype, 1, backend, n_threads, rule))

    def time_update(self, backend, network, dtype, n_threads, rule):
        """Seconds per update of all parameters (159,010 or 2,109,450 of them)."""
        self.case.update()


class TrainEpochSlice(_Kernel):
    """``train_epoch`` over a fixed slice of an epoch: 2,048 rows (128 at batch size 1).

    The row counts are ``common.EPOCH_ROWS`` and ``common.EPOCH_ROWS_BATCH_1``
    (see :func:`common.epoch_rows`).

    One call gathers, propagates, back-propagates and updates every
    mini-batch of the slice with plain SGD (lr 0.1), as ``fit`` does per
    epoch.  A full epoch of MNIST (60,000 rows) would make the grid take
    hours; multiply by ``60000 / rows`` for an estimate.  The parameters are
    restored before each sample, so every sample trains from the same start.
    """

    kernel = "train_epoch"
    repeat = (3, 10, 10.0)

    def time_train_epoch_slice(self, backend, network, batch_size, dtype, n_threads):
        """Seconds per ``train_epoch`` call over ``epoch_rows(batch_size)`` rows."""
        self.case.train_epoch()


class SmallNetworkEpoch(KernelTiming):
    """``train_epoch`` of a small network over 2,048 rows in batches of 200, float64:
    scikit-learn's MLP defaults on its digits (64-100-10) and on a 40-feature
    table (40-100-5).  On two threads their batches' rows are split among the
    threads (``fastnn.kernels.row_parallel``); on one, the layer-step loop runs.
    """

    kernel = "train_epoch"
    repeat = (3, 10, 10.0)
    params = [BACKENDS, SMALL_NETWORK_NAMES, THREADS, EPOCH_RULES]
    param_names = ["backend", "network", "n_threads", "rule"]

    def setup(self, backend, network, n_threads, rule):
        self.enter(kernel_case(self.kernel, network, "float64", 200, backend, n_threads,
                               epoch_rule=rule))

    def time_small_network_epoch(self, backend, network, n_threads, rule):
        """Seconds per ``train_epoch`` call over 2,048 rows (11 batches)."""
        self.case.train_epoch()
