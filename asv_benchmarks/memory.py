"""Memory of a training epoch through the public API (``Network.fit``)."""

import tracemalloc

from .common import BACKENDS, DTYPES, SEED, synthetic_mnist

#: rows of the synthetic MNIST-shaped data: a third of MNIST, so the data and
#: its conversion stand out against the interpreter and Numba (~150 MB in all)
FIT_ROWS = 20_000
BATCH_SIZE = 100


class FitOneEpoch:
    """One epoch of ``Network([784, 200, 10]).fit`` on 20,000 MNIST-shaped rows.

    The data is float32, as MNIST loaders return it, so a float64 network
    also pays for the one conversion ``fit`` makes at the API boundary.
    """

    params = [BACKENDS, DTYPES]
    param_names = ["backend", "dtype"]
    timeout = 300.0

    def setup(self, backend, dtype):
        from fastnn import Network

        self.X, self.y = synthetic_mnist(FIT_ROWS)
        self.net = Network([784, 200, 10], activation="relu", output="softmax", dtype=dtype,
                           seed=SEED, backend=backend)
        # a fit on a few rows loads the compiled kernels, so the measured call
        # is the epoch and not the JIT
        self.net.fit(self.X[:256], self.y[:256], epochs=1, batch_size=BATCH_SIZE)

    def peakmem_fit_one_epoch(self, backend, dtype):
        """Peak resident memory of the process (bytes) after one epoch.

        It includes everything the process holds (Python, NumPy, Numba, the
        data); a regression shows as ``fit`` adding a copy of the data or
        per-batch garbage on top of that.
        """
        self.net.fit(self.X, self.y, epochs=1, batch_size=BATCH_SIZE)

    def track_fit_one_epoch_numpy_peak_bytes(self, backend, dtype):
        """Peak of the NumPy arrays alive during one epoch's ``fit`` call (bytes).

        NumPy reports its buffers to :mod:`tracemalloc`, so unlike
        ``peakmem_`` this counts only what ``fit`` itself allocates (converted
        inputs, dense targets, workspaces, per-batch temporaries), not the
        process around it.  Memory Numba allocates inside compiled code is not
        traced.
        """
        tracemalloc.start()
        try:
            self.net.fit(self.X, self.y, epochs=1, batch_size=BATCH_SIZE)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    track_fit_one_epoch_numpy_peak_bytes.unit = "bytes"
